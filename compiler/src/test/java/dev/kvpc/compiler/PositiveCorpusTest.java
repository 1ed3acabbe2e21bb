package dev.kvpc.compiler;

import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.model.ModelShape;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Valid programs that once tripped the checker (regressions): each must check with no diagnostic at all. */
class PositiveCorpusTest {
    @TestFactory
    Stream<DynamicTest> checkClean() {
        return Corpus.kvpFiles(Corpus.root().resolve("compiler/src/test/resources/positive")).stream()
                .map(p -> DynamicTest.dynamicTest(p.getFileName().toString(), () -> {
                    Frontend.Result r = Frontend.check(p, ModelShape.REFERENCE);
                    assertEquals("", r.diagnostics().all().stream().map(d -> r.renderer().render(d)).collect(Collectors.joining()));
                }));
    }
}
