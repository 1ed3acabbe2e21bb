package dev.kvpc.runtime.engine;

import dev.kvpc.runtime.Rope;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * positions cache: with keys rotated by cache slot, what attention gives depends on where entries sit in the cache,
 * not on how far back in the text they were; with text positions (positions original) it does depend on that.
 */
class CachePositionsTest {
    private static float[] run(int[] positions, boolean bySlot, Rope rope) {
        int d = 16;
        Random r = new Random(7);
        try (PagePool pool = new PagePool()) {
            Lane lane = new Lane(pool, d, QuantSpec.of(Precision.F32), 8);
            for (int p : positions) {
                float[] k = new float[d], v = new float[d];
                for (int c = 0; c < d; c++) {
                    k[c] = (float) r.nextGaussian();
                    v[c] = (float) r.nextGaussian();
                }
                if (!bySlot) rope.rotate(k, 0, d, p);
                lane.append(p, 0, k, 0, v, 0);
            }
            float[] q = new float[d];
            for (int c = 0; c < d; c++) q[c] = (float) r.nextGaussian();
            int qpos = positions[positions.length - 1];
            rope.rotate(q, 0, d, bySlot ? positions.length - 1 : qpos);
            float[] out = new float[d];
            new AttentionKernel().attend(lane, q, new int[] {qpos}, 1, null, out, null, bySlot ? rope : null);
            return out;
        }
    }

    @Test
    void slotsNotTextPositionsDecideUnderCachePositions() {
        Rope rope = new Rope(10000);
        int[] near = {0, 1, 100, 101, 102, 103, 104, 105}, far = {0, 1, 5000, 5001, 5002, 5003, 5004, 5005};
        assertArrayEquals(run(near, true, rope), run(far, true, rope), "same cache layout, same attention");
        float[] a = run(near, false, rope), b = run(far, false, rope);
        double diff = 0;
        for (int i = 0; i < a.length; i++) diff += Math.abs(a[i] - b[i]);
        assertTrue(diff > 1e-3, "by text position, the sinks are farther away and attention changes");
    }
}
