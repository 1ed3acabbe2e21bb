package dev.kvpc.runtime.exec;

import dev.kvpc.ir.Op;

import java.util.Arrays;
import java.util.BitSet;

/**
 * The rules of the IR's primitives ({@link dev.kvpc.ir.Op.PrimFn}), for every engine: the reference interpreter and
 * the runtime that compiled policies run in both call these, over per-lane slices ({@code [lane][entry]}, or
 * {@code [lane][entry * width + channel]} for values with channels) and per-lane sets. A lane's compensation entry,
 * at index {@code compensation[lane]} (-1: none), never ranks, as in {@link Select}.
 */
public final class Prims {
    private Prims() {}

    /** What a primitive reads of an event's lanes besides its operands: each engine's view of its own lanes. */
    public interface Lanes {
        /** The lanes of the event (one, or a layer's under per-layer selection). */
        int count();

        int size(int lane);

        /** The lane's compensation entry, or -1. */
        int compensation(int lane);

        /** The original position of entry {@code entry}. */
        long position(int lane, int entry);

        int kvHead(int lane);

        /** The decode step (0 at the prompt) and the layer. */
        long step();

        long layer();
    }

    /**
     * A primitive with a numeric result ({@link Op.PrimFn}), per lane, over the first {@code n} lanes of the event (1,
     * or all of them where the result has the head axis; {@code count} always counts every lane): {@code x} its value
     * operand as per-lane slices of {@code width} values an entry, {@code set} and {@code rows} its sets for every
     * lane (null where it takes none), {@code arg} its scalar. The one place a primitive's word meets its rule.
     */
    public static double[][] values(Op.PrimFn fn, Lanes lanes, int n, double[][] x, int width, BitSet[] set, BitSet[] rows, double arg) {
        return switch (fn) {
            case RANK -> rank(x, compensations(lanes, n));
            case COUNT -> new double[][] {{count(set, sizes(lanes, lanes.count()))}};
            case MEMBER -> member(set, sizes(lanes, n));
            case UNIFORM, GUMBEL -> {
                long[][] positions = new long[n][];
                int[] heads = new int[n];
                for (int h = 0; h < n; h++) {
                    positions[h] = new long[lanes.size(h)];
                    for (int j = 0; j < positions[h].length; j++) positions[h][j] = lanes.position(h, j);
                    heads[h] = lanes.kvHead(h);
                }
                yield random(fn == Op.PrimFn.GUMBEL, (long) arg, lanes.step(), lanes.layer(), heads, positions);
            }
            case MAXCOS, MAXDOT -> maxSimilarity(fn == Op.PrimFn.MAXCOS, x, width, set, rows);
            case STRATA -> throw new IllegalArgumentException("strata is a set");
        };
    }

    /** A primitive whose result is a token set ({@code strata}), per lane, over the first {@code n} lanes. */
    public static BitSet[] set(Op.PrimFn fn, Lanes lanes, int n, double[][] x, double arg) {
        if (fn != Op.PrimFn.STRATA) throw new IllegalArgumentException(fn.word() + " is not a set");
        return strata(x, compensations(lanes, n), (long) arg);
    }

    private static int[] compensations(Lanes lanes, int n) {
        int[] out = new int[n];
        for (int h = 0; h < n; h++) out[h] = lanes.compensation(h);
        return out;
    }

    private static int[] sizes(Lanes lanes, int n) {
        int[] out = new int[n];
        for (int h = 0; h < n; h++) out[h] = lanes.size(h);
        return out;
    }

    /** A buffer over [lane?, entry, ...] as one slice per lane (the lane axis leads). */
    public static double[][] perLane(double[] values, int lanes) {
        double[][] out = new double[lanes][];
        int per = lanes == 0 ? 0 : values.length / lanes;
        for (int h = 0; h < lanes; h++) out[h] = Arrays.copyOfRange(values, h * per, (h + 1) * per);
        return out;
    }

    /** Per-lane slices back into one buffer, lane after lane. */
    public static double[] joined(double[][] slices) {
        int n = 0;
        for (double[] row : slices) n += row.length;
        double[] out = new double[n];
        int o = 0;
        for (double[] row : slices) {
            System.arraycopy(row, 0, out, o, row.length);
            o += row.length;
        }
        return out;
    }

    /**
     * {@code top}'s order of the candidates of {@code score} (every lane together; NaN and the compensation entry are
     * not candidates): the higher score first, then the later index, then the lower lane. Each candidate as {@code
     * lane << 32 | index}, best first.
     */
    static long[] topOrder(double[][] score, int[] compensation) {
        int m = 0;
        for (double[] row : score) m += row.length;
        long[] cand = new long[m];
        int n = 0;
        for (int h = 0; h < score.length; h++) {
            for (int t = 0; t < score[h].length; t++) {
                if (Double.isNaN(score[h][t]) || compensation != null && t == compensation[h]) continue;
                cand[n++] = (long) h << 32 | t;
            }
        }
        Long[] boxed = new Long[n];
        for (int i = 0; i < n; i++) boxed[i] = cand[i];
        Arrays.sort(boxed, (a, b) -> {
            double x = score[(int) (a >>> 32)][(int) (long) a], y = score[(int) (b >>> 32)][(int) (long) b];
            int c = Double.compare(-x, -y); // Select's keys: a top ranks -score ascending
            if (c != 0) return c;
            int ia = (int) (long) a, ib = (int) (long) b;
            if (ia != ib) return ia > ib ? -1 : 1;
            return Long.compare(a >>> 32, b >>> 32);
        });
        long[] out = new long[n];
        for (int i = 0; i < n; i++) out[i] = boxed[i];
        return out;
    }

    /**
     * {@code rank(s)}: each entry's place in {@code top}'s order of {@code s} over all the lanes given (0: the best),
     * so that {@code where(rank(s) < n)} is {@code top(s, n)}; NaN for an entry that cannot rank.
     */
    public static double[][] rank(double[][] score, int[] compensation) {
        double[][] out = new double[score.length][];
        for (int h = 0; h < score.length; h++) {
            out[h] = new double[score[h].length];
            Arrays.fill(out[h], Double.NaN);
        }
        long[] order = topOrder(score, compensation);
        for (int r = 0; r < order.length; r++) out[(int) (order[r] >>> 32)][(int) order[r]] = r;
        return out;
    }

    /**
     * {@code strata(s, n)}: {@code top}'s order of the {@code m} candidates cut into {@code n} strata, stratum {@code
     * b} starting at rank {@code floor(b * m / n)}, and the first (best) entry of each; every candidate when {@code n
     * >= m}, none when {@code n <= 0}.
     */
    public static BitSet[] strata(double[][] score, int[] compensation, long n) {
        BitSet[] out = new BitSet[score.length];
        for (int h = 0; h < out.length; h++) out[h] = new BitSet();
        if (n <= 0) return out;
        long[] order = topOrder(score, compensation);
        long m = order.length;
        for (long b = 0; b < Math.min(n, m); b++) {
            long r = n >= m ? b : b * m / n; // b < m < 2^31: no overflow
            out[(int) (order[(int) r] >>> 32)].set((int) order[(int) r]);
        }
        return out;
    }

    /** {@code count(S)}: the members of every lane's set that are among its {@code size} entries. */
    public static long count(BitSet[] set, int[] size) {
        long n = 0;
        for (int h = 0; h < size.length; h++) {
            BitSet b = set[Math.min(h, set.length - 1)];
            n += size[h] >= b.length() ? b.cardinality() : b.get(0, size[h]).cardinality();
        }
        return n;
    }

    /** {@code member(S)}: per lane, 1 for each of its {@code size} entries in the set, else 0. */
    public static double[][] member(BitSet[] set, int[] size) {
        double[][] out = new double[size.length][];
        for (int h = 0; h < size.length; h++) {
            BitSet b = set[Math.min(h, set.length - 1)];
            out[h] = new double[size[h]];
            for (int t = b.nextSetBit(0); t >= 0 && t < size[h]; t = b.nextSetBit(t + 1)) out[h][t] = 1;
        }
        return out;
    }

    private static long mix(long z) {
        z += 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /**
     * {@code uniform(seed)} of one entry: a number in (0, 1), the same in every engine for the same seed, step,
     * layer, KV head and original position. SplitMix64's finaliser over the five in turn; the top 53 bits, centred
     * in their interval so that neither 0 nor 1 occurs.
     */
    public static double uniform(long seed, long step, long layer, long kvHead, long position) {
        long h = mix(seed);
        h = mix(h ^ step);
        h = mix(h ^ layer);
        h = mix(h ^ kvHead);
        h = mix(h ^ position);
        return ((h >>> 11) + 0.5) * 0x1.0p-53;
    }

    /** {@code gumbel(seed)} of one entry: {@code -log(-log(u))} of its {@link #uniform}. */
    public static double gumbel(long seed, long step, long layer, long kvHead, long position) {
        return -Math.log(-Math.log(uniform(seed, step, layer, kvHead, position)));
    }

    /**
     * {@code uniform(seed)} ({@code gumbel} when {@code gumbel}) of every entry: per lane, from its KV head and its
     * entries' original positions.
     */
    static double[][] random(boolean gumbel, long seed, long step, long layer, int[] kvHead, long[][] positions) {
        double[][] out = new double[positions.length][];
        for (int h = 0; h < positions.length; h++) {
            out[h] = new double[positions[h].length];
            for (int t = 0; t < out[h].length; t++) {
                out[h][t] = gumbel ? gumbel(seed, step, layer, kvHead[h], positions[h][t]) : uniform(seed, step, layer, kvHead[h], positions[h][t]);
            }
        }
        return out;
    }

    /**
     * {@code maxcos(x, S, R)} ({@code maxdot} when {@code !cosine}): per lane and entry {@code i} of {@code rows}
     * (null: every entry), the greatest similarity of row {@code i} of {@code x} ({@code width} channels) to row
     * {@code j} of another entry {@code j} of the set; {@code -inf} when the set has no other entry, NaN for an entry
     * outside {@code rows}. Dot products add channels in order; a cosine with a zero row is 0.
     */
    public static double[][] maxSimilarity(boolean cosine, double[][] x, int width, BitSet[] set, BitSet[] rows) {
        double[][] out = new double[x.length][];
        for (int h = 0; h < x.length; h++) {
            double[] row = x[h];
            int n = width == 0 ? 0 : row.length / width;
            BitSet b = set[Math.min(h, set.length - 1)];
            double[] norm = new double[n];
            if (cosine) {
                for (int i = 0; i < n; i++) norm[i] = Math.sqrt(dot(row, i, row, i, width));
            }
            out[h] = new double[n];
            BitSet want = rows == null ? null : rows[Math.min(h, rows.length - 1)];
            for (int i = 0; i < n; i++) {
                if (want != null && !want.get(i)) {
                    out[h][i] = Double.NaN;
                    continue;
                }
                double best = Double.NEGATIVE_INFINITY;
                for (int j = b.nextSetBit(0); j >= 0 && j < n; j = b.nextSetBit(j + 1)) {
                    if (j == i) continue;
                    double d = dot(row, i, row, j, width);
                    if (cosine) d = norm[i] == 0 || norm[j] == 0 ? 0 : d / (norm[i] * norm[j]);
                    if (d > best || Double.isNaN(d)) best = Math.max(best, d);
                }
                out[h][i] = best;
            }
        }
        return out;
    }

    private static double dot(double[] a, int i, double[] b, int j, int width) {
        double s = 0;
        for (int c = 0; c < width; c++) s += a[i * width + c] * b[j * width + c];
        return s;
    }
}
