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
        int total = 0;
        for (double[] row : score) total += row.length;
        int[] head = new int[total], index = new int[total];
        double[] key = new double[total];
        int m = 0;
        for (int h = 0; h < heads; h++) {
            Lane lane = lanes == null ? null : lanes.get(Math.min(h, lanes.size() - 1));
            double[] row = score[h];
            for (int t = 0; t < row.length; t++) {
                double v = row[t];
                if (Double.isNaN(v)) continue;
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
