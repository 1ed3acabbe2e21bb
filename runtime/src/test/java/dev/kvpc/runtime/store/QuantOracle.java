package dev.kvpc.runtime.store;

import java.util.Random;

/**
 * The reference semantics of storage precisions, copied from the interpreter so that the runtime does not depend
 * on it: {@code f16}, {@code bf16} and {@code group} are verbatim from
 * backends/interp/src/main/java/dev/kvpc/backend/interp/Quant.java, and {@link #tokenGroups} / {@link #channelBlock}
 * apply {@code group} the way ExecContext.apply(...) in the same package does (per token: groups of g channels;
 * per channel: each channel's column over g consecutive entries).
 */
final class QuantOracle {
    private QuantOracle() {}

    // ---- verbatim from Quant.java ----

    static float f16(float x) {
        return Float.float16ToFloat(Float.floatToFloat16(x));
    }

    static float bf16(float x) {
        if (Float.isNaN(x)) return x;
        int bits = Float.floatToRawIntBits(x);
        int rounding = 0x7FFF + ((bits >>> 16) & 1);
        return Float.intBitsToFloat((bits + rounding) & 0xFFFF0000);
    }

    /** Quantises {@code xs[from..to)} in place to {@code bits} with one scale and zero point (stored as f16). */
    static void group(float[] xs, int from, int to, int bits) {
        float min = Float.POSITIVE_INFINITY, max = Float.NEGATIVE_INFINITY;
        for (int i = from; i < to; i++) {
            min = Math.min(min, xs[i]);
            max = Math.max(max, xs[i]);
        }
        if (from >= to) return;
        int levels = (1 << bits) - 1;
        float zero = f16(min);
        float scale = f16((max - zero) / levels);
        for (int i = from; i < to; i++) {
            if (scale == 0f || !Float.isFinite(scale)) {
                xs[i] = zero;
                continue;
            }
            long q = Math.round((xs[i] - zero) / scale);
            q = Math.max(0, Math.min(levels, q));
            xs[i] = zero + q * scale;
        }
    }

    // ---- as ExecContext.apply(...) uses it ----

    /** A row quantised per token in groups of {@code g} channels (a copy; the input is left alone). */
    static float[] tokenGroups(float[] row, int g, int bits) {
        float[] x = row.clone();
        int d = x.length;
        for (int from = 0; from < d; from += g) group(x, from, Math.min(d, from + g), bits);
        return x;
    }

    /** {@code rows} (g rows of d) quantised per channel as one block (copies). */
    static float[][] channelBlock(float[][] rows, int bits) {
        int g = rows.length, d = rows[0].length;
        float[][] out = new float[g][];
        for (int t = 0; t < g; t++) out[t] = rows[t].clone();
        float[] col = new float[g];
        for (int c = 0; c < d; c++) {
            for (int t = 0; t < g; t++) col[t] = out[t][c];
            group(col, 0, g, bits);
            for (int t = 0; t < g; t++) out[t][c] = col[t];
        }
        return out;
    }

    // ---- the package's documented accumulation orders ----

    /** Four lanes by {@code i mod 4}, each in increasing i, then {@code (l0 + l1) + (l2 + l3)}. */
    static float dot4(float[] q, int qOff, float[] x) {
        float[] l = new float[4];
        for (int i = 0; i < x.length; i++) l[i & 3] += q[qOff + i] * x[i];
        return (l[0] + l[1]) + (l[2] + l[3]);
    }

    static void axpy(float w, float[] x, float[] acc, int accOff) {
        for (int i = 0; i < x.length; i++) acc[accOff + i] += w * x[i];
    }

    // ---- data ----

    /** Random values with a per-call spread and offset, so groups see many ranges. */
    static float[] randomRow(Random rnd, int n) {
        float spread = (float) Math.pow(10, rnd.nextInt(7) - 3), offset = (float) (rnd.nextGaussian() * spread);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = offset + (float) rnd.nextGaussian() * spread;
        return x;
    }

    /** Like {@link #randomRow} but sometimes with awkward values planted: constants, signed zeros, huge, inf, NaN. */
    static float[] awkwardRow(Random rnd, int n) {
        float[] x = randomRow(rnd, n);
        switch (rnd.nextInt(10)) {
            case 0 -> java.util.Arrays.fill(x, (float) rnd.nextGaussian());
            case 1 -> java.util.Arrays.fill(x, -0.0f);
            case 2 -> java.util.Arrays.fill(x, 0.0f);
            case 3 -> x[rnd.nextInt(n)] = 1e5f;
            case 4 -> x[rnd.nextInt(n)] = -1e6f;
            case 5 -> x[rnd.nextInt(n)] = Float.NaN;
            case 6 -> x[rnd.nextInt(n)] = rnd.nextBoolean() ? Float.POSITIVE_INFINITY : Float.NEGATIVE_INFINITY;
            case 7 -> { for (int i = 0; i < n; i++) x[i] = 1000.3f + (float) rnd.nextGaussian() * 1e-3f; }
            case 8 -> { for (int i = 0; i < n; i++) x[i] = (float) rnd.nextGaussian() * 1e-7f; }
            default -> { }
        }
        return x;
    }

    static void assertSameBits(float[] expected, float[] actual, String what) {
        org.junit.jupiter.api.Assertions.assertEquals(expected.length, actual.length, what + ": length");
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToIntBits(expected[i]) != Float.floatToIntBits(actual[i])) {
                org.junit.jupiter.api.Assertions.fail(what + ": element " + i + " expected " + expected[i] + " (0x"
                        + Integer.toHexString(Float.floatToRawIntBits(expected[i])) + ") but was " + actual[i] + " (0x"
                        + Integer.toHexString(Float.floatToRawIntBits(actual[i])) + ")");
            }
        }
    }

    static void assertSameBits(float expected, float actual, String what) {
        assertSameBits(new float[] {expected}, new float[] {actual}, what);
    }
}
