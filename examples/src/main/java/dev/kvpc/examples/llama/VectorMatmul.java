package dev.kvpc.examples.llama;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link Matmul#vector()}: the Vector API over 256-bit float vectors (8 lanes; fixed rather than the preferred
 * species so that a result does not depend on the machine's vector width). Loaded only when
 * {@code jdk.incubator.vector} is present.
 *
 * <p>Each output element {@code (token, row)} has one accumulator vector: F32 and F16 rows add {@code w * x} chunk by
 * chunk with a fused multiply-add; Q8_0 and Q4_0 rows sum a block's four chunks of quants times {@code x} (quants
 * widened to floats in registers: bytes for Q8_0, nibbles masked, shifted and unbiased for Q4_0) and add that sum
 * times the block's scale. The accumulator's lanes are then added from lane 0 to lane 7, then any columns past the
 * last whole chunk left to right. Work is tiled (four rows of one token, or one row of four tokens) so a weight or
 * an input chunk is read once for four sums, and every tile runs each element's sum in that same order: a token's
 * output is the same float whether it comes alone or in a batch. F16 halves are widened with integer operations
 * (exact for finite values); an F16 matrix holding an infinity or NaN goes through {@link ScalarMatmul}.
 */
final class VectorMatmul implements Matmul.Rows {
    static final VectorMatmul INSTANCE = new VectorMatmul();

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Byte> B = ByteVector.SPECIES_64;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_128;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final int L = 8;

    private VectorMatmul() {
    }

    public String name() {
        return "vector";
    }

    public void rows(float[] out, Matrix w, float[] x, int tokens, int from, int to) {
        int n = w.cols, d = w.rows;
        switch (w) {
            case Matrix.F32 m -> {
                int t = 0;
                for (; t + 4 <= tokens; t += 4) for (int i = from; i < to; i++) f32Tokens4(out, m.w, x, n, d, t, i);
                for (; t < tokens; t++) {
                    int i = from;
                    for (; i + 4 <= to; i += 4) f32Rows4(out, m.w, x, n, d, t, i);
                    for (; i < to; i++) f32One(out, m.w, x, n, d, t, i);
                }
            }
            case Matrix.F16 m when !m.finite -> ScalarMatmul.INSTANCE.rows(out, w, x, tokens, from, to);
            case Matrix.F16 m -> {
                int t = 0;
                for (; t + 4 <= tokens; t += 4) for (int i = from; i < to; i++) f16Tokens4(out, m.w, x, n, d, t, i);
                for (; t < tokens; t++) {
                    int i = from;
                    for (; i + 4 <= to; i += 4) f16Rows4(out, m.w, x, n, d, t, i);
                    for (; i < to; i++) f16One(out, m.w, x, n, d, t, i);
                }
            }
            case Matrix.Q8_0 m -> {
                int t = 0;
                for (; t + 4 <= tokens; t += 4) for (int i = from; i < to; i++) q8Tokens4(out, m.q, m.d, x, n, d, t, i);
                for (; t < tokens; t++) {
                    int i = from;
                    for (; i + 4 <= to; i += 4) q8Rows4(out, m.q, m.d, x, n, d, t, i);
                    for (; i < to; i++) q8One(out, m.q, m.d, x, n, d, t, i);
                }
            }
            case Matrix.Q4_0 m -> {
                int t = 0;
                for (; t + 4 <= tokens; t += 4) for (int i = from; i < to; i++) q4Tokens4(out, m.q, m.d, x, n, d, t, i);
                for (; t < tokens; t++) {
                    int i = from;
                    for (; i + 4 <= to; i += 4) q4Rows4(out, m.q, m.d, x, n, d, t, i);
                    for (; i < to; i++) q4One(out, m.q, m.d, x, n, d, t, i);
                }
            }
        }
    }

    /** The lanes added from 0 to 7 (a fixed order; reduceLanes may add in any). */
    private static float sum(FloatVector v) {
        return v.lane(0) + v.lane(1) + v.lane(2) + v.lane(3) + v.lane(4) + v.lane(5) + v.lane(6) + v.lane(7);
    }

    private static FloatVector xv(float[] x, int off) {
        return FloatVector.fromArray(F, x, off);
    }

    // ---- F32

    private static void f32One(float[] out, float[] w, float[] x, int n, int d, int t, int i) {
        int wo = i * n, xo = t * n, bound = F.loopBound(n), j = 0;
        FloatVector a = FloatVector.zero(F);
        for (; j < bound; j += L) a = FloatVector.fromArray(F, w, wo + j).fma(xv(x, xo + j), a);
        float v = sum(a);
        for (; j < n; j++) v += w[wo + j] * x[xo + j];
        out[t * d + i] = v;
    }

    private static void f32Rows4(float[] out, float[] w, float[] x, int n, int d, int t, int i) {
        int w0 = i * n, w1 = w0 + n, w2 = w1 + n, w3 = w2 + n, xo = t * n, bound = F.loopBound(n), j = 0;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (; j < bound; j += L) {
            FloatVector xj = xv(x, xo + j);
            a0 = FloatVector.fromArray(F, w, w0 + j).fma(xj, a0);
            a1 = FloatVector.fromArray(F, w, w1 + j).fma(xj, a1);
            a2 = FloatVector.fromArray(F, w, w2 + j).fma(xj, a2);
            a3 = FloatVector.fromArray(F, w, w3 + j).fma(xj, a3);
        }
        float v0 = sum(a0), v1 = sum(a1), v2 = sum(a2), v3 = sum(a3);
        for (; j < n; j++) {
            float xs = x[xo + j];
            v0 += w[w0 + j] * xs;
            v1 += w[w1 + j] * xs;
            v2 += w[w2 + j] * xs;
            v3 += w[w3 + j] * xs;
        }
        int o = t * d + i;
        out[o] = v0;
        out[o + 1] = v1;
        out[o + 2] = v2;
        out[o + 3] = v3;
    }

    private static void f32Tokens4(float[] out, float[] w, float[] x, int n, int d, int t, int i) {
        int wo = i * n, x0 = t * n, x1 = x0 + n, x2 = x1 + n, x3 = x2 + n, bound = F.loopBound(n), j = 0;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (; j < bound; j += L) {
            FloatVector wj = FloatVector.fromArray(F, w, wo + j);
            a0 = wj.fma(xv(x, x0 + j), a0);
            a1 = wj.fma(xv(x, x1 + j), a1);
            a2 = wj.fma(xv(x, x2 + j), a2);
            a3 = wj.fma(xv(x, x3 + j), a3);
        }
        float v0 = sum(a0), v1 = sum(a1), v2 = sum(a2), v3 = sum(a3);
        for (; j < n; j++) {
            float ws = w[wo + j];
            v0 += ws * x[x0 + j];
            v1 += ws * x[x1 + j];
            v2 += ws * x[x2 + j];
            v3 += ws * x[x3 + j];
        }
        out[t * d + i] = v0;
        out[(t + 1) * d + i] = v1;
        out[(t + 2) * d + i] = v2;
        out[(t + 3) * d + i] = v3;
    }

    // ---- F16: half to float by moving exponent and mantissa into place and scaling by 2^112 (exact when finite)

    private static FloatVector h2f(short[] w, int off) {
        IntVector h = (IntVector) ShortVector.fromArray(S, w, off).convertShape(VectorOperators.S2I, I, 0);
        FloatVector mag = h.and(0x7fff).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f);
        return mag.reinterpretAsInts().or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
    }

    private static float h(short[] w, int at) {
        return Float.float16ToFloat(w[at]);
    }

    private static void f16One(float[] out, short[] w, float[] x, int n, int d, int t, int i) {
        int wo = i * n, xo = t * n, bound = F.loopBound(n), j = 0;
        FloatVector a = FloatVector.zero(F);
        for (; j < bound; j += L) a = h2f(w, wo + j).fma(xv(x, xo + j), a);
        float v = sum(a);
        for (; j < n; j++) v += h(w, wo + j) * x[xo + j];
        out[t * d + i] = v;
    }

    private static void f16Rows4(float[] out, short[] w, float[] x, int n, int d, int t, int i) {
        int w0 = i * n, w1 = w0 + n, w2 = w1 + n, w3 = w2 + n, xo = t * n, bound = F.loopBound(n), j = 0;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (; j < bound; j += L) {
            FloatVector xj = xv(x, xo + j);
            a0 = h2f(w, w0 + j).fma(xj, a0);
            a1 = h2f(w, w1 + j).fma(xj, a1);
            a2 = h2f(w, w2 + j).fma(xj, a2);
            a3 = h2f(w, w3 + j).fma(xj, a3);
        }
        float v0 = sum(a0), v1 = sum(a1), v2 = sum(a2), v3 = sum(a3);
        for (; j < n; j++) {
            float xs = x[xo + j];
            v0 += h(w, w0 + j) * xs;
            v1 += h(w, w1 + j) * xs;
            v2 += h(w, w2 + j) * xs;
            v3 += h(w, w3 + j) * xs;
        }
        int o = t * d + i;
        out[o] = v0;
        out[o + 1] = v1;
        out[o + 2] = v2;
        out[o + 3] = v3;
    }

    private static void f16Tokens4(float[] out, short[] w, float[] x, int n, int d, int t, int i) {
        int wo = i * n, x0 = t * n, x1 = x0 + n, x2 = x1 + n, x3 = x2 + n, bound = F.loopBound(n), j = 0;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (; j < bound; j += L) {
            FloatVector wj = h2f(w, wo + j);
            a0 = wj.fma(xv(x, x0 + j), a0);
            a1 = wj.fma(xv(x, x1 + j), a1);
            a2 = wj.fma(xv(x, x2 + j), a2);
            a3 = wj.fma(xv(x, x3 + j), a3);
        }
        float v0 = sum(a0), v1 = sum(a1), v2 = sum(a2), v3 = sum(a3);
        for (; j < n; j++) {
            float ws = h(w, wo + j);
            v0 += ws * x[x0 + j];
            v1 += ws * x[x1 + j];
            v2 += ws * x[x2 + j];
            v3 += ws * x[x3 + j];
        }
        out[t * d + i] = v0;
        out[(t + 1) * d + i] = v1;
        out[(t + 2) * d + i] = v2;
        out[(t + 3) * d + i] = v3;
    }

    // ---- Q8_0 and Q4_0: a block's four chunks of 8 quants, widened to floats

    private static FloatVector q8(byte[] q, int at) {
        return (FloatVector) ByteVector.fromArray(B, q, at).convertShape(VectorOperators.B2F, F, 0);
    }

    /** Sum over a Q8_0 block whose quants start at {@code at}: quants times x, chunk by chunk. */
    private static FloatVector q8Block(byte[] q, int at, FloatVector x0, FloatVector x1, FloatVector x2, FloatVector x3) {
        FloatVector s = q8(q, at).mul(x0);
        s = q8(q, at + 8).fma(x1, s);
        s = q8(q, at + 16).fma(x2, s);
        return q8(q, at + 24).fma(x3, s);
    }

    private static FloatVector lo(ByteVector b) {
        return (FloatVector) b.and((byte) 15).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0);
    }

    private static FloatVector hi(ByteVector b) {
        return (FloatVector) b.lanewise(VectorOperators.LSHR, 4).and((byte) 15).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0);
    }

    /** Sum over a Q4_0 block whose 16 nibble bytes start at {@code at}: weights 0-15 are the low nibbles, 16-31 the high ones. */
    private static FloatVector q4Block(byte[] q, int at, FloatVector x0, FloatVector x1, FloatVector x2, FloatVector x3) {
        ByteVector b0 = ByteVector.fromArray(B, q, at), b1 = ByteVector.fromArray(B, q, at + 8);
        FloatVector s = lo(b0).mul(x0);
        s = lo(b1).fma(x1, s);
        s = hi(b0).fma(x2, s);
        return hi(b1).fma(x3, s);
    }

    private static void q8One(float[] out, byte[] q, float[] s, float[] x, int n, int d, int t, int i) {
        int wo = i * n, xo = t * n;
        FloatVector a = FloatVector.zero(F);
        for (int j = 0; j < n; j += 32) {
            int xj = xo + j;
            a = q8Block(q, wo + j, xv(x, xj), xv(x, xj + 8), xv(x, xj + 16), xv(x, xj + 24)).fma(FloatVector.broadcast(F, s[(wo + j) >> 5]), a);
        }
        out[t * d + i] = sum(a);
    }

    private static void q8Rows4(float[] out, byte[] q, float[] s, float[] x, int n, int d, int t, int i) {
        int w0 = i * n, w1 = w0 + n, w2 = w1 + n, w3 = w2 + n, xo = t * n;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (int j = 0; j < n; j += 32) {
            int xj = xo + j;
            FloatVector x0 = xv(x, xj), x1 = xv(x, xj + 8), x2 = xv(x, xj + 16), x3 = xv(x, xj + 24);
            a0 = q8Block(q, w0 + j, x0, x1, x2, x3).fma(FloatVector.broadcast(F, s[(w0 + j) >> 5]), a0);
            a1 = q8Block(q, w1 + j, x0, x1, x2, x3).fma(FloatVector.broadcast(F, s[(w1 + j) >> 5]), a1);
            a2 = q8Block(q, w2 + j, x0, x1, x2, x3).fma(FloatVector.broadcast(F, s[(w2 + j) >> 5]), a2);
            a3 = q8Block(q, w3 + j, x0, x1, x2, x3).fma(FloatVector.broadcast(F, s[(w3 + j) >> 5]), a3);
        }
        int o = t * d + i;
        out[o] = sum(a0);
        out[o + 1] = sum(a1);
        out[o + 2] = sum(a2);
        out[o + 3] = sum(a3);
    }

    private static void q8Tokens4(float[] out, byte[] q, float[] s, float[] x, int n, int d, int t, int i) {
        int wo = i * n, x0 = t * n, x1 = x0 + n, x2 = x1 + n, x3 = x2 + n;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (int j = 0; j < n; j += 32) {
            FloatVector c0 = q8(q, wo + j), c1 = q8(q, wo + j + 8), c2 = q8(q, wo + j + 16), c3 = q8(q, wo + j + 24);
            float sc = s[(wo + j) >> 5];
            a0 = chunks(c0, c1, c2, c3, x, x0 + j).fma(FloatVector.broadcast(F, sc), a0);
            a1 = chunks(c0, c1, c2, c3, x, x1 + j).fma(FloatVector.broadcast(F, sc), a1);
            a2 = chunks(c0, c1, c2, c3, x, x2 + j).fma(FloatVector.broadcast(F, sc), a2);
            a3 = chunks(c0, c1, c2, c3, x, x3 + j).fma(FloatVector.broadcast(F, sc), a3);
        }
        out[t * d + i] = sum(a0);
        out[(t + 1) * d + i] = sum(a1);
        out[(t + 2) * d + i] = sum(a2);
        out[(t + 3) * d + i] = sum(a3);
    }

    /** A block's four widened chunks times x from {@code xo}, in the order of {@link #q8Block} and {@link #q4Block}. */
    private static FloatVector chunks(FloatVector c0, FloatVector c1, FloatVector c2, FloatVector c3, float[] x, int xo) {
        FloatVector s = c0.mul(xv(x, xo));
        s = c1.fma(xv(x, xo + 8), s);
        s = c2.fma(xv(x, xo + 16), s);
        return c3.fma(xv(x, xo + 24), s);
    }

    private static void q4One(float[] out, byte[] q, float[] s, float[] x, int n, int d, int t, int i) {
        int wo = i * n, xo = t * n;
        FloatVector a = FloatVector.zero(F);
        for (int j = 0; j < n; j += 32) {
            int xj = xo + j;
            a = q4Block(q, (wo + j) >> 1, xv(x, xj), xv(x, xj + 8), xv(x, xj + 16), xv(x, xj + 24)).fma(FloatVector.broadcast(F, s[(wo + j) >> 5]), a);
        }
        out[t * d + i] = sum(a);
    }

    private static void q4Rows4(float[] out, byte[] q, float[] s, float[] x, int n, int d, int t, int i) {
        int w0 = i * n, w1 = w0 + n, w2 = w1 + n, w3 = w2 + n, xo = t * n;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (int j = 0; j < n; j += 32) {
            int xj = xo + j;
            FloatVector x0 = xv(x, xj), x1 = xv(x, xj + 8), x2 = xv(x, xj + 16), x3 = xv(x, xj + 24);
            a0 = q4Block(q, (w0 + j) >> 1, x0, x1, x2, x3).fma(FloatVector.broadcast(F, s[(w0 + j) >> 5]), a0);
            a1 = q4Block(q, (w1 + j) >> 1, x0, x1, x2, x3).fma(FloatVector.broadcast(F, s[(w1 + j) >> 5]), a1);
            a2 = q4Block(q, (w2 + j) >> 1, x0, x1, x2, x3).fma(FloatVector.broadcast(F, s[(w2 + j) >> 5]), a2);
            a3 = q4Block(q, (w3 + j) >> 1, x0, x1, x2, x3).fma(FloatVector.broadcast(F, s[(w3 + j) >> 5]), a3);
        }
        int o = t * d + i;
        out[o] = sum(a0);
        out[o + 1] = sum(a1);
        out[o + 2] = sum(a2);
        out[o + 3] = sum(a3);
    }

    private static void q4Tokens4(float[] out, byte[] q, float[] s, float[] x, int n, int d, int t, int i) {
        int wo = i * n, x0 = t * n, x1 = x0 + n, x2 = x1 + n, x3 = x2 + n;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (int j = 0; j < n; j += 32) {
            int at = (wo + j) >> 1;
            ByteVector b0 = ByteVector.fromArray(B, q, at), b1 = ByteVector.fromArray(B, q, at + 8);
            FloatVector c0 = lo(b0), c1 = lo(b1), c2 = hi(b0), c3 = hi(b1);
            float sc = s[(wo + j) >> 5];
            a0 = chunks(c0, c1, c2, c3, x, x0 + j).fma(FloatVector.broadcast(F, sc), a0);
            a1 = chunks(c0, c1, c2, c3, x, x1 + j).fma(FloatVector.broadcast(F, sc), a1);
            a2 = chunks(c0, c1, c2, c3, x, x2 + j).fma(FloatVector.broadcast(F, sc), a2);
            a3 = chunks(c0, c1, c2, c3, x, x3 + j).fma(FloatVector.broadcast(F, sc), a3);
        }
        out[t * d + i] = sum(a0);
        out[(t + 1) * d + i] = sum(a1);
        out[(t + 2) * d + i] = sum(a2);
        out[(t + 3) * d + i] = sum(a3);
    }
}
