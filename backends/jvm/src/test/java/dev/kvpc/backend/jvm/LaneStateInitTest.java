package dev.kvpc.backend.jvm;

import dev.kvpc.backend.interp.Interpreter;
import dev.kvpc.backend.interp.PassPreservationTest;
import dev.kvpc.backend.interp.PolicyText;
import dev.kvpc.backend.interp.Result;
import dev.kvpc.ir.Specialized;
import dev.kvpc.runtime.trace.Trace;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A per-lane state starts at its initial value, in the reference interpreter and in compiled code on the runtime's
 * lanes (both once started every per-lane state at 0). The policy keeps the newest entries only when {@code b}
 * starts at 5: at 0 it would keep the oldest.
 */
class LaneStateInitTest {
    static final String POLICY = """
            policy initial(budget: int = 20) {
                state b: f32 per lane = 5.0
                state acc: f32 per token = 0
                on prefill, decode {
                    acc = pos * (b - 4.0)
                }
                on overflow(budget) {
                    keep top(acc, budget)
                }
            }
            """;

    @Test
    void aPerLaneStateStartsAtItsInitialValue() {
        Specialized s = PolicyText.optimise("initial", POLICY);
        int checked = 0;
        for (Trace t : PassPreservationTest.traces()) {
            Result r = Interpreter.run(s, t);
            Result.Lane lane = r.steps().getLast().lanes()[0][0];
            assertArrayEquals(new double[] {5.0}, lane.states().get("b"), "b holds its initial value");
            // the newest entries score highest: kept are the last ones the lane has seen
            int[] kept = lane.positions().clone();
            Arrays.sort(kept);
            if (kept.length == 20) {
                int newest = kept[19];
                for (int i = 0; i < 20; i++) assertEquals(newest - 19 + i, kept[i], "kept the newest entries: " + Arrays.toString(kept));
                checked++;
            }
        }
        assertTrue(checked > 0, "some trace overflows the budget");
        // compiled code keeps the same entries, on the interpreter's events and on the runtime's lanes
        PolicyCompilerTest.agree(s, PassPreservationTest.traces(), "initial");
        for (Trace tr : PassPreservationTest.traces()) {
            dev.kvpc.backend.interp.RuntimeDifferentialTest.compare(s, tr, "initial", null, CompiledOnLanes.runner(s));
        }
    }
}
