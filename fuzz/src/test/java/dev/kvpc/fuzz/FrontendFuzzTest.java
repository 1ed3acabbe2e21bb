package dev.kvpc.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.compiler.diag.Diagnostics;
import dev.kvpc.compiler.fmt.Formatter;
import dev.kvpc.ir.pass.Pipeline;

import java.nio.charset.StandardCharsets;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

/**
 * The front end on any text: checking never throws (every problem is a diagnostic), a program that checks is lowered
 * and optimised without an error, and the formatter's output parses again and is its own fixed point.
 */
class FrontendFuzzTest {
    private static final ModelShape SHAPE = ModelShape.presets().get("reference");

    @FuzzTest(maxDuration = "30s")
    void check(byte[] input) {
        String text = new String(input, StandardCharsets.UTF_8);
        Frontend.Result r = Frontend.checkText("fuzz.kvp", text, null, SHAPE);
        // rendering is what the user sees: it must not throw either
        r.diagnostics().all().forEach(d -> r.renderer().render(d));
        if (r.ok()) {
            String root = Compilation.defaultRoot(r.program());
            if (root != null && Fuzzing.defaultsOnly(r.program(), root)) {
                assertNotNull(Compilation.optimise(r.program(), root, Map.of(), Pipeline.Options.DEFAULT, (pass, x) -> { }).print());
            }
        }
        var file = Frontend.parse("fuzz.kvp", text, new Diagnostics());
        if (file != null) {
            String once = Formatter.format(file);
            Diagnostics again = new Diagnostics();
            var reparsed = Frontend.parse("fuzz.kvp", once, again);
            assertNotNull(reparsed, () -> "the formatter's output does not parse:\n" + once + "\n" + again.all());
            assertEquals(once, Formatter.format(reparsed), "formatting twice changes the text");
        }
    }
}
