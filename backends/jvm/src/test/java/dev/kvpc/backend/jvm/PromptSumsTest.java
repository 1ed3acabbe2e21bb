package dev.kvpc.backend.jvm;

import dev.kvpc.backend.interp.Interpreter;
import dev.kvpc.backend.interp.PolicyText;
import dev.kvpc.backend.interp.Result;
import dev.kvpc.ir.Specialized;
import dev.kvpc.runtime.exec.NativeRunner;
import dev.kvpc.runtime.trace.Trace;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * A window and sums over the whole prompt at the same event: under {@code observe last(4) queries at prefill},
 * {@code sum(attn, over: prompt, group)} is the sum H2O takes with no observe clause (every query of the prompt),
 * while {@code sum(attn, over: query, group)} is the window's. In the interpreter, and in compiled code on its
 * events and on the runtime's lanes, from attention rows and from the kernel's column sums.
 */
class PromptSumsTest {
    static final String BOTH = """
            policy both(budget: int = 16, window: int = 4) {
                observe last(window) queries at prefill
                state acc: f32 per token = 0
                state win: f32 per token = 0
                on prefill, decode {
                    acc += sum(attn, over: prompt, group)
                    win = sum(attn, over: query, group)
                }
                on overflow(budget) { keep top(acc + 0.0 * win, budget - window) + last(window) }
            }
            """;
    static final String PLAIN = """
            policy plain(budget: int = 16, window: int = 4) {
                state acc: f32 per token = 0
                on prefill, decode { acc += sum(attn, over: query, group) }
                on overflow(budget) { keep top(acc, budget - window) + last(window) }
            }
            """;

    @Test
    void aWindowAndTheWholePromptAtOneEvent() {
        Specialized both = PolicyText.optimise("both", BOTH), plain = PolicyText.optimise("plain", PLAIN);
        Trace t = PolicyText.trace(13, 24, 3);
        Result a = Interpreter.run(both, t), b = Interpreter.run(plain, t);
        for (int step = 0; step < a.steps().size(); step++) {
            for (int l = 0; l < 2; l++) {
                for (int h = 0; h < 2; h++) {
                    Result.Lane x = a.steps().get(step).lanes()[l][h], y = b.steps().get(step).lanes()[l][h];
                    assertArrayEquals(y.positions(), x.positions(), "kept, step " + step);
                    assertArrayEquals(y.states().get("acc"), x.states().get("acc"), 1e-12, "the whole prompt's sums, step " + step);
                }
            }
        }
        // the window's sums at the prompt are another thing: four queries, not 24
        Result.Lane first = a.steps().getFirst().lanes()[0][0];
        assertFalse(java.util.Arrays.equals(first.states().get("acc"), first.states().get("win")));
        PolicyCompilerTest.agree(both, List.of(t), "both");
        dev.kvpc.backend.interp.RuntimeDifferentialTest.compare(both, t, "both", null, CompiledOnLanes.runner(both));
        var classes = JvmPolicies.compile(both, "both.kvp").define();
        dev.kvpc.backend.interp.RuntimeDifferentialTest.compare(both, t, "both (column sums)", null, new NativeRunner(both, classes, null, true));
    }
}
