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
 * {@code logits} at prefill are causally masked: an entry a query does not see reads as -inf, in the reference
 * interpreter and in compiled code on the runtime's lanes (both once gave the later entries' real scores). The
 * policy keeps, per entry, the least logit over the last four prompt queries: the prompt's last three entries are
 * unseen by the first of those queries. (The overflow handler, which never runs, keeps the state read.)
 */
class MaskedLogitsTest {
    static final String POLICY = """
            policy unseen() {
                observe last(4) queries at prefill
                state lo: f32 per token = 0
                on prefill {
                    lo = min(logits, over: query, group)
                }
                on overflow(100000) {
                    keep top(lo, 100000)
                }
            }
            """;

    @Test
    void laterEntriesReadAsMinusInfinity() {
        Specialized s = PolicyText.optimise("unseen", POLICY);
        Trace t = PassPreservationTest.traces().getFirst();
        int n = t.steps().getFirst().tokens();
        assertTrue(n > 4, "a prompt longer than the observed queries");
        double[] lo = Interpreter.run(s, t).steps().getFirst().lanes()[0][0].states().get("lo");
        assertEquals(n, lo.length);
        assertUnseenAtTheEnd(lo, n, "interpreter");
        double[] got = CompiledOnLanes.stateAfterPrompt(s, t, "lo");
        assertEquals(n, got.length);
        assertUnseenAtTheEnd(got, n, "compiled");
        for (int i = 0; i < n - 3; i++) assertEquals(lo[i], got[i], 1e-4 * (1 + Math.abs(lo[i])), "entry " + i);
    }

    private static void assertUnseenAtTheEnd(double[] lo, int n, String who) {
        for (int i = 0; i < n - 3; i++) assertTrue(Double.isFinite(lo[i]), who + ": entry " + i + " is seen by every observed query: " + lo[i]);
        for (int i = n - 3; i < n; i++) assertEquals(Double.NEGATIVE_INFINITY, lo[i], who + ": entry " + i + " is after the first observed query");
    }
}
