package dev.kvpc.bench;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The strong hand-written yardstick for decode attention over flat arrays: every trick the project knows, written
 * for one layout, not generated.
 *
 * <ul>
 *   <li>each key row is read once for all the group's query heads (one load, one FMA per head);</li>
 *   <li>exponentials are computed a vector at a time (a polynomial, not {@code Math.exp} per entry);</li>
 *   <li>the value pass runs a block of channels at a time over all entries, the group's output accumulators for
 *       that block held in registers (no output loads and stores per entry), and the softmax normalisation is
 *       applied once to each output, not to each probability;</li>
 *   <li>int4 rows are unpacked with vector shifts, widened a vector at a time, and their scale applied to the
 *       unpacked codes once for all heads;</li>
 *   <li>optionally split over threads: each thread takes a range of entries and returns its maximum, its sum and
 *       its unnormalised outputs, merged as partial softmax states.</li>
 * </ul>
 *
 * Layouts: f32 rows, {@code n x d}; int4 rows as {@link DecodeAttentionBench#pack} writes them (symmetric, one f32
 * scale per 32 channels, channel {@code c} in the low nibble of byte {@code c / 2} when even, the high when odd).
 * The outputs agree with {@link ReferenceDecode} within float rounding (checked by {@code StrongDecodeCheck}).
 */
final class StrongDecode {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int L = S.length();
    /** Bytes of one int4 chunk: {@code 2L} channels, the low nibbles even channels, the high ones odd. */
    static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class, VectorShape.forBitSize(Math.max(64, L * 8)));
    private static final float LOG2E = 1.4426950408889634f, LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    private static final float ROUND = 12582912f; // 1.5 * 2^23: adding it rounds a float below 2^22 to an integer

    private static final ExecutorService POOL = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "strong-decode");
        t.setDaemon(true);
        return t;
    });

    /** Per-thread scratch: logits of the group, permuted queries, the part's outputs. */
    static final class Part {
        float[] logits = new float[0];
        final float[] out, qPerm, max, sum;

        Part(int group, int d) {
            out = new float[group * d];
            qPerm = new float[group * d];
            max = new float[group];
            sum = new float[group];
        }
    }

    private final int d, group;
    private final Part[] parts;

    StrongDecode(int d, int group, int threads) {
        if (d % (2 * L) != 0 || 32 % (2 * L) != 0 && (2 * L) % 32 != 0) throw new IllegalArgumentException("head dim " + d + " at " + L + " lanes");
        if (group > 4) throw new IllegalArgumentException("groups of up to 4 heads");
        this.d = d;
        this.group = group;
        this.parts = new Part[threads];
        for (int i = 0; i < threads; i++) parts[i] = new Part(group, d);
    }

    /** out[g*d..] = softmax(q_g . K^T / sqrt d) V over n f32 rows. */
    void f32(float[] keys, float[] values, int n, float[] q, float[] out) {
        run(n, out, (p, from, to) -> {
            scoresF32(keys, from, to, q, p);
            exps(p, to - from);
            valuesF32(values, from, to, p);
        });
    }

    /** As {@link #f32} over int4 rows. */
    void int4(byte[] kPacked, float[] kScales, byte[] vPacked, float[] vScales, int n, float[] q, float[] out) {
        run(n, out, (p, from, to) -> {
            permute(q, p.qPerm);
            scoresInt4(kPacked, kScales, from, to, p);
            exps(p, to - from);
            valuesInt4(vPacked, vScales, from, to, p);
            unpermute(p.out);
        });
    }

    private interface Body {
        void run(Part p, int from, int to);
    }

    private void run(int n, float[] out, Body body) {
        int t = Math.min(parts.length, Math.max(1, n / 1024));
        if (t == 1) {
            Part p = parts[0];
            body.run(p, 0, n);
            for (int g = 0; g < group; g++) {
                float inv = 1f / p.sum[g];
                for (int c = 0; c < d; c++) out[g * d + c] = p.out[g * d + c] * inv;
            }
            return;
        }
        int step = (n + t - 1) / t;
        Future<?>[] f = new Future<?>[t];
        for (int i = 1; i < t; i++) {
            int from = i * step, to = Math.min(n, from + step);
            Part p = parts[i];
            f[i] = POOL.submit(() -> body.run(p, from, to));
        }
        body.run(parts[0], 0, Math.min(n, step));
        try {
            for (int i = 1; i < t; i++) f[i].get();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
        for (int g = 0; g < group; g++) {
            float m = Float.NEGATIVE_INFINITY;
            for (int i = 0; i < t; i++) m = Math.max(m, parts[i].max[g]);
            float sum = 0;
            Arrays.fill(out, g * d, (g + 1) * d, 0f);
            for (int i = 0; i < t; i++) {
                float w = (float) Math.exp(parts[i].max[g] - m);
                sum += w * parts[i].sum[g];
                for (int c = 0; c < d; c++) out[g * d + c] += w * parts[i].out[g * d + c];
            }
            float inv = 1f / sum;
            for (int c = 0; c < d; c++) out[g * d + c] *= inv;
        }
    }

    private static void ensure(Part p, int group, int n) {
        if (p.logits.length < group * n) p.logits = new float[group * n];
    }

    /** Scores of entries {@code from..to} into {@code p.logits[g * m + j]}; each head's maximum into {@code p.max}. */
    private void scoresF32(float[] keys, int from, int to, float[] q, Part p) {
        int m = to - from;
        ensure(p, group, m);
        float scale = (float) (1.0 / Math.sqrt(d));
        float[] lg = p.logits;
        float m0 = Float.NEGATIVE_INFINITY, m1 = m0, m2 = m0, m3 = m0;
        for (int j = 0; j < m; j++) {
            int base = (from + j) * d;
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
            for (int c = 0; c < d; c += L) {
                FloatVector k = FloatVector.fromArray(S, keys, base + c);
                a0 = FloatVector.fromArray(S, q, c).fma(k, a0);
                if (group > 1) a1 = FloatVector.fromArray(S, q, d + c).fma(k, a1);
                if (group > 2) a2 = FloatVector.fromArray(S, q, 2 * d + c).fma(k, a2);
                if (group > 3) a3 = FloatVector.fromArray(S, q, 3 * d + c).fma(k, a3);
            }
            float l0 = a0.reduceLanes(VectorOperators.ADD) * scale;
            lg[j] = l0;
            m0 = Math.max(m0, l0);
            if (group > 1) {
                float l1 = a1.reduceLanes(VectorOperators.ADD) * scale;
                lg[m + j] = l1;
                m1 = Math.max(m1, l1);
            }
            if (group > 2) {
                float l2 = a2.reduceLanes(VectorOperators.ADD) * scale;
                lg[2 * m + j] = l2;
                m2 = Math.max(m2, l2);
            }
            if (group > 3) {
                float l3 = a3.reduceLanes(VectorOperators.ADD) * scale;
                lg[3 * m + j] = l3;
                m3 = Math.max(m3, l3);
            }
        }
        p.max[0] = m0;
        if (group > 1) p.max[1] = m1;
        if (group > 2) p.max[2] = m2;
        if (group > 3) p.max[3] = m3;
    }

    /** {@code qPerm}: per chunk of {@code 2L} channels, the even channels then the odd ones (the nibble order). */
    private void permute(float[] q, float[] qPerm) {
        for (int g = 0; g < group; g++) {
            for (int c0 = 0; c0 < d; c0 += 2 * L) {
                for (int i = 0; i < L; i++) {
                    qPerm[g * d + c0 + i] = q[g * d + c0 + 2 * i];
                    qPerm[g * d + c0 + L + i] = q[g * d + c0 + 2 * i + 1];
                }
            }
        }
    }

    private void unpermute(float[] out) {
        float[] row = new float[d];
        for (int g = 0; g < group; g++) {
            for (int c0 = 0; c0 < d; c0 += 2 * L) {
                for (int i = 0; i < L; i++) {
                    row[c0 + 2 * i] = out[g * d + c0 + i];
                    row[c0 + 2 * i + 1] = out[g * d + c0 + L + i];
                }
            }
            System.arraycopy(row, 0, out, g * d, d);
        }
    }

    /** Low nibbles sign-extended, as floats times {@code s}. */
    private static FloatVector lo(ByteVector b, float s) {
        return ((FloatVector) b.lanewise(VectorOperators.LSHL, 4).lanewise(VectorOperators.ASHR, 4)
                .convertShape(VectorOperators.B2F, S, 0)).mul(s);
    }

    private static FloatVector hi(ByteVector b, float s) {
        return ((FloatVector) b.lanewise(VectorOperators.ASHR, 4).convertShape(VectorOperators.B2F, S, 0)).mul(s);
    }

    private void scoresInt4(byte[] packed, float[] scales, int from, int to, Part p) {
        int m = to - from;
        ensure(p, group, m);
        float scale = (float) (1.0 / Math.sqrt(d));
        float[] lg = p.logits, q = p.qPerm;
        float m0 = Float.NEGATIVE_INFINITY, m1 = m0, m2 = m0, m3 = m0;
        for (int j = 0; j < m; j++) {
            int base = (from + j) * (d / 2), sBase = (from + j) * (d / 32);
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
            for (int c = 0; c < d; c += 2 * L) {
                ByteVector b = ByteVector.fromArray(B, packed, base + c / 2);
                float s = scales[sBase + c / 32];
                FloatVector e = lo(b, s), o = hi(b, s);
                a0 = FloatVector.fromArray(S, q, c).fma(e, a0);
                a0 = FloatVector.fromArray(S, q, c + L).fma(o, a0);
                if (group > 1) {
                    a1 = FloatVector.fromArray(S, q, d + c).fma(e, a1);
                    a1 = FloatVector.fromArray(S, q, d + c + L).fma(o, a1);
                }
                if (group > 2) {
                    a2 = FloatVector.fromArray(S, q, 2 * d + c).fma(e, a2);
                    a2 = FloatVector.fromArray(S, q, 2 * d + c + L).fma(o, a2);
                }
                if (group > 3) {
                    a3 = FloatVector.fromArray(S, q, 3 * d + c).fma(e, a3);
                    a3 = FloatVector.fromArray(S, q, 3 * d + c + L).fma(o, a3);
                }
            }
            float l0 = a0.reduceLanes(VectorOperators.ADD) * scale;
            lg[j] = l0;
            m0 = Math.max(m0, l0);
            if (group > 1) {
                float l1 = a1.reduceLanes(VectorOperators.ADD) * scale;
                lg[m + j] = l1;
                m1 = Math.max(m1, l1);
            }
            if (group > 2) {
                float l2 = a2.reduceLanes(VectorOperators.ADD) * scale;
                lg[2 * m + j] = l2;
                m2 = Math.max(m2, l2);
            }
            if (group > 3) {
                float l3 = a3.reduceLanes(VectorOperators.ADD) * scale;
                lg[3 * m + j] = l3;
                m3 = Math.max(m3, l3);
            }
        }
        p.max[0] = m0;
        if (group > 1) p.max[1] = m1;
        if (group > 2) p.max[2] = m2;
        if (group > 3) p.max[3] = m3;
    }

    /** Each head's logits replaced by {@code e^(l - max)}, their sum into {@code p.sum}. */
    private void exps(Part p, int m) {
        float[] lg = p.logits;
        for (int g = 0; g < group; g++) {
            int off = g * m, j = 0, up = S.loopBound(m);
            FloatVector max = FloatVector.broadcast(S, p.max[g]), acc = FloatVector.zero(S);
            for (; j < up; j += L) {
                FloatVector e = exp(FloatVector.fromArray(S, lg, off + j).sub(max));
                e.intoArray(lg, off + j);
                acc = acc.add(e);
            }
            float sum = acc.reduceLanes(VectorOperators.ADD);
            for (; j < m; j++) {
                float e = (float) Math.exp(lg[off + j] - p.max[g]);
                lg[off + j] = e;
                sum += e;
            }
            p.sum[g] = sum;
        }
    }

    /** e^x for x <= 0 (x below -87 gives 0): x = n ln2 + r, |r| <= ln2/2, e^r by a degree-6 polynomial, times 2^n. */
    static FloatVector exp(FloatVector x) {
        FloatVector t = x.fma(LOG2E, ROUND);
        FloatVector n = t.sub(ROUND);
        FloatVector r = n.fma(c(-LN2_HI), x);
        r = n.fma(c(-LN2_LO), r);
        FloatVector poly = r.fma(1f / 720, 1f / 120).fma(r, c(1f / 24)).fma(r, c(1f / 6)).fma(r, c(0.5f)).fma(r, c(1f)).fma(r, c(1f));
        IntVector bits = ((IntVector) t.reinterpretAsInts()).add(127).lanewise(VectorOperators.LSHL, 23);
        FloatVector e = poly.mul(bits.reinterpretAsFloats());
        return e.blend(0f, x.lt(-87f));
    }

    private static FloatVector c(float v) {
        return FloatVector.broadcast(S, v);
    }

    /** Unnormalised outputs {@code p.out[g] = sum_j e_gj v_j}, a block of two vectors of channels at a time. */
    private void valuesF32(float[] values, int from, int to, Part p) {
        int m = to - from;
        float[] lg = p.logits, out = p.out;
        for (int c = 0; c < d; c += 2 * L) {
            FloatVector o00 = FloatVector.zero(S), o01 = o00, o10 = o00, o11 = o00, o20 = o00, o21 = o00, o30 = o00, o31 = o00;
            for (int j = 0; j < m; j++) {
                int base = (from + j) * d + c;
                FloatVector v0 = FloatVector.fromArray(S, values, base), v1 = FloatVector.fromArray(S, values, base + L);
                FloatVector w = FloatVector.broadcast(S, lg[j]);
                o00 = v0.fma(w, o00);
                o01 = v1.fma(w, o01);
                if (group > 1) {
                    w = FloatVector.broadcast(S, lg[m + j]);
                    o10 = v0.fma(w, o10);
                    o11 = v1.fma(w, o11);
                }
                if (group > 2) {
                    w = FloatVector.broadcast(S, lg[2 * m + j]);
                    o20 = v0.fma(w, o20);
                    o21 = v1.fma(w, o21);
                }
                if (group > 3) {
                    w = FloatVector.broadcast(S, lg[3 * m + j]);
                    o30 = v0.fma(w, o30);
                    o31 = v1.fma(w, o31);
                }
            }
            store(out, c, o00, o01, o10, o11, o20, o21, o30, o31);
        }
    }

    private void store(float[] out, int c, FloatVector o00, FloatVector o01, FloatVector o10, FloatVector o11,
                       FloatVector o20, FloatVector o21, FloatVector o30, FloatVector o31) {
        o00.intoArray(out, c);
        o01.intoArray(out, c + L);
        if (group > 1) {
            o10.intoArray(out, d + c);
            o11.intoArray(out, d + c + L);
        }
        if (group > 2) {
            o20.intoArray(out, 2 * d + c);
            o21.intoArray(out, 2 * d + c + L);
        }
        if (group > 3) {
            o30.intoArray(out, 3 * d + c);
            o31.intoArray(out, 3 * d + c + L);
        }
    }

    /** As {@link #valuesF32} over int4 rows, outputs in the nibble order (even channels, then odd, per chunk). */
    private void valuesInt4(byte[] packed, float[] scales, int from, int to, Part p) {
        int m = to - from;
        float[] lg = p.logits, out = p.out;
        for (int c = 0; c < d; c += 2 * L) {
            FloatVector o00 = FloatVector.zero(S), o01 = o00, o10 = o00, o11 = o00, o20 = o00, o21 = o00, o30 = o00, o31 = o00;
            for (int j = 0; j < m; j++) {
                ByteVector b = ByteVector.fromArray(B, packed, (from + j) * (d / 2) + c / 2);
                float s = scales[(from + j) * (d / 32) + c / 32];
                FloatVector v0 = lo(b, s), v1 = hi(b, s);
                FloatVector w = FloatVector.broadcast(S, lg[j]);
                o00 = v0.fma(w, o00);
                o01 = v1.fma(w, o01);
                if (group > 1) {
                    w = FloatVector.broadcast(S, lg[m + j]);
                    o10 = v0.fma(w, o10);
                    o11 = v1.fma(w, o11);
                }
                if (group > 2) {
                    w = FloatVector.broadcast(S, lg[2 * m + j]);
                    o20 = v0.fma(w, o20);
                    o21 = v1.fma(w, o21);
                }
                if (group > 3) {
                    w = FloatVector.broadcast(S, lg[3 * m + j]);
                    o30 = v0.fma(w, o30);
                    o31 = v1.fma(w, o31);
                }
            }
            store(out, c, o00, o01, o10, o11, o20, o21, o30, o31);
        }
    }
}
