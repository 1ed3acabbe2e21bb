package dev.kvpc.backend.jvm;

import dev.kvpc.backend.interp.Interpreter;
import dev.kvpc.backend.interp.PassPreservationTest;
import dev.kvpc.backend.interp.PolicyText;
import dev.kvpc.ir.Specialized;
import dev.kvpc.runtime.trace.Trace;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;



/**
 * {@code quantile(x within S, p)} counts the entries of {@code S} only, in the reference interpreter and in compiled
 * code on the runtime's lanes (both once counted the entries left out too, as NaN sorted last): the median of the
 * last eight positions of a prompt of {@code n} is {@code n - 4.5}.
 */
class QuantileWithinTest {
    static final String POLICY = """
            policy median() {
                state acc: f32 per token = 0
                on prefill {
                    acc = float(pos) * 0.0 + quantile(float(pos) within last(8), 0.5)
                }
                on overflow(100000) {
                    keep top(acc, 100000)
                }
            }
            """;

    @Test
    void onlyTheEntriesOfTheSetCount() {
        Specialized s = PolicyText.optimise("median", POLICY);
        Trace t = PassPreservationTest.traces().getFirst();
        int n = t.steps().getFirst().tokens();
        assertTrue(n > 8, "a prompt longer than the set");
        double want = n - 4.5;
        double[] acc = Interpreter.run(s, t).steps().getFirst().lanes()[0][0].states().get("acc");
        double[] got = CompiledOnLanes.stateAfterPrompt(s, t, "acc");
        assertEquals(n, acc.length);
        assertEquals(n, got.length);
        for (int i = 0; i < n; i++) {
            assertEquals(want, acc[i], "interpreter, entry " + i);
            assertEquals(want, got[i], "compiled, entry " + i);
        }
    }
}
