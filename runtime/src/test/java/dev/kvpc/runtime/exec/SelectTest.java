package dev.kvpc.runtime.exec;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.Comparator;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** Selection gives the sort's choice under the interpreter's order: score, later index, lower head; NaN never ranks; per-head floors. */
class SelectTest {
    record C(int head, int index, double score) {}

    static BitSet[] bySort(double[][] s, boolean top, long count) {
        return bySort(s, top, count, -1);
    }

    /** The interpreter's rule written plainly: sort, each head's best floor first, then the rest in order. */
    static BitSet[] bySort(double[][] s, boolean top, long count, long floor) {
        List<C> cands = new ArrayList<>();
        for (int h = 0; h < s.length; h++) for (int t = 0; t < s[h].length; t++) if (!Double.isNaN(s[h][t])) cands.add(new C(h, t, s[h][t]));
        cands.sort(Comparator.comparingDouble((C x) -> top ? -x.score : x.score).thenComparing(Comparator.comparingInt((C x) -> x.index).reversed())
                .thenComparingInt(C::head));
        BitSet[] out = new BitSet[s.length];
        for (int h = 0; h < s.length; h++) out[h] = new BitSet();
        long left = Math.max(0, count);
        List<C> rest = cands;
        if (floor > 0) {
            int[] given = new int[s.length];
            rest = new ArrayList<>();
            for (C x : cands) {
                if (given[x.head] < floor && left > 0) {
                    out[x.head].set(x.index);
                    given[x.head]++;
                    left--;
                } else {
                    rest.add(x);
                }
            }
        }
        for (C x : rest) {
            if (left <= 0) break;
            out[x.head].set(x.index);
            left--;
        }
        return out;
    }

    @Test
    void agreesWithSortingOnTiesAndNaNs() {
        Random r = new Random(5);
        for (int trial = 0; trial < 2000; trial++) {
            int heads = 1 + r.nextInt(3), n = r.nextInt(40);
            double[][] s = new double[heads][n];
            for (double[] row : s) {
                for (int t = 0; t < n; t++) {
                    int kind = r.nextInt(10);
                    row[t] = kind == 0 ? Double.NaN : kind < 5 ? r.nextInt(4) : kind == 5 ? -0.0 : r.nextGaussian();
                }
            }
            boolean top = r.nextBoolean();
            long count = r.nextInt(heads * n + 3);
            assertArrayEquals(bySort(s, top, count), Select.best(s, heads, top, count, null), "trial " + trial);
            long floor = r.nextInt(4);
            assertArrayEquals(bySort(s, top, count, floor), Select.best(s, heads, top, count, floor, null), "trial " + trial + " floor " + floor);
        }
    }

    @Test
    void leavingOutAFewAgreesWithSorting() {
        // all but 0..10 of the valid candidates: the scan (up to Select.FEW left out) and selection beyond it
        Random r = new Random(9);
        for (int trial = 0; trial < 3000; trial++) {
            int heads = 1 + r.nextInt(3), n = 1 + r.nextInt(60);
            double[][] s = new double[heads][n];
            int valid = 0;
            for (double[] row : s) {
                for (int t = 0; t < n; t++) {
                    int kind = r.nextInt(10);
                    row[t] = kind == 0 ? Double.NaN : kind < 5 ? r.nextInt(3) : kind == 5 ? -0.0 : kind == 6 ? 0.0 : r.nextGaussian();
                    if (!Double.isNaN(row[t])) valid++;
                }
            }
            boolean top = r.nextBoolean();
            long count = Math.max(0, valid - r.nextInt(Select.FEW + 3));
            assertArrayEquals(bySort(s, top, count), Select.best(s, heads, top, count, null), "trial " + trial + " count " + count + " of " + valid);
        }
    }

    @Test
    void aMaskRanksAsNaNOutsideIt() {
        // rank within a set (LaneView.rankWithin) is rank of the scores with NaN outside the set
        Random r = new Random(13);
        for (int trial = 0; trial < 3000; trial++) {
            int heads = 1 + r.nextInt(3), n = 1 + r.nextInt(60);
            double[][] s = new double[heads][n], masked = new double[heads][n];
            BitSet[] mask = new BitSet[heads];
            int valid = 0;
            for (int h = 0; h < heads; h++) {
                mask[h] = new BitSet();
                int from = r.nextInt(n), to = from + r.nextInt(n - from + 1);
                mask[h].set(from, to);
                if (r.nextBoolean()) mask[h].set(r.nextInt(n + 5));
                for (int t = 0; t < n; t++) {
                    int kind = r.nextInt(12);
                    s[h][t] = kind == 0 ? Double.NaN : kind < 5 ? r.nextInt(3) : kind == 5 ? -0.0 : r.nextGaussian();
                    masked[h][t] = mask[h].get(t) ? s[h][t] : Double.NaN;
                    if (!Double.isNaN(masked[h][t])) valid++;
                }
            }
            boolean top = r.nextBoolean();
            long count = r.nextBoolean() ? Math.max(0, valid - r.nextInt(Select.FEW + 3)) : r.nextInt(valid + 2);
            assertArrayEquals(Select.best(masked, heads, top, count, null), Select.best(s, heads, top, count, -1, null, mask), "trial " + trial);
            assertArrayEquals(bySort(masked, top, count), Select.best(s, heads, top, count, -1, null, mask), "trial " + trial + " against sorting");
        }
    }
    @Test
    void leavingOutAFewOfColumnsAgreesWithSorting() {
        org.junit.jupiter.api.Assertions.assertInstanceOf(VectorScreens.class, Screens.BEST, "the tests run with the Vector API");
        columnsAgreeWithSorting(Screens.BEST);
        columnsAgreeWithSorting(Screens.Scalar.INSTANCE);
    }

    private static void columnsAgreeWithSorting(Screens screens) {
        // one or several float columns, a mask, sums or means (over a power of two and not), long rows so that the
        // block screen skips: the buffer the interpreter would build, ranked by the plain sort
        Random r = new Random(13);
        dev.kvpc.ir.Op.Red[] fns = {dev.kvpc.ir.Op.Red.SUM, dev.kvpc.ir.Op.Red.MEAN};
        int nulls = 0;
        for (int trial = 0; trial < 3000; trial++) {
            int cols = 1 + (r.nextInt(4) == 0 ? r.nextInt(3) : 0), n = 1 + r.nextInt(r.nextBoolean() ? 40 : 600);
            float[][] c = new float[cols][n];
            for (float[] col : c) {
                for (int t = 0; t < n; t++) {
                    int kind = r.nextInt(40);
                    col[t] = kind == 0 && trial % 7 == 0 ? Float.NaN : kind < 8 ? r.nextInt(3) : kind == 8 ? -0.0f : (float) r.nextGaussian();
                }
            }
            dev.kvpc.ir.Op.Red fn = fns[r.nextInt(2)];
            double cells = new double[] {1, 3, 4, 8}[r.nextInt(4)];
            BitSet mask = null;
            if (r.nextBoolean()) {
                mask = new BitSet();
                int a = r.nextInt(n), b = a + r.nextInt(n - a + 1);
                mask.set(a, b);
                if (r.nextBoolean()) mask.set(r.nextInt(n));
            }
            double[] row = new double[n];
            for (int t = 0; t < n; t++) {
                double v = c[0][t];
                if (cols > 1) {
                    v = 0.0 + v;
                    for (int i = 1; i < cols; i++) v += c[i][t];
                }
                row[t] = mask == null || mask.get(t) ? fn.finish(v, cells) : Double.NaN;
            }
            boolean top = r.nextBoolean();
            int valid = 0;
            for (double v : row) if (!Double.isNaN(v)) valid++;
            long count = Math.max(0, valid - r.nextInt(Select.FEW + 3));
            BitSet got = Select.allButFewWorstOfColumns(c, n, fn, cells, top, count, null, mask, screens);
            boolean nan = false;
            for (int t = 0; t < n; t++) if ((mask == null || mask.get(t)) && Double.isNaN(row[t])) nan = true;
            if (got == null) {
                // only when a candidate is NaN or more than FEW are left out
                nulls++;
                org.junit.jupiter.api.Assertions.assertTrue(nan || valid - count > Select.FEW, "trial " + trial);
                continue;
            }
            assertArrayEquals(bySort(new double[][] {row}, top, count), new BitSet[] {got}, "trial " + trial);
        }
        org.junit.jupiter.api.Assertions.assertTrue(nulls < 1500, "the scan declined " + nulls + " of 3000");
    }
}
