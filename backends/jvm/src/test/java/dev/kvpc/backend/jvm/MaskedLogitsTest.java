package dev.kvpc.backend.jvm;

import dev.kvpc.backend.interp.Interpreter;
import dev.kvpc.backend.interp.PassPreservationTest;
import dev.kvpc.backend.interp.Result;
import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.runtime.KvRuntime;
import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.Sequence;
import dev.kvpc.runtime.exec.NativeRunner;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.trace.Trace;
import dev.kvpc.runtime.trace.TraceFeed;
import org.junit.jupiter.api.Test;

import java.util.Map;

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
        Frontend.Result fr = Frontend.checkText("unseen.kvp", POLICY, null, PassPreservationTest.SMALL);
        assertTrue(fr.ok(), fr.diagnostics().all().toString());
        Specialized s = Compilation.optimise(fr.program(), "unseen", Map.of(), Pipeline.Options.DEFAULT, (a, b) -> { });
        Trace t = PassPreservationTest.traces().getFirst();
        int n = t.steps().getFirst().tokens();
        assertTrue(n > 4, "a prompt longer than the observed queries");
        // the interpreter
        Result.Lane lane = Interpreter.run(s, t).steps().getFirst().lanes()[0][0];
        double[] lo = lane.states().get("lo");
        assertEquals(n, lo.length);
        assertUnseenAtTheEnd(lo, n, "interpreter");
        // compiled code on the runtime's lanes, after the prefill
        var shape = s.shape();
        ModelSpec model = new ModelSpec(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim(), Precision.F32, null);
        double[][] got = new double[1][];
        try (PagePool pool = new PagePool()) {
            KvRuntime rt = new KvRuntime(model, new NativeRunner(s, JvmPolicies.compile(s, "unseen.kvp").define(), null, false), pool, 8);
            try (Sequence seq = rt.newSequence()) {
                TraceFeed.feed(seq, t, (si, l, out) -> {
                    if (si != 0 || l != 0) return;
                    Lane runtimeLane = seq.lane(0, 0);
                    float[] col = runtimeLane.state("lo");
                    got[0] = new double[runtimeLane.size()];
                    for (int i = 0; i < got[0].length; i++) got[0][i] = col[i];
                });
            }
        }
        assertEquals(n, got[0].length);
        assertUnseenAtTheEnd(got[0], n, "compiled");
        for (int i = 0; i < n - 3; i++) assertEquals(lo[i], got[0][i], 1e-4 * (1 + Math.abs(lo[i])), "entry " + i);
    }

    private static void assertUnseenAtTheEnd(double[] lo, int n, String who) {
        for (int i = 0; i < n - 3; i++) assertTrue(Double.isFinite(lo[i]), who + ": entry " + i + " is seen by every observed query: " + lo[i]);
        for (int i = n - 3; i < n; i++) assertEquals(Double.NEGATIVE_INFINITY, lo[i], who + ": entry " + i + " is after the first observed query");
    }
}
