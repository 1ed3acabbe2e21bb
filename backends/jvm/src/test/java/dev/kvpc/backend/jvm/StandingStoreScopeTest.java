package dev.kvpc.backend.jvm;

import dev.kvpc.backend.interp.PolicyText;
import dev.kvpc.backend.interp.Result;
import dev.kvpc.runtime.trace.Trace;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A standing {@code store ... otherwise} after a handler that changed the entries (a keep) and then stored with a
 * scope: the standing rule covers what the handler's store did not. Compiled code read the handler's scope in the
 * standing rule's own view, whose epochs did not index it, and stopped with an IndexOutOfBoundsException.
 */
class StandingStoreScopeTest {
    @Test
    void aStandingOtherwiseReadsTheHandlersScopeAfterAKeep() {
        Trace t = PolicyText.trace(41, 12, 3);
        Result r = CompiledOnLanes.everyEngine("standing", """
                policy standing(recent: int = 4) {
                    store values as f16 otherwise
                    on decode {
                        keep first(1) + last(len - 2)
                        store values as int8 per token except last(recent)
                    }
                }
                """, t);
        // each decode step drops the oldest entry but position 0; values are int8 but the newest 4, which are f16
        for (int step = 1; step <= 3; step++) {
            int newest = 12 + step - 1;
            for (int l = 0; l < 2; l++) {
                for (int h = 0; h < 2; h++) {
                    Result.Lane lane = r.steps().get(step).lanes()[l][h];
                    int[] want = new int[12];
                    for (int i = 1; i < 12; i++) want[i] = newest - 11 + i;
                    String where = "step " + step + " lane " + l + "," + h;
                    assertArrayEquals(want, CompiledOnLanes.kept(r, step, l, h), where);
                    String[] p = lane.precisions();
                    for (int i = 0; i < p.length; i++) {
                        String v = p[i].substring(p[i].indexOf('/') + 1);
                        assertTrue(v.equals(i < p.length - 4 ? "int8" : "f16"), where + " entry " + i + ": " + p[i]);
                    }
                }
            }
        }
    }
}
