package dev.kvpc.gpu;

import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.gpu.emit.CEmitter;
import dev.kvpc.gpu.emit.Dialect;
import dev.kvpc.gpu.kernels.DecodeAttention;
import dev.kvpc.runtime.engine.DecodeKernel;
import dev.kvpc.runtime.lane.KernelRows;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.store.Precision;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.BitSet;

/**
 * The dense-row form of decode attention ({@link DecodeAttention#module}) run on OpenCL the way
 * {@code benchmarks/gpu/decode_attention.py} runs its CUDA text: each call sends the lane's rows as f32 arrays indexed
 * by entry (as {@link Lane#read} gives them), the positions, the attend set and the query, launches the three kernels
 * over the same ranges, and reads back the outputs and column sums. Hosts do not use it (they keep lanes on the
 * device); it holds the kernels the GPU script runs to the runtime's meaning.
 */
final class DenseDecodeRunner implements DecodeKernel {
    private final ClContext cl;
    private final int d, group, wg, chunk;
    private final ClContext.Kernel partial, merge, colsums;
    private ClContext.Buffer q, keys, values, pos, attendFlags, weights, pm, ps, po, out, mstar, sinv, col, qposs;
    private int capacity = -1, splitCapacity = -1;
    private float[] keyRows = new float[0], valueRows = new float[0];

    DenseDecodeRunner(ClContext cl, int headDim, int group) {
        this.cl = cl;
        this.d = headDim;
        this.group = group;
        DecodeAttention.Geometry geo = DecodeAttention.Geometry.of(headDim, group, cl.device().maxWorkGroupSize());
        if (geo == null) throw new UnsupportedOperationException("no work-group geometry fits head dim " + headDim + " and group " + group + " in local memory");
        this.wg = geo.workGroup();
        this.chunk = geo.chunk();
        String source = CEmitter.emit(DecodeAttention.module(headDim, group, wg, chunk), Dialect.OPENCL);
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
