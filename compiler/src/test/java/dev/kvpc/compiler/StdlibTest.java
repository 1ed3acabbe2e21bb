package dev.kvpc.compiler;

import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.ast.Decl;
import dev.kvpc.compiler.diag.Diagnostic;
import dev.kvpc.compiler.model.ModelShape;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/** Every standard-library program checks clean (no error, no warning) and names its paper in a doc comment. */
class StdlibTest {
    @TestFactory
    Stream<DynamicTest> checksCleanForTheReferenceShape() {
        return Corpus.stdlib().stream().map(p -> DynamicTest.dynamicTest(p.getFileName().toString(), () -> {
            Frontend.Result r = Frontend.check(p, ModelShape.REFERENCE);
            String shown = r.diagnostics().all().stream().map(d -> r.renderer().render(d)).collect(Collectors.joining());
            assertTrue(r.ok(), "errors:\n" + shown);
            assertEquals("", shown, "warnings");
        }));
    }

    @TestFactory
    Stream<DynamicTest> everyDeclarationHasADocComment() {
        return Corpus.stdlib().stream().map(p -> DynamicTest.dynamicTest(p.getFileName().toString(), () -> {
            Frontend.Result r = Frontend.check(p, ModelShape.REFERENCE);
            for (Decl d : r.parsed().root().decls()) {
                assertNotNull(d.doc(), p.getFileName() + ": '" + d.name().text() + "' has no /// doc comment");
                assertFalse(d.doc().isBlank(), p.getFileName() + ": '" + d.name().text() + "' has an empty doc comment");
            }
        }));
    }

    /** LANGUAGE.md's examples, each of which must exist as a stdlib declaration. */
    @Test
    void holdsEveryExampleOfTheLanguageBrief() {
        Set<String> want = Set.of("full", "window", "streaming_llm", "h2o", "tova", "scissorhands", "snapkv", "pyramidkv",
                "adakv", "knorm", "kivi", "mixed", "duo_attention", "razor", "cam", "quest", "standard", "softcap", "alibi",
                "sliding", "sigmoid", "llama_h2o", "pyramid");
        Set<String> have = new TreeSet<>();
        for (Path p : Corpus.stdlib()) {
            Frontend.Result r = Frontend.check(p, ModelShape.REFERENCE);
            r.parsed().root().decls().forEach(d -> have.add(d.name().text()));
        }
        Set<String> missing = new TreeSet<>(want);
        missing.removeAll(have);
        assertEquals(Set.of(), missing);
    }

    /** A model with no table of its shape: the table made for the reference shape is refused with E503. */
    @Test
    void tablesAreCheckedAgainstTheModel() throws Exception {
        Path duo = Corpus.root().resolve("stdlib-policies/duo_attention.kvp");
        Frontend.Result r = Frontend.check(duo, ModelShape.parse("layers=6,heads=8,kv-heads=4,head-dim=16"));
        List<Diagnostic> ds = r.diagnostics().all();
        assertEquals(List.of("E503"), ds.stream().map(d -> d.code().name()).toList());
        assertTrue(ds.getFirst().message().contains("32 x 8"), ds.getFirst().message());
        assertTrue(Files.exists(duo));
    }

    /**
     * DuoAttention and RazorAttention check with no arguments on the embedded model's shape and on stories260K's: the
     * standard library ships their tables as NAME.LxK.tsv, which a default NAME.tsv finds by the model's shape.
     */
    @Test
    void headTablesAreFoundByTheModelsShape() {
        for (ModelShape m : List.of(ModelShape.parse("layers=4,heads=8,kv-heads=2,head-dim=16"), ModelShape.parse("stories260K"))) {
            for (String f : List.of("duo_attention.kvp", "razor.kvp")) {
                Frontend.Result r = Frontend.check(Corpus.root().resolve("stdlib-policies/" + f), m);
                assertTrue(r.ok() && r.diagnostics().all().isEmpty(), f + " on " + m + ": " + r.diagnostics().all());
            }
        }
    }

    /** Beside a policy, NAME.LxK.tsv is taken before NAME.tsv for a model of that shape, and only for it. */
    @Test
    void aTableOfTheModelsShapeComesFirst(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("p.kvp"), """
                /// A test policy.
                policy p(t: table = "t.tsv") {
                    heads where t > 0.5 use full
                    otherwise { on overflow(8) { keep last(8) } }
                }
                policy full { }
                """);
        Files.writeString(dir.resolve("t.tsv"), "1\n0\n");
        Files.writeString(dir.resolve("t.3x1.tsv"), "1\n0\n1\n");
        assertTrue(Frontend.check(dir.resolve("p.kvp"), ModelShape.parse("layers=3,heads=2,kv-heads=1,head-dim=8")).ok(), "3 x 1 finds t.3x1.tsv");
        assertTrue(Frontend.check(dir.resolve("p.kvp"), ModelShape.parse("layers=2,heads=2,kv-heads=1,head-dim=8")).ok(), "2 x 1 finds t.tsv");
        Frontend.Result r = Frontend.check(dir.resolve("p.kvp"), ModelShape.parse("layers=4,heads=2,kv-heads=1,head-dim=8"));
        assertEquals(List.of("E503"), r.diagnostics().all().stream().map(d -> d.code().name()).toList(), "4 x 1 has no table of its own");
    }
}
