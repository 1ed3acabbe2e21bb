package dev.kvpc.runtime.engine;

import dev.kvpc.runtime.lane.Lane;

import java.util.BitSet;

/**
 * Scaled dot-product attention of a group of query heads over one lane, reading keys and values at whatever
 * precision they are stored (the row codecs dequantise inside the dot product and the weighted sum), over the
 * attend set when one is given, causal by position. It also accumulates the statistics policies read without
 * materialising attention rows: per entry, the sum over queries and heads of the probabilities (H2O's column sums).
 * Scratch arrays are reused across calls; one kernel per thread.
 */
public final class AttentionKernel {
    private float[] logits = new float[64];
    private float[][] keys = new float[0][];
    /** The lane's rows read for the current step: keys rotated by slot (positions cache), or keys and values read by several query rows. */
    private DenseRows rows;

    /**
     * @param q        queries, {@code queries x group x headDim}, row-major
     * @param qpos     the position of each query
     * @param attend   entries that may be read (null: all)
     * @param out      outputs, {@code queries x group x headDim}, overwritten
     * @param colSums  if not null, {@code colSums[entry] += } the entry's probability summed over queries and heads
     */
    public void attend(Lane lane, float[] q, int[] qpos, int group, BitSet attend, float[] out, float[] colSums) {
        attend(lane, q, qpos, group, attend, out, colSums, null);
    }

    /**
     * As above; with {@code slotRope}, keys are stored unrotated and rotated at read by their cache slot (their index
     * in the lane): {@code positions cache}. Masking stays causal by text position.
     */
    public void attend(Lane lane, float[] q, int[] qpos, int group, BitSet attend, float[] out, float[] colSums, dev.kvpc.runtime.Rope slotRope) {
        attend(lane, q, qpos, group, attend, out, colSums, slotRope, null, 0, 0);
    }

    /**
     * As above, under an attention variant ({@code variant} null: standard): logits and masks per pair from the
     * variant, then its normalisation. {@code firstHead} is the lane's first query head; {@code context} the
     * tokens seen.
     */
    public void attend(Lane lane, float[] q, int[] qpos, int group, BitSet attend, float[] out, float[] colSums, dev.kvpc.runtime.Rope slotRope,
                       dev.kvpc.runtime.AttentionVariant variant, int firstHead, int context) {
        if (variant != null) {
            attendVariant(lane, q, qpos, group, attend, out, colSums, slotRope, variant, firstHead, context);
            return;
        }
        int n = lane.size(), d = lane.headDim();
        logits = atLeast(logits, n);
        // keys rotated by their slot once per step (a key's rotation depends on its slot only), not per query.
        // Values read (dequantised) once per step into one array when more than one query row reads them (a prefill,
        // or a group of heads): a lane's axpy is the product with the row read, bit for bit (Lane.axpyValue), so the
        // sums are the same, without decoding a row again for every query row; keys likewise (Lane.dotKey is
        // Lane.dot4 of the row read)
        boolean gather = qpos.length * group > 1;
        boolean gatherKeys = gather && slotRope == null;
        float[] keyRow = null, valueRow = null;
        if (slotRope != null || gather) {
            if (rows == null || rows.headDim() != d) rows = new DenseRows(d);
            rows.read(lane, attend, slotRope, gather);
            keyRow = rows.keys();
            valueRow = rows.values();
        }
        float scale = (float) (1.0 / Math.sqrt(d));
        for (int qi = 0; qi < qpos.length; qi++) {
            for (int g = 0; g < group; g++) {
                int qOff = (qi * group + g) * d;
                float max = Float.NEGATIVE_INFINITY;
                for (int j = 0; j < n; j++) {
                    if ((attend != null && !attend.get(j)) || lane.position(j) > qpos[qi]) {
                        logits[j] = Float.NEGATIVE_INFINITY;
                        continue;
                    }
                    float l;
                    if (gatherKeys) {
                        l = Lane.dot4(q, qOff, keyRow, j * d, d) * scale;
                    } else if (slotRope == null) {
                        l = lane.dotKey(j, q, qOff) * scale;
                    } else {
                        float s = 0;
                        for (int c = 0, k0 = j * d; c < d; c++) s += q[qOff + c] * keyRow[k0 + c];
                        l = s * scale;
                    }
                    logits[j] = l;
                    if (l > max) max = l;
                }
                java.util.Arrays.fill(out, qOff, qOff + d, 0f);
                if (max == Float.NEGATIVE_INFINITY) continue;
                double sum = 0;
                for (int j = 0; j < n; j++) {
                    if (logits[j] == Float.NEGATIVE_INFINITY) {
                        logits[j] = 0;
                        continue;
                    }
                    float e = (float) Math.exp(logits[j] - max);
                    logits[j] = e;
                    sum += e;
                }
                float inv = (float) (1.0 / sum);
                for (int j = 0; j < n; j++) {
                    float p = logits[j] * inv;
                    if (p == 0) continue;
                    if (gather) {
                        for (int c = 0, v0 = j * d; c < d; c++) out[qOff + c] += p * valueRow[v0 + c];
                    } else {
                        lane.axpyValue(j, p, out, qOff);
                    }
                    if (colSums != null) colSums[j] += p;
                }
            }
        }
    }

    /** The general path: every key read as a row (rotated by slot when asked), the variant's logits and masks. */
    private void attendVariant(Lane lane, float[] q, int[] qpos, int group, BitSet attend, float[] out, float[] colSums,
                               dev.kvpc.runtime.Rope slotRope, dev.kvpc.runtime.AttentionVariant variant, int firstHead, int context) {
        int n = lane.size(), d = lane.headDim();
        if (keys.length < n) keys = java.util.Arrays.copyOf(keys, Math.max(n, keys.length * 2));
        for (int j = 0; j < n; j++) {
            if (keys[j] == null || keys[j].length != d) keys[j] = new float[d];
            lane.read(j, Lane.Part.KEYS, keys[j], 0);
            if (slotRope != null) slotRope.rotate(keys[j], 0, d, j);
        }
        double[] w = new double[n];
        for (int qi = 0; qi < qpos.length; qi++) {
            for (int g = 0; g < group; g++) {
                int qOff = (qi * group + g) * d, head = firstHead + g;
                java.util.Arrays.fill(out, qOff, qOff + d, 0f);
                boolean[] vis = new boolean[n];
                for (int j = 0; j < n; j++) {
                    int kpos = lane.isCompensation(j) ? -1 : lane.position(j);
                    if (attend != null && !attend.get(j)) continue;
                    if (!variant.visible(q, qOff, keys[j], qpos[qi], kpos, head, context)) continue;
                    vis[j] = true;
                    w[j] = variant.logit(q, qOff, keys[j], qpos[qi], kpos, head, context);
                }
                variant.normalize().apply(w, vis, w, n);
                for (int j = 0; j < n; j++) {
                    if (w[j] == 0) continue;
                    float p = (float) w[j];
                    lane.axpyValue(j, p, out, qOff);
                    if (colSums != null) colSums[j] += p;
                }
            }
        }
    }

    /** {@code a} if it holds {@code n} floats, else a new array of at least {@code n} (doubling, for reuse). */
    private static float[] atLeast(float[] a, int n) {
        return a != null && a.length >= n ? a : new float[Math.max(n, a == null ? 0 : a.length * 2)];
    }
}
