package dev.kvpc.gpu.kernels;

import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.gpu.emit.CEmitter;
import dev.kvpc.gpu.emit.Dialect;
import dev.kvpc.gpu.kir.KirModule;
import dev.kvpc.runtime.engine.DecodeKernel;
import dev.kvpc.runtime.lane.KernelRows;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.store.Precision;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.BitSet;
import java.util.Map;

/**
 * Decode attention on an OpenCL device ({@code decode_attention.kir}): the runtime's {@link DecodeKernel} for one head
 * dimension and group, split over entries with a merge of partial softmax states. This form stages the lane's rows
 * to the device on each call (keys and values read as f32 rows, as {@link Lane#read} gives them); what it computes is
 * what {@link dev.kvpc.runtime.engine.AttentionKernel} computes, within float rounding (sums in another order, in
 * float, with fused multiply-adds).
 */
public final class ClDecodeKernel implements DecodeKernel {
    /**
     * A work-group's size and the entries of its split (each work-item takes {@code chunk / workGroup} of them), the
     * largest up to 64 and 256 whose local memory fits the 32 KiB every device has: the query of every head, a
     * reduction slot per head and work-item, and the split's weights; null where none fits (the host's kernel then
     * serves that shape).
     */
    public record Geometry(int workGroup, int chunk) {
        public static Geometry of(int headDim, int group, long deviceMaxWorkGroup) {
            for (int wg = ClDecodeKernel.workGroup(deviceMaxWorkGroup); wg >= 8; wg >>= 1) {
                for (int ch = 256; ch >= wg; ch >>= 1) {
                    long bytes = 4L * ((long) group * wg + (long) group * headDim + (long) group * ch + ch);
                    if (bytes <= dev.kvpc.gpu.kir.KirVerifier.LOCAL_BYTES) return new Geometry(wg, ch);
                }
            }
            return null;
        }
    }

    private final ClContext cl;
    private final int d, group, wg, chunk;
    private final ClContext.Kernel partial, merge, colsums;
    private ClContext.Buffer q, keys, values, pos, attendFlags, weights, pm, ps, po, out, mstar, sinv, col, qposs;
    private int capacity = -1, splitCapacity = -1;
    private float[] keyRows = new float[0], valueRows = new float[0];

    public ClDecodeKernel(ClContext cl, int headDim, int group) {
        this.cl = cl;
        this.d = headDim;
        this.group = group;
        Geometry geo = Geometry.of(headDim, group, cl.device().maxWorkGroupSize());
        if (geo == null) throw new UnsupportedOperationException("no work-group geometry fits head dim " + headDim + " and group " + group + " in local memory");
        this.wg = geo.workGroup();
        this.chunk = geo.chunk();
        String source = CEmitter.emit(module(headDim, group, wg, chunk), Dialect.OPENCL);
        ClContext.Program p = cl.build(source, "-cl-std=CL1.2", "decode attention (head dim " + headDim + ", group " + group + ")");
        partial = p.kernel("decode_partial");
        merge = p.kernel("decode_merge");
        colsums = p.kernel("decode_colsums");
        q = cl.buffer(4L * group * headDim, "queries");
        out = cl.buffer(4L * group * headDim, "outputs");
        mstar = cl.buffer(4L * group, "maxima");
        sinv = cl.buffer(4L * group, "inverse sums");
        qposs = cl.buffer(4, "the query position");
    }

    /** The kernels for this shape, as kernel IR. */
    public static KirModule module(int headDim, int group, int workGroup, int chunk) {
        Map<String, String> f = new java.util.HashMap<>(STANDARD);
        f.putAll(Map.of("rows", "buffer float keys, buffer float values", "key_entry", "", "key_elem", "let float kx = keys[((j * D) + c)];",
                "value_entry", "", "value_elem", "let float vx = values[((j * D) + c)];"));
        return KernelTemplates.module("decode_attention", constants(headDim, group, workGroup, chunk, 0), f);
    }

    /** Standard attention's visibility and score: causal by position, the scaled dot product. */
    static final Map<String, String> STANDARD = Map.of("visible", "let bool vis = ((attend[j] != 0) && (pos[j] <= qpos));",
            "score", "let bool hv = true;\nlet float l = (acc[h] * scale);");

    /** The decode template's constants for a shape. */
    static Map<String, Integer> constants(int headDim, int group, int workGroup, int chunk, int norm) {
        return Map.of("D", headDim, "G", group, "WG", workGroup, "LOGWG", KernelTemplates.log2(workGroup), "CH", chunk, "NORM", norm);
    }

    /** 64 work-items, or the largest power of two the device allows below that. */
    static int workGroup(long deviceMax) {
        int w = 64;
        while (w > deviceMax && w > 1) w >>= 1;
        return w;
    }

    @Override
    public void attend(KernelRows rows, float[] query, int qpos, BitSet attend, float[] outputs, float[] colSums) {
        int n = rows.size();
        if (n == 0) {
            java.util.Arrays.fill(outputs, 0, group * d, 0f);
            return;
        }
        reserve(n);
        int splits = (n + chunk - 1) / chunk;
        reserveSplits(splits);
        readRows(rows, n);
        int[] flags = new int[n];
        for (int j = 0; j < n; j++) flags[j] = attend == null || attend.get(j) ? 1 : 0;
        write(keys, keyRows, n * d);
        write(values, valueRows, n * d);
        write(pos, rows.positionTable(), n);
        write(attendFlags, flags, n);
        q.write(java.util.Arrays.copyOf(query, group * d));
        qposs.write(new int[] {qpos});
        partial.arg(0, q).arg(1, keys).arg(2, values).arg(3, pos).arg(4, attendFlags).arg(5, weights).arg(6, pm).arg(7, ps).arg(8, po)
                .arg(9, qposs).arg(10, n).arg(11, (float) (1.0 / Math.sqrt(d))).arg(12, 0);
        partial.launch(new long[] {(long) splits * wg, 1}, new long[] {wg, 1});
        merge.arg(0, pm).arg(1, ps).arg(2, po).arg(3, out).arg(4, mstar).arg(5, sinv).arg(6, splits);
        merge.launch(new long[] {(long) group * wg}, new long[] {wg});
        if (colSums != null) {
            write(col, colSums, n);
            colsums.arg(0, weights).arg(1, pm).arg(2, mstar).arg(3, sinv).arg(4, col).arg(5, n).arg(6, splits).arg(7, group);
            colsums.launch(new long[] {((n + wg - 1) / wg) * (long) wg}, new long[] {wg});
        }
        float[] o = new float[group * d];
        out.read(o);
        System.arraycopy(o, 0, outputs, 0, group * d);
        if (colSums != null) {
            float[] c = new float[n];
            col.read(c);
            System.arraycopy(c, 0, colSums, 0, n);
        }
    }

    /** Every entry's key and value row, as f32, entry {@code j}'s at {@code j * d}. */
    private void readRows(KernelRows rows, int n) {
        if (keyRows.length < n * d) {
            keyRows = new float[Math.max(n, keyRows.length / Math.max(1, d) * 2) * d];
            valueRows = new float[keyRows.length];
        }
        if (rows instanceof Lane lane) {
            for (int j = 0; j < n; j++) {
                lane.read(j, Lane.Part.KEYS, keyRows, j * d);
                lane.read(j, Lane.Part.VALUES, valueRows, j * d);
            }
            return;
        }
        // rows of f32 chains read in place (DenseRows and the like)
        int[] slots = rows.slotTable(), chains = rows.chainTable();
        int perPage = rows.rowsPerPage();
        for (int j = 0; j < n; j++) {
            for (int part = 0; part < 2; part++) {
                int c = chains[2 * j + part], s = slots[2 * j + part];
                if (rows.chainSpec(c).precision() != Precision.F32) throw new UnsupportedOperationException("rows of " + rows.chainSpec(c) + " outside a lane");
                MemorySegment page = rows.chainPages(c)[s / perPage];
                MemorySegment.copy(page, ValueLayout.JAVA_FLOAT, (long) (s % perPage) * d * 4, part == 0 ? keyRows : valueRows, j * d, d);
            }
        }
    }

    private void reserve(int n) {
        if (n <= capacity) return;
        int c = Math.max(n, Math.max(256, capacity * 2));
        for (ClContext.Buffer b : new ClContext.Buffer[] {keys, values, pos, attendFlags, weights, col}) if (b != null) b.free();
        keys = cl.buffer(4L * c * d, "key rows");
        values = cl.buffer(4L * c * d, "value rows");
        pos = cl.buffer(4L * c, "positions");
        attendFlags = cl.buffer(4L * c, "the attend set");
        weights = cl.buffer(4L * c * group, "attention weights");
        col = cl.buffer(4L * c, "column sums");
        capacity = c;
    }

    private void reserveSplits(int splits) {
        if (splits <= splitCapacity) return;
        for (ClContext.Buffer b : new ClContext.Buffer[] {pm, ps, po}) if (b != null) b.free();
        pm = cl.buffer(4L * splits * group, "split maxima");
        ps = cl.buffer(4L * splits * group, "split sums");
        po = cl.buffer(4L * splits * group * d, "split outputs");
        splitCapacity = splits;
    }

    private static void write(ClContext.Buffer b, float[] src, int count) {
        try (java.lang.foreign.Arena a = java.lang.foreign.Arena.ofConfined()) {
            MemorySegment s = a.allocate(ValueLayout.JAVA_FLOAT, count);
            MemorySegment.copy(src, 0, s, ValueLayout.JAVA_FLOAT, 0, count);
            b.write(0, s);
        }
    }

    private static void write(ClContext.Buffer b, int[] src, int count) {
        try (java.lang.foreign.Arena a = java.lang.foreign.Arena.ofConfined()) {
            MemorySegment s = a.allocate(ValueLayout.JAVA_INT, count);
            MemorySegment.copy(src, 0, s, ValueLayout.JAVA_INT, 0, count);
            b.write(0, s);
        }
    }
}
