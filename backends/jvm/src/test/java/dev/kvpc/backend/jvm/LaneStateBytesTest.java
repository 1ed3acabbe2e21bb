package dev.kvpc.backend.jvm;

import dev.kvpc.backend.interp.InterpRunner;
import dev.kvpc.backend.interp.PassPreservationTest;
import dev.kvpc.backend.interp.PolicyText;
import dev.kvpc.ir.Specialized;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.trace.Trace;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A lane's measured bytes include the per-lane state its policy runner keeps beside it (4 bytes a value), under the
 * reference interpreter's runner and under compiled code's: before, `Lane.bytes` left it out, and kvpc memory's
 * exact figure for d2o was 4 bytes a lane over the measure.
 */
class LaneStateBytesTest {
    @Test
    void perLaneStateIsCountedWithTheLane() {
        Specialized s = PolicyText.optimise("held", """
                policy held() {
                    state tau: f32 per lane = 0.5
                    state spread: f32[channel] per lane
                    on prefill, decode {
                        spread = max(abs(k), over: token)
                        tau = tau * 0.5 + 0.001 * sum(spread, over: channel)
                    }
                }
                """);
        Trace t = PolicyText.trace(41, 12, 2);
        long perLane = (1 + PassPreservationTest.SMALL.headDim()) * 4L;
        for (PolicyRunner runner : new PolicyRunner[] {new InterpRunner(s), CompiledOnLanes.runner(s)}) {
            PolicyText.runOnLanes(runner, t, null, seq -> {
                Lane.LaneBytes[][] m = seq.memory();
                long total = 0;
                for (int l = 0; l < m.length; l++) {
                    for (int h = 0; h < m[l].length; h++) {
                        assertEquals(perLane, m[l][h].state(), runner.getClass().getSimpleName() + " lane " + l + "," + h);
                        total += m[l][h].total();
                    }
                }
                assertEquals(total, seq.totalBytes(), "totalBytes counts it too");
            });
        }
    }
}
