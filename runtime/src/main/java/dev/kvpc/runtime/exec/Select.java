package dev.kvpc.runtime.exec;

import dev.kvpc.runtime.lane.Lane;

import java.util.BitSet;
import java.util.List;

/**
 * {@code top}/{@code bottom} over primitive arrays: the {@code count} best candidates under the interpreter's total
 * order (score, then the later index, then the lower head), found by selection in linear expected time; with a
 * per-head floor (each head first gets its best {@code floor}, the rest is filled globally) by one sort.
 */
final class Select {
    private Select() {}

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
        if (floor <= 0) {
            BitSet[] few = allButFewWorst(score, heads, top, count, lanes, mask);
            if (few != null) return few;
        }
        int total = 0;
        for (double[] row : score) total += row.length;
        int[] head = new int[total], index = new int[total];
        double[] key = new double[total];
        int m = 0;
        for (int h = 0; h < heads; h++) {
            Lane lane = lanes == null ? null : lanes.get(Math.min(h, lanes.size() - 1));
            double[] row = score[h];
            BitSet in = mask == null ? null : mask[h];
            for (int t = 0; t < row.length; t++) {
                double v = row[t];
                if (Double.isNaN(v)) continue;
                if (in != null && !in.get(t)) continue;
                if (lane != null && lane.isCompensation(t)) continue;
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
     * The common decode-step case (H2O, TOVA: one entry arrives, one leaves): when all but at most {@value #FEW}
     * candidates are chosen, one scan finds the ones left out (the worst under the same order as {@link #before}),
     * without building the candidate arrays. Returns null when more are left out.
     */
    private static BitSet[] allButFewWorst(double[][] score, int heads, boolean top, long count, List<Lane> lanes, BitSet[] mask) {
        // one pass: count the candidates and keep the FEW worst seen so far, best first (wk key as in best, wt index,
        // wh head); the ones left out are the last (m - k) of those
        double[] wk = new double[FEW];
        int[] wt = new int[FEW], wh = new int[FEW];
        int w = 0;
        long m = 0;
        int[] comp = new int[heads];
        boolean nan = false;
        for (int h = 0; h < heads; h++) {
            Lane lane = lanes == null ? null : lanes.get(Math.min(h, lanes.size() - 1));
            // a lane's compensation entry, if any, is its last; it never ranks
            comp[h] = lane != null && lane.size() > 0 && lane.isCompensation(lane.size() - 1) ? lane.size() - 1 : -1;
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
                    m++;
                    double key = top ? -v : v;
                    // once the buffer is full, a key below the best of the worst ranks before it (raw < implies
                    // the order's <): most candidates stop here
                    if (w == FEW && key < wk[0]) continue;
                    int at;
                    if (w < FEW) {
                        at = w++;
                    } else if (before(wk[0], wt[0], wh[0], key, t, h)) {
                        // worse than the best of the worst: that one leaves, this one goes into place
                        System.arraycopy(wk, 1, wk, 0, FEW - 1);
                        System.arraycopy(wt, 1, wt, 0, FEW - 1);
                        System.arraycopy(wh, 1, wh, 0, FEW - 1);
                        at = FEW - 1;
                    } else {
                        continue;
                    }
                    while (at > 0 && before(key, t, h, wk[at - 1], wt[at - 1], wh[at - 1])) {
                        wk[at] = wk[at - 1];
                        wt[at] = wt[at - 1];
                        wh[at] = wh[at - 1];
                        at--;
                    }
                    wk[at] = key;
                    wt[at] = t;
                    wh[at] = h;
                }
                a = b >= len || in == null ? -1 : in.nextSetBit(b);
            }
        }
        long k = Math.max(0, Math.min(count, m));
        if (m - k > FEW) return null;
        int drop = (int) (m - k);
        BitSet[] out = new BitSet[heads];
        for (int h = 0; h < heads; h++) {
            double[] row = score[h];
            BitSet b = out[h] = new BitSet(row.length);
            BitSet in = mask == null ? null : mask[h];
            if (!nan) {
                // every index of the mask (or the row) but the compensation entry is a candidate
                if (in == null) b.set(0, row.length);
                else b.or(in);
                b.clear(row.length, Math.max(row.length, b.length()));
                if (comp[h] >= 0) b.clear(comp[h]);
                continue;
            }
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
        for (int i = w - drop; i < w; i++) out[wh[i]].clear(wt[i]);
        return out;
    }

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
