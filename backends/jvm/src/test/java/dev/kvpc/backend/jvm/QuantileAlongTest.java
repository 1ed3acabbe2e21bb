package dev.kvpc.backend.jvm;

import dev.kvpc.backend.interp.Interpreter;
import dev.kvpc.backend.interp.PolicyText;
import dev.kvpc.backend.interp.Result;
import dev.kvpc.ir.Specialized;
import dev.kvpc.runtime.trace.Trace;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@code quantile(x, p, over: a)}: the quantile along some axes, one per cell of the others. It checked clean and then
 * every command that ran it stopped (exit 70: "quantile over [CHANNEL] is not compiled", and the interpreter refused
 * it). Each entry's median key channel and the 0.75 quantile of its value channels, computed by hand from the trace;
 * compiled code agrees on the interpreter's events and on the runtime's lanes.
 */
class QuantileAlongTest {
    @Test
    void aQuantileAlongChannelsIsOnePerEntry() {
        Specialized s = PolicyText.optimise("medians", """
                policy medians() {
                    state mk: f32 per token = 0
                    state qv: f32 per token = 0
                    on prefill, decode {
                        mk = quantile(k, 0.5, over: channel)
                        qv = quantile(v, 0.75, over: channel)
                    }
                    on overflow(1000) { keep top(mk + qv, 1000) }
                }
                """);
        Trace t = PolicyText.trace(31, 9, 2);
        Result r = Interpreter.run(s, t);
        for (int kv = 0; kv < 2; kv++) {
            Result.Lane lane = r.steps().getLast().lanes()[1][kv];
            double[] mk = lane.states().get("mk"), qv = lane.states().get("qv");
            for (int i = 0; i < lane.positions().length; i++) {
                assertEquals(byHand(t.key(1, lane.positions()[i], kv), 0.5), mk[i], 1e-6, "median key channel, entry " + i);
                assertEquals(byHand(t.value(1, lane.positions()[i], kv), 0.75), qv[i], 1e-6, "0.75 value quantile, entry " + i);
            }
        }
        PolicyCompilerTest.agree(s, List.of(t), "medians");
        dev.kvpc.backend.interp.RuntimeDifferentialTest.compare(s, t, "medians", null, CompiledOnLanes.runner(s));
    }

    /** SparQ's choice per query head: each head's own channels above its own quantile of |q|. */
    @Test
    void sparqPerQueryHeadRunsEverywhere() {
        CompiledOnLanes.everyEngine("sparq_heads", """
                policy sparq_heads(tokens: int = 6, recent: int in 1..1000 = 2) {
                    on decode {
                        let magnitude = abs(q)
                        let marked = magnitude >= quantile(magnitude, 0.75, over: channel) ? 1.0 : 0.0
                        attend top(max(sum(q * k * marked, over: channel), over: query, group) within first(len - recent), tokens) + last(recent)
                    }
                }
                """, PolicyText.trace(32, 20, 4));
    }

    /** Linear interpolation between the order statistics around p * (n - 1). */
    private static double byHand(float[] row, double p) {
        double[] x = new double[row.length];
        for (int i = 0; i < x.length; i++) x[i] = row[i];
        Arrays.sort(x);
        double at = p * (x.length - 1);
        int lo = (int) Math.floor(at), hi = (int) Math.ceil(at);
        return x[lo] + (x[hi] - x[lo]) * (at - lo);
    }
}
