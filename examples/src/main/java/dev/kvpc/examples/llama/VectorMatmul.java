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
 * <p>F32: each output element {@code (token, row)} has one accumulator vector adding {@code w * x} chunk by chunk
 * with a fused multiply-add, then its lanes from 0 to 7, then the columns past the last whole chunk left to right;
 * the work is tiled (four rows of one token, or one row of four tokens) so a weight or an input chunk is read once
 * for four sums, every tile summing each element in that same order. F16, Q8_0, Q4_0: one row of one token at a
 * time, weights widened to floats in registers (halves with integer operations, exact for finite values; Q8_0
 * bytes and Q4_0 nibbles, masked, shifted and unbiased, times the block's scale: the float the scalar kernel
 * computes), added with four accumulators. Either way a token's output is the same float whether it comes alone or
 * in a batch, on one thread or several. An F16 matrix holding an infinity or NaN goes through {@link ScalarMatmul}.
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
                for (int t = 0; t < tokens; t++) for (int i = from; i < to; i++) out[t * d + i] = f16Row(m.w, x, n, t, i);
            }
            case Matrix.Q8_0 m -> {
                for (int t = 0; t < tokens; t++) for (int i = from; i < to; i++) out[t * d + i] = q8Row(m.q, m.d, x, n, t, i);
            }
            case Matrix.Q4_0 m -> {
                for (int t = 0; t < tokens; t++) for (int i = from; i < to; i++) out[t * d + i] = q4Row(m.q, m.d, x, n, t, i);
            }
            case Matrix.Blocks m -> {
                // the K-quants, each read in place (Matrix.Blocks holds no other type)
                GgufFile.TensorType type = m.type();
                if (type != GgufFile.TensorType.Q4_K && type != GgufFile.TensorType.Q5_K && type != GgufFile.TensorType.Q6_K) {
                    throw new IllegalStateException("no vector kernel for " + type);
                }
                boolean q6 = type == GgufFile.TensorType.Q6_K, fifth = type == GgufFile.TensorType.Q5_K;
                for (int t = 0; t < tokens; t++) {
                    for (int i = from; i < to; i++) out[t * d + i] = q6 ? q6kRow(m.raw, i * m.rowBytes(), x, n, t) : q4kRow(m.raw, i * m.rowBytes(), x, n, t, fifth);
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

    // ---- F16, Q8_0, Q4_0: one row of one token at a time, weights widened to floats (halves exactly; quants times
    // their block's scale, the float the scalar kernel computes) and added with four accumulators, one per chunk of
    // 8 in each 32 columns: (a0 + a1) + (a2 + a3), then lanes 0 to 7, then a tail. Each method is written out flat,
    // with no helper of its own: it is then too large for C2 to inline into its caller, so it is compiled on its own
    // with every (force-inlined) vector operation inside the budget; a vector operation left out of line boxes its
    // vectors and runs an order of magnitude slower (measured when these were small helpers).

    private static float f16Row(short[] w, float[] x, int n, int t, int i) {
        int wo = i * n, xo = t * n, j = 0;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        // half to float: exponent and mantissa moved into place, scaled by 2^112, the sign put back (exact when finite)
        for (; j + 32 <= n; j += 32) {
            IntVector h0 = (IntVector) ShortVector.fromArray(S, w, wo + j + 0).convertShape(VectorOperators.S2I, I, 0);
            FloatVector w0 = h0.and(0x7fff).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                    .reinterpretAsInts().or(h0.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
            a0 = w0.fma(FloatVector.fromArray(F, x, xo + j + 0), a0);
            IntVector h1 = (IntVector) ShortVector.fromArray(S, w, wo + j + 8).convertShape(VectorOperators.S2I, I, 0);
            FloatVector w1 = h1.and(0x7fff).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                    .reinterpretAsInts().or(h1.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
            a1 = w1.fma(FloatVector.fromArray(F, x, xo + j + 8), a1);
            IntVector h2 = (IntVector) ShortVector.fromArray(S, w, wo + j + 16).convertShape(VectorOperators.S2I, I, 0);
            FloatVector w2 = h2.and(0x7fff).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                    .reinterpretAsInts().or(h2.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
            a2 = w2.fma(FloatVector.fromArray(F, x, xo + j + 16), a2);
            IntVector h3 = (IntVector) ShortVector.fromArray(S, w, wo + j + 24).convertShape(VectorOperators.S2I, I, 0);
            FloatVector w3 = h3.and(0x7fff).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                    .reinterpretAsInts().or(h3.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
            a3 = w3.fma(FloatVector.fromArray(F, x, xo + j + 24), a3);
        }
        for (; j + 8 <= n; j += 8) {
            IntVector h0 = (IntVector) ShortVector.fromArray(S, w, wo + j).convertShape(VectorOperators.S2I, I, 0);
            FloatVector w0 = h0.and(0x7fff).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                    .reinterpretAsInts().or(h0.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
            a0 = w0.fma(FloatVector.fromArray(F, x, xo + j), a0);
        }
        FloatVector a = a0.add(a1).add(a2.add(a3));
        float v = a.lane(0) + a.lane(1) + a.lane(2) + a.lane(3) + a.lane(4) + a.lane(5) + a.lane(6) + a.lane(7);
        for (; j < n; j++) v += Float.float16ToFloat(w[wo + j]) * x[xo + j];
        return v;
    }

    private static float q8Row(byte[] q, float[] s, float[] x, int n, int t, int i) {
        int wo = i * n, xo = t * n;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (int j = 0; j < n; j += 32) {
            FloatVector sc = FloatVector.broadcast(F, s[(wo + j) >> 5]);
            FloatVector w0 = sc.mul((FloatVector) ByteVector.fromArray(B, q, wo + j).convertShape(VectorOperators.B2F, F, 0));
            FloatVector w1 = sc.mul((FloatVector) ByteVector.fromArray(B, q, wo + j + 8).convertShape(VectorOperators.B2F, F, 0));
            FloatVector w2 = sc.mul((FloatVector) ByteVector.fromArray(B, q, wo + j + 16).convertShape(VectorOperators.B2F, F, 0));
            FloatVector w3 = sc.mul((FloatVector) ByteVector.fromArray(B, q, wo + j + 24).convertShape(VectorOperators.B2F, F, 0));
            a0 = w0.fma(FloatVector.fromArray(F, x, xo + j), a0);
            a1 = w1.fma(FloatVector.fromArray(F, x, xo + j + 8), a1);
            a2 = w2.fma(FloatVector.fromArray(F, x, xo + j + 16), a2);
            a3 = w3.fma(FloatVector.fromArray(F, x, xo + j + 24), a3);
        }
        FloatVector a = a0.add(a1).add(a2.add(a3));
        return a.lane(0) + a.lane(1) + a.lane(2) + a.lane(3) + a.lane(4) + a.lane(5) + a.lane(6) + a.lane(7);
    }

    private static float q4Row(byte[] q, float[] s, float[] x, int n, int t, int i) {
        int wo = i * n, xo = t * n;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (int j = 0; j < n; j += 32) {
            FloatVector sc = FloatVector.broadcast(F, s[(wo + j) >> 5]);
            int at = (wo + j) >> 1;
            // byte k of a block: weight k in the low nibble, weight k + 16 in the high one, each biased by 8
            ByteVector b0 = ByteVector.fromArray(B, q, at), b1 = ByteVector.fromArray(B, q, at + 8);
            FloatVector w0 = sc.mul((FloatVector) b0.and((byte) 15).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0));
            FloatVector w1 = sc.mul((FloatVector) b1.and((byte) 15).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0));
            FloatVector w2 = sc.mul((FloatVector) b0.lanewise(VectorOperators.LSHR, 4).and((byte) 15).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0));
            FloatVector w3 = sc.mul((FloatVector) b1.lanewise(VectorOperators.LSHR, 4).and((byte) 15).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0));
            a0 = w0.fma(FloatVector.fromArray(F, x, xo + j), a0);
            a1 = w1.fma(FloatVector.fromArray(F, x, xo + j + 8), a1);
            a2 = w2.fma(FloatVector.fromArray(F, x, xo + j + 16), a2);
            a3 = w3.fma(FloatVector.fromArray(F, x, xo + j + 24), a3);
        }
        FloatVector a = a0.add(a1).add(a2.add(a3));
        return a.lane(0) + a.lane(1) + a.lane(2) + a.lane(3) + a.lane(4) + a.lane(5) + a.lane(6) + a.lane(7);
    }

    /**
     * A Q4_K (or, with {@code fifth}, Q5_K) row's dot product with token {@code t}'s inputs, without decoding the row:
     * per sub-block of 32 weights {@code d*sc * q - dmin*m}, so its share is {@code d*sc * sum(q x) - dmin*m * sum(x)},
     * both sums in vectors. Q5_K's fifth bit of each quant comes from its 32 bytes before the nibbles.
     */
    private static float q4kRow(byte[] raw, int at, float[] x, int n, int t, boolean fifth) {
        int xo = t * n, bytes = fifth ? 176 : 144, nibbles = fifth ? 48 : 16;
        FloatVector acc = FloatVector.zero(F);
        for (int blk = 0; blk < n / 256; blk++) {
            int p = at + blk * bytes, xb = xo + blk * 256;
            float d = BlockCodec.half(raw, p), dmin = BlockCodec.half(raw, p + 2);
            for (int c = 0; c < 4; c++) {
                int q = p + nibbles + 32 * c, xc = xb + 64 * c;
                FloatVector sq1 = FloatVector.zero(F), sx1 = sq1, sq2 = sq1, sx2 = sq1;
                for (int g = 0; g < 32; g += 8) {
                    ByteVector b = ByteVector.fromArray(B, raw, q + g), l = b.and((byte) 15), h = b.lanewise(VectorOperators.LSHR, 4).and((byte) 15);
                    if (fifth) {
                        ByteVector qh = ByteVector.fromArray(B, raw, p + 16 + g);
                        l = l.or(qh.lanewise(VectorOperators.LSHR, 2 * c).and((byte) 1).lanewise(VectorOperators.LSHL, 4));
                        h = h.or(qh.lanewise(VectorOperators.LSHR, 2 * c + 1).and((byte) 1).lanewise(VectorOperators.LSHL, 4));
                    }
                    FloatVector lo = (FloatVector) l.convertShape(VectorOperators.B2F, F, 0);
                    FloatVector hi = (FloatVector) h.convertShape(VectorOperators.B2F, F, 0);
                    FloatVector x1 = FloatVector.fromArray(F, x, xc + g), x2 = FloatVector.fromArray(F, x, xc + 32 + g);
                    sq1 = lo.fma(x1, sq1);
                    sx1 = sx1.add(x1);
                    sq2 = hi.fma(x2, sq2);
                    sx2 = sx2.add(x2);
                }
                acc = sq1.fma(FloatVector.broadcast(F, d * BlockCodec.scaleMin(raw, p + 4, 2 * c, 0)), acc);
                acc = sx1.fma(FloatVector.broadcast(F, -(dmin * BlockCodec.scaleMin(raw, p + 4, 2 * c, 1))), acc);
                acc = sq2.fma(FloatVector.broadcast(F, d * BlockCodec.scaleMin(raw, p + 4, 2 * c + 1, 0)), acc);
                acc = sx2.fma(FloatVector.broadcast(F, -(dmin * BlockCodec.scaleMin(raw, p + 4, 2 * c + 1, 1))), acc);
            }
        }
        return sum(acc);
    }

    /**
     * A Q6_K row's dot product with token {@code t}'s inputs, without decoding the row: eight weights at a time, each
     * {@code d*sc * (q - 32)} with q its low nibble and two high bits, the eight in one sub-block of 16.
     */
    private static float q6kRow(byte[] raw, int at, float[] x, int n, int t) {
        int xo = t * n;
        FloatVector acc = FloatVector.zero(F);
        for (int blk = 0; blk < n / 256; blk++) {
            int p = at + blk * 210, xb = xo + blk * 256;
            float d = BlockCodec.half(raw, p + 208);
            for (int h = 0; h < 2; h++) {
                int ql = p + 64 * h, qh = p + 128 + 32 * h, sc = p + 192 + 8 * h, xh = xb + 128 * h;
                for (int g = 0; g < 32; g += 8) {
                    ByteVector a = ByteVector.fromArray(B, raw, ql + g), b = ByteVector.fromArray(B, raw, ql + 32 + g), hi = ByteVector.fromArray(B, raw, qh + g);
                    ByteVector q1 = a.and((byte) 15).or(hi.and((byte) 3).lanewise(VectorOperators.LSHL, 4));
                    ByteVector q2 = b.and((byte) 15).or(hi.lanewise(VectorOperators.LSHR, 2).and((byte) 3).lanewise(VectorOperators.LSHL, 4));
                    ByteVector q3 = a.lanewise(VectorOperators.LSHR, 4).and((byte) 15).or(hi.lanewise(VectorOperators.LSHR, 4).and((byte) 3).lanewise(VectorOperators.LSHL, 4));
                    ByteVector q4 = b.lanewise(VectorOperators.LSHR, 4).and((byte) 15).or(hi.lanewise(VectorOperators.LSHR, 6).and((byte) 3).lanewise(VectorOperators.LSHL, 4));
                    int is = g / 16;
                    // one flat loop body: a helper returning vectors left C2 boxing them
                    FloatVector w1 = ((FloatVector) q1.sub((byte) 32).convertShape(VectorOperators.B2F, F, 0)).mul(d * raw[sc + is]);
                    FloatVector w2 = ((FloatVector) q2.sub((byte) 32).convertShape(VectorOperators.B2F, F, 0)).mul(d * raw[sc + is + 2]);
                    FloatVector w3 = ((FloatVector) q3.sub((byte) 32).convertShape(VectorOperators.B2F, F, 0)).mul(d * raw[sc + is + 4]);
                    FloatVector w4 = ((FloatVector) q4.sub((byte) 32).convertShape(VectorOperators.B2F, F, 0)).mul(d * raw[sc + is + 6]);
                    acc = w1.fma(FloatVector.fromArray(F, x, xh + g), acc);
                    acc = w2.fma(FloatVector.fromArray(F, x, xh + 32 + g), acc);
                    acc = w3.fma(FloatVector.fromArray(F, x, xh + 64 + g), acc);
                    acc = w4.fma(FloatVector.fromArray(F, x, xh + 96 + g), acc);
                }
            }
        }
        return sum(acc);
    }
}
