package dev.kvpc.backend.interp;

import dev.kvpc.ir.Specialized;
import org.junit.jupiter.api.Test;

/**
 * A decode handler that can restrict attention runs before the step's attention, all of it: what else it does (a
 * merge into the compensation entry, a store) is what attention reads. The runtime running the interpreter keeps
 * the interpreter's outputs and entries, step by step (found by a generated program: the runtime applied those
 * effects only after attention).
 */
class AttendHandlerEffectsTest {
    @Test
    void effectsOfAnAttendingHandlerPrecedeAttention() {
        Specialized s = PolicyText.optimise("merged", """
                policy merged() {
                    on decode {
                        if context >= 1000 {
                            attend last(4)
                        }
                        merge first(3) into compensation
                        store keys, values as f16 for all
                        keep last(max(len - 3, 1)) + compensation
                    }
                }
                """);
        RuntimeDifferentialTest.compare(s, PolicyText.trace(12, 16, 6), "merged", null);
    }
}
