package dev.kvpc.gpu;

import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.runtime.engine.AttentionKernel;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The dense-row form of decode attention, the kernels {@code benchmarks/gpu} runs, on the OpenCL device
 * ({@link DenseDecodeRunner}) against the runtime's {@link AttentionKernel}: head dims 8, 64 and 128,
 * groups 1, 4 and 8, f32 and int4 lanes, lanes of one split and of several (merged partial softmax states), causal
 * masking inside the lane, attend subsets, nothing visible.
 *
 * <p>Tolerance: an output may differ by {@value #TOL} times the largest magnitude of its head's output row, a column sum
 * by {@value #TOL} relative or 1e-9 absolute: the device sums in float, in another order, with fused multiply-adds.
 */
class DenseDecodeTest {
    static final double TOL = 2e-5;
    private static ClContext cl;

    static synchronized ClContext cl() {
        if (cl == null) cl = Devices.context();
        return cl;
    }

    @AfterAll
    static void close() {
        if (cl != null) cl.close();
        cl = null;
    }

    @TestFactory
    List<DynamicTest> matchesTheRuntimeKernel() {
        List<DynamicTest> tests = new ArrayList<>();
        for (int d : new int[] {8, 64, 128}) {
            for (int group : new int[] {1, 4, 8}) {
                for (Precision p : new Precision[] {Precision.F32, Precision.INT4}) {
                    tests.add(DynamicTest.dynamicTest("d" + d + " group " + group + " " + p, () -> compare(d, group, p, d * 131L + group * 7 + p.ordinal())));
                }
            }
        }
        return tests;
    }

    static void compare(int d, int group, Precision precision, long seed) {
        Random r = new Random(seed);
        QuantSpec spec = precision == Precision.F32 ? QuantSpec.of(precision) : QuantSpec.resolve(precision, QuantSpec.Axis.TOKEN, Math.min(d, 32), d);
        DenseDecodeRunner kernel = new DenseDecodeRunner(cl(), d, group);
        try (PagePool pool = new PagePool()) {
            for (int trial = 0; trial < 6; trial++) {
                // one split (under 256 entries) and several
                int n0 = trial % 2 == 0 ? 30 + r.nextInt(150) : 300 + r.nextInt(700);
                Lane lane = randomLane(pool, r, d, spec, n0);
                int n = lane.size();
                float[] q = new float[group * d];
                for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
                int qpos = trial % 3 == 1 ? lane.position(n / 2) : lane.position(n - 1);
                BitSet attend = null;
                if (trial >= 3) {
                    attend = new BitSet();
                    for (int j = 0; j < n; j++) if (r.nextInt(3) != 0) attend.set(j);
                    if (trial == 5) attend.clear();
                }
                float[] col0 = new float[n];
                for (int j = 0; j < n; j++) col0[j] = r.nextFloat();
                String where = "d" + d + " group " + group + " " + precision + ", trial " + trial + ", " + n + " entries";
                float[] out = new float[group * d], outRef = new float[group * d];
                java.util.Arrays.fill(out, Float.NaN);
                float[] col = col0.clone(), colRef = col0.clone();
                kernel.attend(lane, q, qpos, attend, out, col);
                new AttentionKernel().attend(lane, q, new int[] {qpos}, group, attend, outRef, colRef);
                assertClose(outRef, out, d, where);
                for (int j = 0; j < n; j++) assertEquals(colRef[j], col[j], Math.max(TOL * Math.abs(colRef[j]), 1e-9), where + ": column sum of entry " + j);
                lane.clear();
            }
        }
    }

    static Lane randomLane(PagePool pool, Random r, int d, QuantSpec spec, int n) {
        Lane lane = new Lane(pool, d, spec, 16);
        float[] k = new float[d], v = new float[d];
        for (int j = 0; j < n; j++) {
            for (int c = 0; c < d; c++) {
                k[c] = (float) (r.nextGaussian() * 1.5 + 0.3);
                v[c] = (float) r.nextGaussian();
            }
            lane.append(3 * j + 1, j, k, 0, v, 0);
        }
        BitSet keep = new BitSet();
        for (int j = 0; j < n; j++) if (r.nextInt(5) != 0) keep.set(j);
        lane.retain(keep);
        return lane;
    }

    static void assertClose(float[] expected, float[] actual, int d, String where) {
        for (int row = 0; row < expected.length / d; row++) {
            double scale = 0;
            for (int c = 0; c < d; c++) scale = Math.max(scale, Math.abs(expected[row * d + c]));
            for (int c = 0; c < d; c++) {
                int i = row * d + c;
                assertFalse(Float.isNaN(actual[i]), where + ": output of head " + row + " channel " + c + " not written");
                assertEquals(expected[i], actual[i], TOL * scale, where + ": head " + row + " channel " + c);
            }
        }
    }

    /** Rows that all weigh the same: an exact answer, so the comparison above is not vacuous. */
    @Test
    void averagesEqualLogitRows() {
        int d = 72;
        DenseDecodeRunner k = new DenseDecodeRunner(cl(), d, 2);
        try (PagePool pool = new PagePool()) {
            Lane lane = new Lane(pool, d, QuantSpec.of(Precision.F32), 4);
            float[] key = new float[d], v = new float[d];
            for (int j = 0; j < 600; j++) {
                for (int c = 0; c < d; c++) v[c] = j * 100 + c;
                lane.append(j, 0, key, 0, v, 0);
            }
            float[] out = new float[2 * d], q = new float[2 * d], col = new float[600];
            java.util.Arrays.fill(q, 1f);
            BitSet attend = new BitSet();
            attend.set(2);
            attend.set(4);
            attend.set(300); // another split
            attend.set(599); // masked: position 599 > qpos 400
            k.attend(lane, q, 400, attend, out, col);
            for (int c = 0; c < d; c++) {
                assertEquals(10200 + c, out[c], 1e-2, "head 0 averages entries 2, 4 and 300");
                assertEquals(10200 + c, out[d + c], 1e-2, "head 1 too");
            }
            float third = 2f / 3f;
            for (int j = 0; j < 600; j++) assertEquals(j == 2 || j == 4 || j == 300 ? third : 0f, col[j], 1e-6f, "column sum of entry " + j);
            lane.clear();
        }
    }
}
