package dev.kvpc.bench;

import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;

import java.util.Arrays;
import java.util.BitSet;

/**
 * The stdlib policies of item 2 written by hand in plain Java over the same runtime {@link Lane}, the way one would
 * write them for one engine: the yardstick compiled policies are measured against. Each does what the KVP program
 * does at the stdlib's defaults (tie rules included where they decide what is kept).
 */
final class HandWrittenPolicies {
    private HandWrittenPolicies() {}

    /** H2O: acc += column sums; over budget, keep the last budget*recent and the best of the rest. */
    static void h2oStep(Lane lane, float[] columnSums, int budget, double recent) {
        lane.declareState("acc", 1);
        float[] acc = lane.state("acc");
        int n = lane.size();
        for (int i = 0; i < n; i++) acc[i] = (float) (acc[i] + (double) columnSums[i]);
        if (n <= budget) return;
        int r = (int) (budget * recent);
        int candidates = n - r, keepBest = budget - r;
        BitSet keep = new BitSet(n);
        keep.set(candidates, n);
        if (candidates - keepBest == 1) {
            // the usual decode step: one entry leaves, the lowest score (ties: the earliest goes)
            int worst = 0;
            for (int i = 1; i < candidates; i++) if (acc[i] < acc[worst]) worst = i;
            keep.set(0, candidates);
            keep.clear(worst);
        } else {
            Integer[] idx = new Integer[candidates];
            for (int i = 0; i < candidates; i++) idx[i] = i;
            Arrays.sort(idx, (a, b) -> acc[a] != acc[b] ? Float.compare(acc[b], acc[a]) : Integer.compare(b, a));
            for (int i = 0; i < keepBest; i++) keep.set(idx[i]);
        }
        lane.retain(keep);
    }

    /**
     * TOVA's decode step on one lane: the step's attention (column sums over the group's heads; the mean's divisor
     * changes no ranking, so it is skipped) scores the entries; over budget, the best {@code budget} stay.
     */
    static void tovaStep(Lane lane, float[] columnSums, int budget) {
        int n = lane.size();
        if (n <= budget) return;
        BitSet keep = new BitSet(n);
        keep.set(0, n);
        if (n - budget == 1) {
            // the usual decode step: one entry leaves, the lowest score (ties: the earliest goes)
            int worst = 0;
            for (int i = 1; i < n; i++) if (columnSums[i] < columnSums[worst]) worst = i;
            keep.clear(worst);
        } else {
            Integer[] idx = new Integer[n];
            for (int i = 0; i < n; i++) idx[i] = i;
            Arrays.sort(idx, (a, b) -> columnSums[a] != columnSums[b] ? Float.compare(columnSums[b], columnSums[a]) : Integer.compare(b, a));
            keep.clear();
            for (int i = 0; i < budget; i++) keep.set(idx[i]);
        }
        lane.retain(keep);
    }

    /** Quest's per-page key bounds, kept incrementally: only the last page changes as entries arrive. */
    static final class Quest {
        final int page, pages, d;
        float[] kmin = new float[0], kmax = new float[0];
        private final float[] row;

        Quest(int page, int pages, int d) {
            this.page = page;
            this.pages = pages;
            this.d = d;
            this.row = new float[d];
        }

        /** Bounds of every page (once, when the lane is filled). */
        void rebuild(Lane lane) {
            int np = (lane.size() + page - 1) / page;
            for (int p = 0; p < np; p++) bounds(lane, p);
        }

        /** Bounds of the last page, from its entries. */
        void update(Lane lane) {
            bounds(lane, (lane.size() + page - 1) / page - 1);
        }

        private void bounds(Lane lane, int p) {
            int n = lane.size(), np = (n + page - 1) / page;
            if (kmin.length < np * d) {
                kmin = Arrays.copyOf(kmin, Math.max(np * d, kmin.length * 2));
                kmax = Arrays.copyOf(kmax, kmin.length);
            }
            Arrays.fill(kmin, p * d, (p + 1) * d, Float.POSITIVE_INFINITY);
            Arrays.fill(kmax, p * d, (p + 1) * d, Float.NEGATIVE_INFINITY);
            for (int j = p * page; j < Math.min(n, (p + 1) * page); j++) {
                lane.read(j, Lane.Part.KEYS, row, 0);
                for (int c = 0; c < d; c++) {
                    kmin[p * d + c] = Math.min(kmin[p * d + c], row[c]);
                    kmax[p * d + c] = Math.max(kmax[p * d + c], row[c]);
                }
            }
        }

        /** The attend set of a decode step: the best pages by the bound on q.k, and the current page's worth. */
        BitSet attend(Lane lane, float[] q, int group) {
            int n = lane.size(), np = (n + page - 1) / page;
            double[] ub = new double[np];
            Arrays.fill(ub, Double.NEGATIVE_INFINITY);
            for (int g = 0; g < group; g++) {
                for (int p = 0; p < np; p++) {
                    double s = 0;
                    for (int c = 0; c < d; c++) {
                        double x = q[g * d + c];
                        s += Math.max(x * kmin[p * d + c], x * kmax[p * d + c]);
                    }
                    ub[p] = Math.max(ub[p], s);
                }
            }
            BitSet out = new BitSet(n);
            for (int p : top(ub, pages)) out.set(p * page, Math.min(n, (p + 1) * page));
            out.set(Math.max(0, n - page), n);
            return out;
        }
    }

    /** Indices of the {@code k} largest values (ties: the later index), by partial selection. */
    static int[] top(double[] v, int k) {
        int n = v.length;
        if (k >= n) {
            int[] all = new int[n];
            for (int i = 0; i < n; i++) all[i] = i;
            return all;
        }
        // a min-heap of the k best so far
        int[] heap = new int[k];
        int size = 0;
        for (int i = 0; i < n; i++) {
            if (size < k) {
                heap[size] = i;
                siftUp(heap, size++, v);
            } else if (better(v, i, heap[0])) {
                heap[0] = i;
                siftDown(heap, k, v);
            }
        }
        return heap;
    }

    private static boolean better(double[] v, int a, int b) {
        return v[a] > v[b] || (v[a] == v[b] && a > b);
    }

    private static void siftUp(int[] h, int i, double[] v) {
        while (i > 0) {
            int p = (i - 1) / 2;
            if (!better(v, h[p], h[i])) break;
            int t = h[p];
            h[p] = h[i];
            h[i] = t;
            i = p;
        }
    }

    private static void siftDown(int[] h, int size, double[] v) {
        int i = 0;
        while (true) {
            int l = 2 * i + 1, r = l + 1, m = i;
            if (l < size && better(v, h[m], h[l])) m = l;
            if (r < size && better(v, h[m], h[r])) m = r;
            if (m == i) return;
            int t = h[m];
            h[m] = h[i];
            h[i] = t;
            i = m;
        }
    }

    /**
     * KIVI's standing rules after an entry arrives: keys per channel in blocks of {@code group} once they leave the
     * last {@code residual} entries, values per token once they leave it.
     */
    static void kiviStep(Lane lane, int bits, int group, int residual) {
        int n = lane.size(), boundary = n - residual;
        if (boundary <= 0) return;
        Precision p = Precision.ofIntBits(bits);
        QuantSpec values = new QuantSpec(p, QuantSpec.Axis.TOKEN, group);
        int v = boundary - 1;
        if (lane.spec(v, Lane.Part.VALUES).precision() != p) lane.restore(v, Lane.Part.VALUES, values);
        // the keys not yet in a block are the run just before the boundary
        int start = boundary;
        while (start > 0 && lane.spec(start - 1, Lane.Part.KEYS).precision() != p) start--;
        if (boundary - start >= group) {
            int[] block = new int[group];
            for (int i = 0; i < group; i++) block[i] = start + i;
            lane.packBlock(block, Lane.Part.KEYS, new QuantSpec(p, QuantSpec.Axis.CHANNEL, group));
        }
    }

    /**
     * SnapKV at prefill: attention of the last {@code window} queries, summed over them, max-pooled along tokens,
     * averaged over the group; keep the best of the earlier entries and the window.
     */
    static void snapKvPrefill(Lane lane, float[] queries, int heads, int kvHead, int group, int budget, int window, int kernel) {
        int n = lane.size(), d = lane.headDim();
        float scale = (float) (1.0 / Math.sqrt(d));
        double[][] sums = new double[group][n];
        float[] logits = new float[n];
        for (int qi = n - window; qi < n; qi++) {
            for (int g = 0; g < group; g++) {
                int off = (qi * heads + kvHead * group + g) * d;
                float max = Float.NEGATIVE_INFINITY;
                for (int j = 0; j <= qi; j++) {
                    logits[j] = lane.dotKey(j, queries, off) * scale;
                    max = Math.max(max, logits[j]);
                }
                double sum = 0;
                for (int j = 0; j <= qi; j++) {
                    logits[j] = (float) Math.exp(logits[j] - max);
                    sum += logits[j];
                }
                for (int j = 0; j <= qi; j++) sums[g][j] += logits[j] / sum;
            }
        }
        double[] s = new double[n - window];
        int half = kernel / 2;
        for (int g = 0; g < group; g++) {
            for (int t = 0; t < s.length; t++) {
                double m = Double.NEGATIVE_INFINITY;
                for (int u = Math.max(0, t - half); u <= Math.min(n - 1, t - half + kernel - 1); u++) m = Math.max(m, sums[g][u]);
                s[t] += m / group;
            }
        }
        BitSet keep = new BitSet(n);
        for (int i : top(s, budget - window)) keep.set(i);
        keep.set(n - window, n);
        lane.retain(keep);
    }
}
