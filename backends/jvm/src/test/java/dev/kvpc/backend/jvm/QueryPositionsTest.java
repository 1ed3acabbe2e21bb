package dev.kvpc.backend.jvm;

import dev.kvpc.backend.interp.Interpreter;
import dev.kvpc.backend.interp.PolicyText;
import dev.kvpc.backend.interp.Result;
import dev.kvpc.ir.Specialized;
import dev.kvpc.runtime.trace.Trace;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@code qpos}: the positions of the observed queries, in the reference interpreter and in compiled code on the
 * runtime's lanes. With the last four queries of a 10-token prompt observed they are 6..9; at a decode step, the
 * step's own. The attention each entry gets from the query right after it (an induction-style score) is then a
 * comparison of {@code pos} with {@code qpos}.
 */
class QueryPositionsTest {
    @Test
    void theObservedQueriesPositions() {
        Specialized s = PolicyText.optimise("positions", """
                policy positions() {
                    observe last(4) queries at prefill
                    state total: f32 per token = 0
                    state next: f32 per token = 0
                    on prefill, decode {
                        total = float(sum(qpos, over: query))
                        next = sum(attn * (qpos == pos + 1 ? 1.0 : 0.0), over: query, group)
                    }
                    on overflow(1000) { keep top(total + next, 1000) }
                }
                """);
        Trace t = PolicyText.trace(9, 10, 2);
        Result r = Interpreter.run(s, t);
        double[] total = r.steps().get(0).lanes()[0][0].states().get("total");
        for (double x : total) assertEquals(6 + 7 + 8 + 9, x);
        assertArrayEquals(new double[] {10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10}, r.steps().get(1).lanes()[0][0].states().get("total"));
        // only entries 5..8 have an observed query right after them at the prompt; at decode only the newest but one
        double[] next = r.steps().get(0).lanes()[0][0].states().get("next");
        for (int i = 0; i < next.length; i++) assertEquals(i >= 5 && i <= 8, next[i] > 0, "entry " + i + ": " + next[i]);
        double[] later = r.steps().get(1).lanes()[0][0].states().get("next");
        for (int i = 0; i < later.length; i++) assertEquals(i == 9, later[i] > 0, "entry " + i + " at decode: " + later[i]);
        PolicyCompilerTest.agree(s, List.of(t), "positions");
        dev.kvpc.backend.interp.RuntimeDifferentialTest.compare(s, t, "positions", null, CompiledOnLanes.runner(s));
    }
}
