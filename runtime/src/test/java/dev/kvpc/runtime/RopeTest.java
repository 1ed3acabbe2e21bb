package dev.kvpc.runtime;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** RoPE and its scalings against the formula written out here. */
class RopeTest {
    private static float[] random(int n, long seed) {
        Random r = new Random(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextGaussian();
        return x;
    }

    @Test
    void rotatesPairsByTheAngleOfTheirFrequency() {
        int d = 16;
        float[] x = random(d, 1), y = x.clone();
        new Rope(10000).rotate(y, 0, d, 37);
        for (int i = 0; i < d / 2; i++) {
            double a = 37 * Math.pow(10000, -2.0 * i / d);
            assertEquals(x[2 * i] * Math.cos(a) - x[2 * i + 1] * Math.sin(a), y[2 * i], 1e-6);
            assertEquals(x[2 * i] * Math.sin(a) + x[2 * i + 1] * Math.cos(a), y[2 * i + 1], 1e-6);
        }
    }

    @Test
    void linearScalingDividesThePositionAndFrequencyFactorsTheFrequencies() {
        int d = 16;
        float[] x = random(d, 2);
        float[] plain = x.clone(), linear = x.clone(), freqs = x.clone(), ones = x.clone(), mixed = x.clone(), byHand = x.clone();
        new Rope(500000).rotate(plain, 0, d, 21);
        new Rope(500000, 4.0, null).rotate(linear, 0, d, 84);
        float[] four = new float[d / 2];
        java.util.Arrays.fill(four, 4f);
        new Rope(500000, 1.0, four).rotate(freqs, 0, d, 84);
        float[] one = new float[d / 2];
        java.util.Arrays.fill(one, 1f);
        new Rope(500000, 1.0, one).rotate(ones, 0, d, 21);
        assertArrayEquals(plain, linear, "position 84 scaled by 4 is position 21");
        assertArrayEquals(plain, freqs, "frequencies divided by 4 at position 84 are position 21's angles");
        assertArrayEquals(plain, ones, "factors of 1 change nothing");
        // different factors per pair, and both scalings at once
        float[] ff = {1, 1, 2, 3, 5, 8, 13, 21};
        new Rope(500000, 2.0, ff).rotate(mixed, 0, d, 100);
        for (int i = 0; i < d / 2; i++) {
            double a = (100 / 2.0) * Math.pow(500000, -2.0 * i / d) / ff[i];
            float x0 = byHand[2 * i], x1 = byHand[2 * i + 1];
            byHand[2 * i] = (float) (x0 * Math.cos(a) - x1 * Math.sin(a));
            byHand[2 * i + 1] = (float) (x0 * Math.sin(a) + x1 * Math.cos(a));
        }
        assertArrayEquals(byHand, mixed, 1e-6f);
    }

    /** The rotation as the formula gives it, in the same double arithmetic and rounding as {@link Rope#rotate}. */
    private static void byFormula(float[] x, int d, int position, double theta, double factor, float[] ff) {
        double p = factor == 1.0 ? position : position / factor;
        for (int i = 0; i < d / 2; i++) {
            double freq = Math.pow(theta, -2.0 * i / d);
            if (ff != null) freq /= ff[i];
            double a = p * freq, c = Math.cos(a), s = Math.sin(a);
            float x0 = x[2 * i], x1 = x[2 * i + 1];
            x[2 * i] = (float) (x0 * c - x1 * s);
            x[2 * i + 1] = (float) (x0 * s + x1 * c);
        }
    }

    @Test
    void keptAnglesRotateBitForBitAsTheFormulaAtEveryPositionOnEveryThread() throws Exception {
        float[] ff = new float[48];
        for (int i = 0; i < ff.length; i++) ff[i] = 1 + i % 5;
        // head sizes with and without a power of two, scalings on and off; positions in any order, past the kept
        // table's limit (2^21 values: 21,845 positions of 96 channels) too
        Object[][] cases = {{16, new Rope(10000), 10000.0, 1.0, null}, {96, new Rope(500000, 2.0, ff), 500000.0, 2.0, ff}};
        int[] positions = {0, 1, 5000, 63, 64, 65, 1023, 21_844, 21_845, 40_000, 2_000_000, 7, -1, -70};
        for (Object[] c : cases) {
            int d = (int) c[0];
            Rope rope = (Rope) c[1];
            for (int pos : positions) {
                float[] x = random(d, pos), want = x.clone();
                rope.rotate(x, 0, d, pos);
                byFormula(want, d, pos, (double) c[2], (double) c[3], (float[]) c[4]);
                assertArrayEquals(want, x, "d " + d + ", position " + pos);
            }
        }
        // four threads growing one rope's table at once
        Rope rope = new Rope(77777);
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(4);
        try {
            java.util.List<java.util.concurrent.Future<Boolean>> same = new java.util.ArrayList<>();
            for (int t = 0; t < 4; t++) {
                int first = t;
                same.add(pool.submit(() -> {
                    for (int pos = first; pos < 20_000; pos += 4) {
                        float[] x = random(64, pos), want = x.clone();
                        rope.rotate(x, 0, 64, pos);
                        byFormula(want, 64, pos, 77777, 1.0, null);
                        if (!java.util.Arrays.equals(want, x)) return false;
                    }
                    return true;
                }));
            }
            for (var f : same) assertTrue(f.get());
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void badScalingIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new Rope(10000, 0, null));
        assertThrows(IllegalArgumentException.class, () -> new Rope(10000, 1, new float[] {1, -1}));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Rope(10000, 1, new float[3]).rotate(new float[8], 0, 8, 1));
        assertTrue(e.getMessage().contains("above 0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Rope(10000, 1, new float[] {1, 1, 1}).rotate(new float[8], 0, 8, 1));
        assertTrue(e.getMessage().contains("need 4"), e.getMessage());
        assertEquals(new Rope(10000, 1, new float[] {1, 2}), new Rope(10000, 1, new float[] {1, 2}));
    }
}
