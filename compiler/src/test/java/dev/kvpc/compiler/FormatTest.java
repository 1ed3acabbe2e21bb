package dev.kvpc.compiler;

import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.ast.KvpFile;
import dev.kvpc.compiler.diag.Diagnostics;
import dev.kvpc.compiler.fmt.Formatter;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/** kvpc fmt over the whole corpus: output re-parses to the same AST, is a fixed point, and keeps every comment. */
class FormatTest {
    private static List<Path> corpus() {
        List<Path> all = new ArrayList<>(Corpus.stdlib());
        all.addAll(Corpus.negative());
        return all;
    }

    @TestFactory
    Stream<DynamicTest> roundTrip() {
        return corpus().stream().map(p -> DynamicTest.dynamicTest(p.getFileName().toString(), () -> {
            String text = new String(Files.readAllBytes(p), StandardCharsets.UTF_8);
            KvpFile ast = Frontend.parse(p.toString(), text, new Diagnostics());
            if (ast == null) {
                assertTrue(p.getFileName().toString().startsWith("e001_") || p.getFileName().toString().startsWith("e012_"),
                        p + " does not parse but is not a syntax-error program");
                return;
            }
            String once = Formatter.format(ast);
            Diagnostics d2 = new Diagnostics();
            KvpFile again = Frontend.parse(p.toString(), once, d2);
            assertNotNull(again, "formatted output does not parse:\n" + once + "\n" + d2.all());
            assertNull(AstEquality.diff(ast, again, "file"), "formatting changed the AST:\n" + once);
            assertEquals(once, Formatter.format(again), "formatting is not a fixed point");
            assertEquals(commentTexts(ast), commentTexts(again), "formatting lost or changed a comment");
            if (p.startsWith(Corpus.root().resolve("stdlib-policies"))) {
                assertEquals(once, text, p.getFileName() + " is not in canonical form (run ./kvpc fmt --write)");
            }
        }));
    }

    private static List<String> commentTexts(KvpFile f) {
        List<String> out = new ArrayList<>();
        for (KvpFile.Comment c : f.comments()) {
            for (String l : c.text().split("\n")) out.add(l.strip());
        }
        f.decls().forEach(d -> out.add("doc:" + d.doc()));
        return out;
    }

    @Test
    void parenthesesFollowPrecedence() {
        String src = "fn f(a: int, b: int, c: int) -> int { (a - (b - c)) * -(a + b) + ((a * b) / c > 1 ? a : b) }\n";
        KvpFile ast = Frontend.parse("t.kvp", src, new Diagnostics());
        assertNotNull(ast);
        String out = Formatter.format(ast);
        assertEquals("fn f(a: int, b: int, c: int) -> int {\n    (a - (b - c)) * -(a + b) + (a * b / c > 1 ? a : b)\n}\n", out);
    }

    @Test
    void keepsTrailingAndLeadingComments() {
        String src = "// head\npolicy p(n: int = 4) { // after brace\n  on overflow(n) {\n\n    // lead\n    keep last(n) // trail\n  }\n}\n// tail\n";
        KvpFile ast = Frontend.parse("t.kvp", src, new Diagnostics());
        String out = Formatter.format(ast);
        assertEquals("// head\npolicy p(n: int = 4) {  // after brace\n    on overflow(n) {\n\n        // lead\n        keep last(n)  // trail\n    }\n}\n// tail\n", out);
    }
}
