package dev.kvpc.bench;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The hand-written baseline for decode attention: flat arrays, Vector API dot products and value updates, the
 * style of the fastest Java inference engines (one query group over a contiguous key and value cache). Keys and
 * values are either f32 rows or int4 rows with one f32 scale per 32 channels (symmetric, two values per byte).
 */
final class ReferenceDecode {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private ReferenceDecode() {}

    /** out[g*d..] = softmax(q_g . K^T / sqrt d) V for each query head g of the group, over n f32 rows. */
    static void attendF32(float[] keys, float[] values, int n, int d, float[] q, int group, float[] out, float[] logits) {
        float scale = (float) (1.0 / Math.sqrt(d));
        for (int g = 0; g < group; g++) {
            int qOff = g * d;
            float max = Float.NEGATIVE_INFINITY;
            for (int j = 0; j < n; j++) {
                float l = dot(q, qOff, keys, j * d, d) * scale;
                logits[j] = l;
                if (l > max) max = l;
            }
            float inv = expInPlace(logits, n, max);
            java.util.Arrays.fill(out, qOff, qOff + d, 0f);
            for (int j = 0; j < n; j++) axpy(logits[j] * inv, values, j * d, out, qOff, d);
        }
    }

    /** As {@link #attendF32} over int4 rows: {@code packed} holds d/2 bytes per row, {@code scales} d/32 per row. */
    static void attendInt4(byte[] kPacked, float[] kScales, byte[] vPacked, float[] vScales, int n, int d, float[] q,
                           int group, float[] out, float[] logits, float[] row) {
        float scale = (float) (1.0 / Math.sqrt(d));
        for (int g = 0; g < group; g++) {
            int qOff = g * d;
            float max = Float.NEGATIVE_INFINITY;
            for (int j = 0; j < n; j++) {
                dequant(kPacked, kScales, j, d, row);
                float l = dot(q, qOff, row, 0, d) * scale;
                logits[j] = l;
                if (l > max) max = l;
            }
            float inv = expInPlace(logits, n, max);
            java.util.Arrays.fill(out, qOff, qOff + d, 0f);
            for (int j = 0; j < n; j++) {
                dequant(vPacked, vScales, j, d, row);
                axpy(logits[j] * inv, row, 0, out, qOff, d);
            }
        }
    }

    /** logits[j] = exp(logits[j] - max) for j < n; returns 1 / their sum. */
    static float expInPlace(float[] logits, int n, float max) {
        float sum = 0;
        for (int j = 0; j < n; j++) {
            float e = (float) Math.exp(logits[j] - max);
            logits[j] = e;
            sum += e;
        }
        return 1f / sum;
    }

    static void dequant(byte[] packed, float[] scales, int j, int d, float[] row) {
        int base = j * (d / 2), sBase = j * (d / 32);
        for (int c = 0; c < d; c += 2) {
            int b = packed[base + c / 2];
            float s = scales[sBase + c / 32];
            row[c] = (((b << 28) >> 28)) * s;
            row[c + 1] = (b >> 4) * s;
        }
    }

    static float dot(float[] a, int aOff, float[] b, int bOff, int d) {
        FloatVector acc = FloatVector.zero(S);
        int c = 0, up = S.loopBound(d);
        for (; c < up; c += S.length())
            acc = FloatVector.fromArray(S, a, aOff + c).fma(FloatVector.fromArray(S, b, bOff + c), acc);
        float s = acc.reduceLanes(VectorOperators.ADD);
        for (; c < d; c++) s += a[aOff + c] * b[bOff + c];
        return s;
    }

    static void axpy(float w, float[] x, int xOff, float[] y, int yOff, int d) {
        FloatVector wv = FloatVector.broadcast(S, w);
        int c = 0, up = S.loopBound(d);
        for (; c < up; c += S.length())
            FloatVector.fromArray(S, x, xOff + c).fma(wv, FloatVector.fromArray(S, y, yOff + c)).intoArray(y, yOff + c);
        for (; c < d; c++) y[yOff + c] += w * x[xOff + c];
    }
}
