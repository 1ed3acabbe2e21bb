package dev.kvpc.runtime.engine;

import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;
import org.junit.jupiter.api.Test;

import java.util.BitSet;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** The kernel against a naive double-precision attention on the same (dequantised) keys and values. */
class AttentionKernelTest {
    private static double[][] naive(float[][] k, float[][] v, int[] pos, float[] q, int qOff, int qpos, BitSet attend, double[] col) {
        int n = k.length, d = k[0].length;
        double[] l = new double[n];
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < n; j++) {
            if ((attend != null && !attend.get(j)) || pos[j] > qpos) {
                l[j] = Double.NaN;
                continue;
            }
            double s = 0;
            for (int c = 0; c < d; c++) s += (double) q[qOff + c] * k[j][c];
            l[j] = s / Math.sqrt(d);
            max = Math.max(max, l[j]);
        }
        double sum = 0;
        for (int j = 0; j < n; j++) if (!Double.isNaN(l[j])) sum += Math.exp(l[j] - max);
        double[] out = new double[d];
        for (int j = 0; j < n; j++) {
            if (Double.isNaN(l[j])) continue;
            double p = Math.exp(l[j] - max) / sum;
            col[j] += p;
            for (int c = 0; c < d; c++) out[c] += p * v[j][c];
        }
        return new double[][] {out};
    }

    private void compare(QuantSpec spec, double tol) {
        int d = 64, n = 200, group = 4;
        Random r = new Random(3);
        try (PagePool pool = new PagePool()) {
            Lane lane = new Lane(pool, d, spec, 16);
            int[] pos = new int[n];
            for (int i = 0; i < n; i++) {
                float[] k = new float[d], v = new float[d];
                for (int c = 0; c < d; c++) {
                    k[c] = (float) r.nextGaussian();
                    v[c] = (float) r.nextGaussian();
                }
                pos[i] = 2 * i;
                lane.append(pos[i], 0, k, 0, v, 0);
            }
            float[][] ks = new float[n][d], vs = new float[n][d];
            for (int i = 0; i < n; i++) {
                lane.read(i, Lane.Part.KEYS, ks[i], 0);
                lane.read(i, Lane.Part.VALUES, vs[i], 0);
            }
            float[] q = new float[2 * group * d];
            for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
            int[] qpos = {150, 399};
            BitSet attend = new BitSet();
            for (int i = 0; i < n; i += 3) attend.set(i);
            for (BitSet a : new BitSet[] {null, attend}) {
                float[] out = new float[q.length];
                float[] col = new float[n];
                new AttentionKernel().attend(lane, q, qpos, group, a, out, col);
                double[] ncol = new double[n];
                for (int qi = 0; qi < 2; qi++) {
                    for (int g = 0; g < group; g++) {
                        int off = (qi * group + g) * d;
                        double[] want = naive(ks, vs, pos, q, off, qpos[qi], a, ncol)[0];
                        for (int c = 0; c < d; c++) assertEquals(want[c], out[off + c], tol, "output " + qi + "/" + g + "/" + c);
                    }
                }
                for (int j = 0; j < n; j++) assertEquals(ncol[j], col[j], 1e-4, "column sum " + j);
                // causal: entries after the first query's position got nothing from it; attend set respected
                if (a != null) for (int j = 0; j < n; j++) if (!a.get(j)) assertEquals(0, col[j]);
            }
        }
    }

    @Test
    void f32() {
        compare(QuantSpec.of(Precision.F32), 1e-4);
    }

    @Test
    void int4PerTokenReadsThePackedRows() {
        compare(new QuantSpec(Precision.INT4, QuantSpec.Axis.TOKEN, 32), 1e-4);
    }

    @Test
    void f16() {
        compare(QuantSpec.of(Precision.F16), 1e-4);
    }
}
