package dev.kvpc.backend.jvm;

import dev.kvpc.backend.interp.Interpreter;
import dev.kvpc.backend.interp.PassPreservationTest;
import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.runtime.KvRuntime;
import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.Sequence;
import dev.kvpc.runtime.exec.NativeRunner;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.trace.Trace;
import dev.kvpc.runtime.trace.TraceFeed;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code quantile(x within S, p)} counts the entries of {@code S} only, in the reference interpreter and in compiled
 * code on the runtime's lanes (both once counted the entries left out too, as NaN sorted last): the median of the
 * last eight positions of a prompt of {@code n} is {@code n - 4.5}.
 */
class QuantileWithinTest {
    static final String POLICY = """
            policy median() {
                state acc: f32 per token = 0
                on prefill {
                    acc = float(pos) * 0.0 + quantile(float(pos) within last(8), 0.5)
                }
                on overflow(100000) {
                    keep top(acc, 100000)
                }
            }
            """;

    @Test
    void onlyTheEntriesOfTheSetCount() {
        Frontend.Result fr = Frontend.checkText("median.kvp", POLICY, null, PassPreservationTest.SMALL);
        assertTrue(fr.ok(), fr.diagnostics().all().toString());
        Specialized s = Compilation.optimise(fr.program(), "median", Map.of(), Pipeline.Options.DEFAULT, (a, b) -> { });
        Trace t = PassPreservationTest.traces().getFirst();
        int n = t.steps().getFirst().tokens();
        assertTrue(n > 8, "a prompt longer than the set");
        double want = n - 4.5;
        double[] acc = Interpreter.run(s, t).steps().getFirst().lanes()[0][0].states().get("acc");
        assertEquals(n, acc.length);
        for (int i = 0; i < n; i++) assertEquals(want, acc[i], "interpreter, entry " + i);
        var shape = s.shape();
        ModelSpec model = new ModelSpec(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim(), Precision.F32, null);
        float[][] got = new float[1][];
        try (PagePool pool = new PagePool()) {
            KvRuntime rt = new KvRuntime(model, new NativeRunner(s, JvmPolicies.compile(s, "median.kvp").define(), null, false), pool, 8);
            try (Sequence seq = rt.newSequence()) {
                TraceFeed.feed(seq, t, (si, l, out) -> {
                    if (si == 0 && l == 0) got[0] = java.util.Arrays.copyOf(seq.lane(0, 0).state("acc"), seq.lane(0, 0).size());
                });
            }
        }
        assertEquals(n, got[0].length);
        for (int i = 0; i < n; i++) assertEquals(want, got[0][i], "compiled, entry " + i);
    }
}
