package dev.kvpc.backend.jvm;

import dev.kvpc.backend.interp.Interpreter;
import dev.kvpc.backend.interp.PassPreservationTest;
import dev.kvpc.backend.interp.PolicyText;
import dev.kvpc.backend.interp.Result;
import dev.kvpc.compiler.check.Composite;
import dev.kvpc.ir.Specialized;
import dev.kvpc.runtime.trace.Trace;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * variance, softmax and pow as builtins: what they compute (against the trace's own keys, by hand), and compiled
 * code computing the same as the interpreter.
 */
class CompositeBuiltinsTest {
    static final String POLICY = """
            policy stats(budget: int = 20) {
                state total: f32 per lane = 0
                state spread: f32 per lane = 0
                state acc: f32 per token = 0
                on prefill, decode {
                    let s = sum(k, over: channel)
                    total = sum(softmax(s, over: token), over: token)
                    spread = variance(s, over: token)
                    acc += softmax(s, over: token) * total + pow(abs(s), 0.5) + variance(k, over: channel) + spread * 0.001
                }
                on overflow(budget) {
                    keep top(acc, budget)
                }
            }
            """;

    @Test
    void theCompositesComputeWhatTheySayAndCompileAsInterpreted() {
        Specialized s = PolicyText.optimise("stats", POLICY);
        Trace t = PassPreservationTest.traces().getFirst();
        Result r = Interpreter.run(s, t);
        // the prefill's handler sees every prompt entry of layer 0, KV head 0 (the overflow evicts after it)
        Result.Lane lane = r.steps().getFirst().lanes()[0][0];
        int n = t.steps().getFirst().tokens(), d = PassPreservationTest.SMALL.headDim();
        assertTrue(n > 20 && lane.positions().length == 20, "the prompt overflows the budget");
        double[] sums = new double[n];
        for (int i = 0; i < n; i++) for (int c = 0; c < d; c++) sums[i] += t.k(0, i, 0, c);
        double mean = 0;
        for (double x : sums) mean += x;
        mean /= n;
        double var = 0;
        for (double x : sums) var += (x - mean) * (x - mean);
        var /= n;
        assertEquals(1.0, lane.states().get("total")[0], 1e-6, "softmax sums to 1 along its axes");
        assertEquals(var, lane.states().get("spread")[0], 1e-4 * Math.max(1, var), "variance of the keys' channel sums");
        // compiled code computes the same, on the interpreter's events and on the runtime's lanes
        PolicyCompilerTest.agree(s, PassPreservationTest.traces(), "stats");
        for (Trace tr : PassPreservationTest.traces()) {
            dev.kvpc.backend.interp.RuntimeDifferentialTest.compare(s, tr, "stats", null, CompiledOnLanes.runner(s));
        }
        assertEquals(2, Composite.values().length, "a new composite gets a test here");
    }
}
