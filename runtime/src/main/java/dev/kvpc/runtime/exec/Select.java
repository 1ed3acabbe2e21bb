package dev.kvpc.runtime.exec;

import dev.kvpc.ir.Op.Red;
import dev.kvpc.runtime.lane.Lane;

import java.util.BitSet;
import java.util.List;

/**
 * {@code top}/{@code bottom} over primitive arrays: the {@code count} best candidates under the interpreter's total
 * order (score, then the later index, then the lower head), found by selection in linear expected time; with a
 * per-head floor (each head first gets its best {@code floor}, the rest is filled globally) by one sort.
 */
public final class Select {
    private Select() {}

    /**
     * The ranking rule, for every caller (the reference interpreter's included): per head, the indices of the
     * {@code count} best candidates of {@code score[h]} ({@code top}: highest), NaN never ranking and neither does
     * index {@code compensation[h]} (-1: none; null: none for any head); with {@code floor > 0}, each head first gets
     * its best {@code floor}, the rest are filled globally. The order is total: score, then the later index, then the
     * lower head.
     */
    public static BitSet[] rank(double[][] score, boolean top, long count, long floor, int[] compensation) {
        return bestOf(score, score.length, top, count, floor, compensation == null ? new int[score.length] : compensation, compensation == null, null);
    }

    /**
     * The ranking rule of a score with a group axis, for every caller: each row (a query head of the lane's group)
     * ranks on its own by {@link #rank}, {@code count} of its own; {@code compensation} is the lane's (-1: none).
     */
    public static BitSet[] rankEach(double[][] rows, boolean top, long count, int compensation) {
        BitSet[] out = new BitSet[rows.length];
        for (int g = 0; g < rows.length; g++) out[g] = rank(new double[][] {rows[g]}, top, count, -1, new int[] {compensation})[0];
        return out;
    }

    /**
     * Per head, the chosen indices of {@code score[h]} (NaN never ranks; with {@code lanes}, neither does a lane's
     * compensation entry).
     */
    static BitSet[] best(double[][] score, int heads, boolean top, long count, List<Lane> lanes) {
        return best(score, heads, top, count, -1, lanes);
    }

    static BitSet[] best(double[][] score, int heads, boolean top, long count, long floor, List<Lane> lanes) {
        return best(score, heads, top, count, floor, lanes, null);
    }

    /** As above, candidates restricted to {@code mask} (per head; null: all), as if the others were NaN. */
    static BitSet[] best(double[][] score, int heads, boolean top, long count, long floor, List<Lane> lanes, BitSet[] mask) {
        int[] comp = new int[heads];
        for (int h = 0; h < heads; h++) comp[h] = compensation(lanes, h);
        return bestOf(score, heads, top, count, floor, comp, false, mask);
    }

    /** {@link #best} with each head's compensation index given ({@code none}: no head has one). */
    private static BitSet[] bestOf(double[][] score, int heads, boolean top, long count, long floor, int[] comp, boolean none, BitSet[] mask) {
        if (none) java.util.Arrays.fill(comp, -1);
        if (floor <= 0) {
            BitSet[] few = allButFewWorst(score, heads, top, count, comp, mask);
            if (few != null) return few;
        }
        int total = 0;
        for (double[] row : score) total += row.length;
        int[] head = new int[total], index = new int[total];
        double[] key = new double[total];
        int m = 0;
        for (int h = 0; h < heads; h++) {
            double[] row = score[h];
            BitSet in = mask == null ? null : mask[h];
            for (int t = 0; t < row.length; t++) {
                double v = row[t];
                if (Double.isNaN(v)) continue;
                if (in != null && !in.get(t)) continue;
                if (t == comp[h]) continue;
                head[m] = h;
                index[m] = t;
                key[m] = top ? -v : v;
                m++;
            }
        }
        BitSet[] out = new BitSet[heads];
        for (int h = 0; h < heads; h++) out[h] = new BitSet();
        int k = (int) Math.max(0, Math.min(count, m));
        int[] order = new int[m];
        for (int i = 0; i < m; i++) order[i] = i;
        if (floor > 0) {
            // every candidate in order: each head's best floor first, then the rest in order
            Integer[] sorted = new Integer[m];
            for (int i = 0; i < m; i++) sorted[i] = i;
            java.util.Arrays.sort(sorted, (a, b) -> a.equals(b) ? 0 : before(a, b, key, index, head) ? -1 : 1);
            int[] given = new int[heads];
            long left = k;
            List<Integer> rest = new java.util.ArrayList<>();
            for (int c : sorted) {
                if (given[head[c]] < floor && left > 0) {
                    out[head[c]].set(index[c]);
                    given[head[c]]++;
                    left--;
                } else {
                    rest.add(c);
                }
            }
            for (int c : rest) {
                if (left <= 0) break;
                out[head[c]].set(index[c]);
                left--;
            }
            return out;
        }
        if (k == m) {
            for (int i = 0; i < m; i++) out[head[i]].set(index[i]);
            return out;
        }
        select(order, 0, m - 1, k, key, index, head);
        // order[0..k) now holds the k best
        for (int i = 0; i < k; i++) out[head[order[i]]].set(index[order[i]]);
        return out;
    }

    /** At most this many candidates left out are found by one scan instead of by selection. */
    static final int FEW = 8;

    /**
     * The {@value #FEW} worst candidates offered so far, best first (keys as in {@link #best}, indices, heads), and
     * how many were offered: the one scan of {@link #allButFewWorst} and {@link #allButFewWorstOfColumns}. A key
     * below {@link #bar()} ranks before all of them once the buffer is full (raw {@code <} implies the order's), so
     * the scans skip it without a call: most candidates stop there.
     */
    private static final class Worst {
        final double[] key = new double[FEW];
        final int[] index = new int[FEW], head = new int[FEW];
        /** How many worst candidates are kept: {@value #FEW}, or as many as are known to be left out. */
        final int cap;
        int w;
        long m;

        Worst(int cap) {
            this.cap = cap;
        }

        double bar() {
            return w == cap ? key[0] : Double.NEGATIVE_INFINITY;
        }

        void offer(double k, int t, int h) {
            int at;
            if (w < cap) {
                at = w++;
            } else if (before(key[0], index[0], head[0], k, t, h)) {
                // worse than the best of the worst: that one leaves, this one goes into place
                System.arraycopy(key, 1, key, 0, cap - 1);
                System.arraycopy(index, 1, index, 0, cap - 1);
                System.arraycopy(head, 1, head, 0, cap - 1);
                at = cap - 1;
            } else {
                return;
            }
            while (at > 0 && before(k, t, h, key[at - 1], index[at - 1], head[at - 1])) {
                key[at] = key[at - 1];
                index[at] = index[at - 1];
                head[at] = head[at - 1];
                at--;
            }
            key[at] = k;
            index[at] = t;
            head[at] = h;
        }

        /** How many of the {@link #m} candidates are left out when {@code count} are chosen (-1: more than FEW). */
        int dropped(long count) {
            long k = Math.max(0, Math.min(count, m));
            return m - k > FEW ? -1 : (int) (m - k);
        }

        /** Clears the dropped worst candidates from the sets of every candidate. */
        void clearDropped(BitSet[] out, int drop) {
            for (int i = w - drop; i < w; i++) out[head[i]].clear(index[i]);
        }
    }

    /** Lane h's compensation entry (of the last lane for heads beyond them), or -1. */
    private static int compensation(List<Lane> lanes, int h) {
        return lanes == null ? -1 : compensation(lanes.get(Math.min(h, lanes.size() - 1)));
    }

    /** A lane's compensation entry (its last, if any; it never ranks), or -1. */
    static int compensation(Lane lane) {
        return lane != null && lane.size() > 0 && lane.isCompensation(lane.size() - 1) ? lane.size() - 1 : -1;
    }

    /** Every index below {@code len} of the mask (or all), but {@code comp}: the candidates when none is NaN. */
    private static BitSet candidates(int len, BitSet in, int comp) {
        BitSet b = new BitSet(len);
        if (in == null) b.set(0, len);
        else b.or(in);
        b.clear(len, Math.max(len, b.length()));
        if (comp >= 0) b.clear(comp);
        return b;
    }

    /**
     * The common decode-step case (H2O, TOVA: one entry arrives, one leaves): when all but at most {@value #FEW}
     * candidates are chosen, one scan finds the ones left out (the worst under the same order as {@link #before}),
     * without building the candidate arrays. Returns null when more are left out.
     */
    private static BitSet[] allButFewWorst(double[][] score, int heads, boolean top, long count, int[] comp, BitSet[] mask) {
        Worst worst = new Worst(FEW);
        boolean nan = false;
        for (int h = 0; h < heads; h++) {
            double[] row = score[h];
            int skip = comp[h], len = row.length;
            BitSet in = mask == null ? null : mask[h];
            // the candidates in runs: the mask's runs of set bits, or the whole row
            for (int a = in == null ? 0 : in.nextSetBit(0); a >= 0 && a < len; ) {
                int b = in == null ? len : Math.min(len, in.nextClearBit(a));
                for (int t = a; t < b; t++) {
                    double v = row[t];
                    if (v != v || t == skip) {
                        nan |= t != skip;
                        continue;
                    }
                    worst.m++;
                    double key = top ? -v : v;
                    if (key < worst.bar()) continue;
                    worst.offer(key, t, h);
                }
                a = b >= len || in == null ? -1 : in.nextSetBit(b);
            }
        }
        int drop = worst.dropped(count);
        if (drop < 0) return null;
        BitSet[] out = new BitSet[heads];
        for (int h = 0; h < heads; h++) {
            double[] row = score[h];
            BitSet in = mask == null ? null : mask[h];
            if (!nan) {
                out[h] = candidates(row.length, in, comp[h]);
                continue;
            }
            BitSet b = out[h] = new BitSet(row.length);
            int start = -1;
            for (int t = 0; t <= row.length; t++) {
                boolean valid = t < row.length && row[t] == row[t] && t != comp[h] && (in == null || in.get(t));
                if (valid && start < 0) start = t;
                if (!valid && start >= 0) {
                    b.set(start, t);
                    start = -1;
                }
            }
        }
        worst.clearDropped(out, drop);
        return out;
    }

    /**
     * {@link #best} of one row over the first {@code len} indices whose values are {@code fn.finish(c[0][t], cells)},
     * or of several columns {@code fn.finish(0 + c[0][t] + c[1][t] + ..., cells)} (summed in double in column order,
     * as the interpreter's reduction over lanes; {@link Red#finish(double[], double)}'s mean by division), read
     * where the columns are, without a buffer: the decode-step case where all but at most {@value #FEW} are chosen.
     * Returns null (the caller builds the buffer and calls {@link #best}) when more are left out or a value is NaN.
     */
    static BitSet allButFewWorstOfColumns(float[][] c, int len, Red fn, double cells, boolean top, long count, Lane lane, BitSet mask) {
        return allButFewWorstOfColumns(c, len, fn, cells, top, count, lane, mask, Screens.BEST);
    }

    /** As above, blocks screened by {@code screens} (the tests run each). */
    static BitSet allButFewWorstOfColumns(float[][] c, int len, Red fn, double cells, boolean top, long count, Lane lane, BitSet mask, Screens screens) {
        int skip = compensation(lane);
        // NaN stops the scan, so how many are left out is known before it: the scan keeps only that many worst, and
        // its screen's bar is then the very worst so far, which few blocks pass (against the FEW-th worst, many did)
        BitSet all = candidates(len, mask, skip);
        long candidates = all.cardinality(), left = candidates - Math.max(0, Math.min(count, candidates));
        if (left > FEW) return null;
        Worst worst = new Worst((int) Math.max(1, left));
        float[] c0 = c[0];
        boolean several = c.length > 1, mean = fn.dividesBy(cells), other = !mean && fn.post != null;
        // a mean over a power-of-two count: its reciprocal is exact, and multiplying by it gives the quotient's bits
        boolean exact = mean && Math.getExponent(cells) >= Double.MIN_EXPONENT && cells == Math.scalb(1.0, Math.getExponent(cells));
        double inverse = exact ? 1 / cells : 0, sign = top ? -1 : 1, bar = worst.bar();
        // one column, its values scaled by nothing or by a power of two: the order of the keys is the floats' own, so
        // a block whose every float ranks before the best of the worst (in float compares) holds no candidate
        boolean screen = !several && !other && (!mean || exact);
        float rawBar = 0;
        for (int a = mask == null ? 0 : mask.nextSetBit(0); a >= 0 && a < len; ) {
            int b = mask == null ? len : Math.min(len, mask.nextClearBit(a));
            for (int s = a, e; s < b; s = e) {
                e = Math.min(b, s + BLOCK);
                if (screen && worst.w == worst.cap && screens.allBetter(c0, s, e, rawBar, top)) continue;
                for (int t = s; t < e; t++) {
                    double v = c0[t];
                    if (several) {
                        v = 0.0 + v;
                        for (int i = 1; i < c.length; i++) v += c[i][t];
                    }
                    if (exact) v *= inverse;
                    else if (mean) v /= cells;
                    else if (other) v = fn.finish(v, cells);
                    if (v != v) {
                        if (t == skip) continue;
                        return null;
                    }
                    double key = sign * v;
                    if (key < bar || t == skip) continue;
                    worst.offer(key, t, 0);
                    bar = worst.bar();
                    if (worst.w == worst.cap) rawBar = c0[worst.index[0]];
                }
            }
            a = b >= len || mask == null ? -1 : mask.nextSetBit(b);
        }
        worst.m = candidates;
        int drop = worst.dropped(count);
        if (drop < 0) return null;
        BitSet[] out = {all};
        worst.clearDropped(out, drop);
        return all;
    }

    /** Entries screened together by {@link #allButFewWorstOfColumns}. */
    private static final int BLOCK = 32;

    /** Whether candidate (key {@code ka}, index {@code ia}, head {@code ha}) ranks before candidate b: {@link #before}'s order. */
    private static boolean before(double ka, int ia, int ha, double kb, int ib, int hb) {
        int c = Double.compare(ka, kb);
        if (c != 0) return c < 0;
        if (ia != ib) return ia > ib;
        return ha < hb;
    }

    /** Whether candidate {@code a} ranks before {@code b}. */
    private static boolean before(int a, int b, double[] key, int[] index, int[] head) {
        int c = Double.compare(key[a], key[b]);
        if (c != 0) return c < 0;
        if (index[a] != index[b]) return index[a] > index[b];
        return head[a] < head[b];
    }

    /** Rearranges {@code o[lo..hi]} so that its first {@code k - lo} elements (from lo) are the best ones. */
    private static void select(int[] o, int lo, int hi, int k, double[] key, int[] index, int[] head) {
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            // median of three as the pivot
            if (before(o[mid], o[lo], key, index, head)) swap(o, mid, lo);
            if (before(o[hi], o[lo], key, index, head)) swap(o, hi, lo);
            if (before(o[hi], o[mid], key, index, head)) swap(o, hi, mid);
            int pivot = o[mid];
            int i = lo, j = hi;
            while (i <= j) {
                while (before(o[i], pivot, key, index, head)) i++;
                while (before(pivot, o[j], key, index, head)) j--;
                if (i <= j) {
                    swap(o, i, j);
                    i++;
                    j--;
                }
            }
            // o[lo..j] before-or-equal pivot, o[i..hi] after-or-equal; every candidate is distinct in the order
            if (k <= j) hi = j;
            else if (k >= i) lo = i;
            else return;
        }
    }

    private static void swap(int[] o, int a, int b) {
        int t = o[a];
        o[a] = o[b];
        o[b] = t;
    }
}
