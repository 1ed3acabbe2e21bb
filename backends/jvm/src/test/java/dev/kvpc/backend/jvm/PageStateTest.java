package dev.kvpc.backend.jvm;

import dev.kvpc.backend.interp.PassPreservationTest;
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

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The per-page states a compiled policy publishes to the lanes (Quest's key bounds) are those of the lane's entries
 * after every step: the runner copies them only when a page's value was computed anew, and that must never leave a
 * stale copy behind.
 */
class PageStateTest {
    @Test
    void questsPublishedBoundsAreThoseOfTheLanesKeysAfterEveryStep() throws Exception {
        Path src = Files.createTempDirectory("kvpc-pages").resolve("q.kvp");
        // small pages and a short attend set, so that pages fill, move and the attend set changes
        Files.writeString(src, "import \"quest.kvp\"\n\npolicy q = quest(page = 4, pages = 3)\n");
        var shape = PassPreservationTest.SMALL;
        Frontend.Result r = Frontend.check(src, shape);
        assertTrue(r.ok(), "q.kvp checks");
        Specialized s = Compilation.optimise(r.program(), "q", Map.of(), Pipeline.Options.DEFAULT, (a, b) -> { });
        NativeRunner runner = new NativeRunner(s, JvmPolicies.compile(s, "q.kvp").define(), null);
        ModelSpec model = new ModelSpec(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim(), Precision.F32);
        int d = shape.headDim();
        int[] checked = {0};
        for (Trace t : PassPreservationTest.traces()) {
            try (PagePool pool = new PagePool(); Sequence seq = new KvRuntime(model, runner, pool).newSequence()) {
                TraceFeed.feed(seq, t, (si, l, out) -> {
                    for (int kv = 0; kv < shape.kvHeads(); kv++) {
                        Lane lane = seq.lane(l, kv);
                        if (!lane.hasPageState("kmin")) continue;
                        float[][] want = bounds(lane, 4, d);
                        String where = "step " + si + " layer " + l + " kv " + kv;
                        assertArrayEquals(want[0], lane.pageState("kmin"), where + ": kmin");
                        assertArrayEquals(want[1], lane.pageState("kmax"), where + ": kmax");
                        checked[0]++;
                    }
                });
            }
        }
        assertTrue(checked[0] > 100, "page states were published and checked (" + checked[0] + ")");
    }

    /** Per page of {@code page} entries: the channel-wise min and max of its keys. */
    private static float[][] bounds(Lane lane, int page, int d) {
        int n = lane.size(), pages = (n + page - 1) / page;
        float[] min = new float[pages * d], max = new float[pages * d], row = new float[d];
        java.util.Arrays.fill(min, Float.POSITIVE_INFINITY);
        java.util.Arrays.fill(max, Float.NEGATIVE_INFINITY);
        for (int i = 0; i < n; i++) {
            lane.read(i, Lane.Part.KEYS, row, 0);
            for (int c = 0; c < d; c++) {
                min[i / page * d + c] = Math.min(min[i / page * d + c], row[c]);
                max[i / page * d + c] = Math.max(max[i / page * d + c], row[c]);
            }
        }
        return new float[][] {min, max};
    }
}
