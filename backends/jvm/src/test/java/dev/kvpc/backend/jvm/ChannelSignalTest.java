package dev.kvpc.backend.jvm;

import dev.kvpc.backend.interp.Interpreter;
import dev.kvpc.backend.interp.PolicyText;
import dev.kvpc.backend.interp.Result;
import dev.kvpc.ir.Specialized;
import dev.kvpc.runtime.trace.Trace;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@code channel}: each channel's number. A value norm over the even channels only, and the channel sum 0 + 1 + ... +
 * 31 = 496 at head dimension 32, in the interpreter; compiled code agrees on its events and on the runtime's lanes.
 */
class ChannelSignalTest {
    @Test
    void channelNumbersIndexTheHeadDimension() {
        Specialized s = PolicyText.optimise("channels", """
                policy channels() {
                    state total: f32 per token = 0
                    state even: f32 per token = 0
                    on prefill, decode {
                        total = float(sum(channel, over: channel)) + 0.0 * sum(k, over: channel)
                        even = norm(channel % 2 == 0 ? v : 0.0, over: channel)
                    }
                    on overflow(1000) { keep top(total + even, 1000) }
                }
                """);
        Trace t = PolicyText.trace(11, 6, 1);
        Result r = Interpreter.run(s, t);
        Result.Lane lane = r.steps().getFirst().lanes()[0][0];
        for (double x : lane.states().get("total")) assertEquals(496, x);
        double[] even = lane.states().get("even");
        for (int i = 0; i < even.length; i++) {
            float[] v = t.value(0, lane.positions()[i], 0);
            double sq = 0;
            for (int c = 0; c < v.length; c += 2) sq += (double) v[c] * v[c];
            assertEquals((float) Math.sqrt(sq), even[i], 1e-6, "entry " + i);
        }
        PolicyCompilerTest.agree(s, List.of(t), "channels");
        dev.kvpc.backend.interp.RuntimeDifferentialTest.compare(s, t, "channels", null, CompiledOnLanes.runner(s));
    }
}
