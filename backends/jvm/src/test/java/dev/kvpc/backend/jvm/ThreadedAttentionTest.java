package dev.kvpc.backend.jvm;

import dev.kvpc.backend.interp.PassPreservationTest;
import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.runtime.KvRuntime;
import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.Sequence;
import dev.kvpc.runtime.exec.NativeRunner;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.trace.Trace;
import dev.kvpc.runtime.trace.TraceFeed;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A layer's lanes attended on several threads give the same bits as on one: every layer's output at every step,
 * and every lane's kept positions after it, for every stdlib policy compiled, and for the full cache.
 */
class ThreadedAttentionTest {
    @TempDir
    static Path stdlib;

    @TestFactory
    Stream<DynamicTest> threadsChangeNoBit() throws IOException {
        var shape = PassPreservationTest.SMALL;
        ModelSpec model = new ModelSpec(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim(), Precision.F32);
        List<DynamicTest> tests = new ArrayList<>();
        tests.add(DynamicTest.dynamicTest("full cache", () -> same(model, null)));
        for (Path p : PassPreservationTest.programs(stdlib)) {
            Frontend.Result r = Frontend.check(p, shape);
            assertTrue(r.ok(), p.getFileName() + " checks");
            String root = Compilation.defaultRoot(r.program());
            if (root == null) continue;
            tests.add(DynamicTest.dynamicTest(p.getFileName().toString(), () -> {
                Specialized s = Compilation.optimise(r.program(), root, PassPreservationTest.SMALL_BUDGETS.getOrDefault(root, Map.of()),
                        Pipeline.Options.DEFAULT, (a, b) -> { });
                same(model, () -> new NativeRunner(s, JvmPolicies.compile(s, root).define(), null));
            }));
        }
        return tests.stream();
    }


    private static void same(ModelSpec model, java.util.function.Supplier<PolicyRunner> runner) {
        for (Trace t : PassPreservationTest.traces()) {
            List<float[]> one = run(model, runner, t, 1), three = run(model, runner, t, 3);
            assertEquals(one.size(), three.size());
            assertTrue(one.size() > 20, "layers were attended");
            for (int i = 0; i < one.size(); i++) assertArrayEquals(one.get(i), three.get(i), "record " + i);
        }
    }

    /** Each layer's output at each step, then each lane's positions after it. */
    private static List<float[]> run(ModelSpec model, java.util.function.Supplier<PolicyRunner> runner, Trace t, int threads) {
        List<float[]> out = new ArrayList<>();
        PolicyRunner policy = runner == null ? PolicyRunner.fullCache() : runner.get();
        try (PagePool pool = new PagePool();
             Sequence seq = new KvRuntime(model, policy, pool, 16, new JvmDecodeKernels()).withThreads(threads, 0).newSequence()) {
            TraceFeed.feed(seq, t, (si, l, o) -> {
                out.add(o.clone());
                for (int kv = 0; kv < model.kvHeads(); kv++) {
                    int[] pos = seq.lane(l, kv).positionTable();
                    float[] p = new float[seq.lane(l, kv).size()];
                    for (int i = 0; i < p.length; i++) p[i] = pos[i];
                    out.add(p);
                }
            });
        }
        return out;
    }
}
