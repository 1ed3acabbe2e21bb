package dev.kvpc.gpu.kernels;

import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.gpu.emit.CEmitter;
import dev.kvpc.gpu.emit.Dialect;
import dev.kvpc.gpu.kir.KirModule;
import dev.kvpc.gpu.lane.DeviceLane;
import dev.kvpc.gpu.lane.DeviceLanes;
import dev.kvpc.runtime.engine.DecodeKernel;
import dev.kvpc.runtime.lane.KernelRows;
import dev.kvpc.runtime.store.QuantSpec;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Decode attention over lanes kept on the device ({@link DeviceLane}): the rows are read in place from device pages
 * in the runtime's own formats ({@link RowFormats}), so a step sends the device only the pages that changed, the
 * query, and the lane's tables (slots, chains, positions, the attend set: a few bytes per entry). The kernels are
 * {@code decode_attention.kir} with the row-reading fragments for the lane's list of chain formats, built once per
 * list. A lane no longer referenced by the runtime gives its device pages back.
 */
public final class ResidentDecodeKernel implements DecodeKernel {
    private final ClContext cl;
    private final int d, group, wg, chunk, tile;
    private final DeviceLanes lanes;
    private final Map<Shape, Programs> programs = new HashMap<>();
    private ClContext.Buffer q, qposs, out, mstar, sinv, weights, pm, ps, po, col;
    private int capacity = -1, splitCapacity = -1, queryCapacity = 0;

    /** A program's lane formats, and the query positions each of its work-groups takes. */
    private record Shape(List<QuantSpec> chains, int rowsPerPage, boolean rotate, int tile, boolean inPlace) {
    }

    /** Query positions a prefill's work-group takes (each row read once for all of them), where local memory allows. */
    static final int TILE = 4;

    /** The cosines and sines keys are rotated by, on the device: position p's at {@code p * d} (pairs: cosine, sine). */
    private final DeviceRope keyRope;

    private record Programs(ClContext.Kernel partial, ClContext.Kernel merge, ClContext.Kernel colsums, int tile, int workGroup, int chunk) {
    }

    private final dev.kvpc.ir.AttentionIr variant;
    private final dev.kvpc.ir.LaneShape shape;

    /** A kernel reading lanes kept in {@code lanes} (shared by every kernel of the device). */
    public ResidentDecodeKernel(ClContext cl, int headDim, int group, DeviceLanes lanes) {
        this(cl, headDim, group, lanes, null, null);
    }

    /** As above, under an attention variant ({@code variant} null: standard attention), for a model of {@code shape}. */
    public ResidentDecodeKernel(ClContext cl, int headDim, int group, DeviceLanes lanes, dev.kvpc.ir.AttentionIr variant, dev.kvpc.ir.LaneShape shape) {
        this(cl, headDim, group, lanes, variant, shape, TILE);
    }

    /** As above, a prefill's work-groups taking at most {@code maxTile} query positions (1: one each; benchmarks compare). */
    public ResidentDecodeKernel(ClContext cl, int headDim, int group, DeviceLanes lanes, dev.kvpc.ir.AttentionIr variant, dev.kvpc.ir.LaneShape shape,
                                int maxTile) {
        this.variant = variant;
        this.shape = shape;
        this.cl = cl;
        this.keyRope = DeviceRope.floats(cl);
        this.d = headDim;
        this.group = group;
        DecodeAttention.Geometry geo = DecodeAttention.Geometry.of(headDim, group, cl.device().maxWorkGroupSize());
        if (geo == null) throw new UnsupportedOperationException("no work-group geometry fits head dim " + headDim + " and group " + group + " in local memory");
        this.wg = geo.workGroup();
        this.chunk = geo.chunk();
        this.lanes = lanes;
        // a prefill's tile: the most positions (up to TILE) whose rows and weights fit local memory with a split of at
        // least 64 entries
        int t = Math.max(1, Math.min(TILE, maxTile));
        while (t > 1) {
            DecodeAttention.Geometry g = DecodeAttention.Geometry.of(headDim, group * t, cl.device().maxWorkGroupSize());
            if (g != null && g.chunk() >= 64) break;
            t >>= 1;
        }
        this.tile = t;
    }

    /** The kernels for a lane's chain formats, as kernel IR. */
    public static KirModule module(int headDim, int group, int workGroup, int chunk, List<QuantSpec> chains, int rowsPerPage) {
        return module(headDim, group, workGroup, chunk, chains, rowsPerPage, false);
    }

    /** As above; with {@code rotate}, keys are rotated by their entry's index as they are read ({@code positions cache}). */
    public static KirModule module(int headDim, int group, int workGroup, int chunk, List<QuantSpec> chains, int rowsPerPage, boolean rotate) {
        return module(headDim, group, workGroup, chunk, chains, rowsPerPage, rotate, null, null);
    }

    /**
     * As above, under an attention variant ({@code variant} null: standard attention): its logit and mask per head
     * ({@link VariantLowering}) and its normalisation, for a model of {@code shape}.
     */
    public static KirModule module(int headDim, int group, int workGroup, int chunk, List<QuantSpec> chains, int rowsPerPage, boolean rotate,
                                   dev.kvpc.ir.AttentionIr variant, dev.kvpc.ir.LaneShape shape) {
        return module(headDim, group, 1, workGroup, chunk, chains, rowsPerPage, rotate, variant, shape);
    }

    /** As above, {@code tile} query positions per work-group. */
    public static KirModule module(int headDim, int group, int tile, int workGroup, int chunk, List<QuantSpec> chains, int rowsPerPage, boolean rotate,
                                   dev.kvpc.ir.AttentionIr variant, dev.kvpc.ir.LaneShape shape) {
        return module(headDim, group, tile, workGroup, chunk, chains, rowsPerPage, rotate, variant, shape, false);
    }

    /** As above; {@code inPlace}: queries and outputs in arrays of every head's ({@link DecodeAttention#IN_PLACE}). */
    public static KirModule module(int headDim, int group, int tile, int workGroup, int chunk, List<QuantSpec> chains, int rowsPerPage, boolean rotate,
                                   dev.kvpc.ir.AttentionIr variant, dev.kvpc.ir.LaneShape shape, boolean inPlace) {
        Map<String, String> f = new HashMap<>(inPlace ? DecodeAttention.IN_PLACE : DecodeAttention.COPIED);
        f.putAll(Map.of("rows", RowFormats.params(chains.size()) + (rotate ? ", buffer float rope" : ""),
                "key_entry", RowFormats.entry("k", 0, chains, headDim, rowsPerPage),
                "key_elem", rotate ? RowFormats.rotatedKey(chains, headDim) : RowFormats.element("k", "kx", chains, headDim),
                "value_entry", RowFormats.entry("v", 1, chains, headDim, rowsPerPage), "value_elem", RowFormats.element("v", "vx", chains, headDim)));
        int norm = 0;
        if (variant == null) {
            f.putAll(DecodeAttention.STANDARD);
        } else {
            f.put("visible", "let bool vis = (attend[j] != 0);");
            f.put("score", VariantLowering.score(variant, shape));
            norm = VariantLowering.norm(variant);
        }
        return KernelTemplates.module("decode_attention", DecodeAttention.constants(headDim, group, tile, workGroup, chunk, norm), f);
    }

    @Override
    public void attend(KernelRows rows, float[] query, int qpos, BitSet attend, float[] outputs, float[] colSums) {
        attend(rows, query, qpos, attend, outputs, colSums, null);
    }

    @Override
    public boolean rotatesKeysBySlot() {
        return true;
    }

    @Override
    public void attend(KernelRows rows, float[] query, int qpos, BitSet attend, float[] outputs, float[] colSums, dev.kvpc.runtime.Rope keysBySlot) {
        attend(rows, query, qpos, attend, outputs, colSums, keysBySlot, 0);
    }

    @Override
    public void attend(KernelRows rows, float[] query, int qpos, BitSet attend, float[] outputs, float[] colSums, dev.kvpc.runtime.Rope keysBySlot,
                       int firstHead) {
        attendAll(rows, query, new int[] {qpos}, attend, outputs, colSums, keysBySlot, firstHead);
    }

    /** Query positions run together, at most as many as keep the weights ({@code positions x group x entries}) at 2^25 floats. */
    @Override
    public void attendAll(KernelRows rows, float[] query, int[] qpos, BitSet attend, float[] outputs, float[] colSums, dev.kvpc.runtime.Rope keysBySlot,
                          int firstHead) {
        int n = rows.size(), gd = group * d;
        if (n == 0) {
            java.util.Arrays.fill(outputs, 0, qpos.length * gd, 0f);
            return;
        }
        // every transfer is queued, the staging memory living until the call's last read (a blocking one) returns
        try (Arena a = Arena.ofConfined()) {
            attendAll(a, rows, qpos, attend, colSums, keysBySlot, firstHead, new Batches() {
                @Override
                public void queries(Arena ar, int from, int tb, int tp) {
                    MemorySegment qs = ar.allocate(ValueLayout.JAVA_FLOAT, (long) tp * gd);
                    MemorySegment.copy(query, from * gd, qs, ValueLayout.JAVA_FLOAT, 0, tb * gd);
                    q.writeQueued(0, qs);
                }

                @Override
                public void outputs(Arena ar, int from, int tb) {
                    MemorySegment o = ar.allocate(ValueLayout.JAVA_FLOAT, (long) tb * gd);
                    out.read(0, o);
                    MemorySegment.copy(o, ValueLayout.JAVA_FLOAT, 0, outputs, from * gd, tb * gd);
                }

                @Override
                public int bindQueries(ClContext.Kernel partial) {
                    partial.arg(0, q);
                    return 1;
                }

                @Override
                public void bindOutputs(ClContext.Kernel merge, int from) {
                    merge.arg(3, out);
                }

                @Override
                public boolean inPlace() {
                    return false;
                }
            });
        }
    }

    /**
     * Where a call's queries come from and its outputs go, a batch of query positions at a time: {@link #queries} fills
     * the kernel's query buffer with positions {@code from .. from + tb - 1} (then the last again up to {@code tp}),
     * {@link #outputs} takes the outputs of positions {@code from .. from + tb - 1} from its output buffer.
     */
    private interface Batches {
        void queries(Arena a, int from, int tb, int tp);

        void outputs(Arena a, int from, int tb);

        /** Binds the partial kernel's query parameters (its first); returns the next parameter's index. */
        int bindQueries(ClContext.Kernel partial);

        /** Binds the merge kernel's output parameters for the batch from position {@code from}. */
        void bindOutputs(ClContext.Kernel merge, int from);

        /** Whether the kernels read queries from and write outputs into the host's arrays ({@link DecodeAttention#IN_PLACE}). */
        boolean inPlace();
    }

    /** The queries' RoPE table (for {@link #attendInPlace}), and their rows and rotations. */
    private DeviceRope queryRope;
    private ClContext.Buffer at;

    /**
     * In place: the kernels read the group's queries (rotating them as they load them) from the device's copy of the
     * host's array of every head's, and write the outputs into its copy of the host's output array
     * ({@link DecodeAttention#IN_PLACE}), so neither crosses; the rest as {@link #attendAll}.
     */
    @Override
    public boolean attendInPlace(KernelRows rows, float[] query, float[] outputs, int heads, int firstHead, int grp, int[] qpos, int[] queryAt,
                                 dev.kvpc.runtime.Rope rope, BitSet attend, float[] colSums, dev.kvpc.runtime.Rope keysBySlot,
                                 dev.kvpc.runtime.engine.HostArrays arrays) {
        dev.kvpc.gpu.cl.DeviceArrays da = cl.arrays();
        if (grp != group || !da.holds(query) || !cl.device().fp64() || rows.size() == 0) return false;
        int tokens = qpos.length, all = tokens * heads * d;
        if (queryRope == null) queryRope = DeviceRope.doubles(cl);
        ClContext.Buffer qd = da.read(query, all), od = da.write(outputs, all);
        ClContext.Buffer cs = null;
        if (queryAt != null) {
            int max = 0;
            for (int x : queryAt) max = Math.max(max, x);
            cs = queryRope.table(rope, d, max + 1);
        }
        ClContext.Buffer table = cs;
        // every batch's rows and rotations fit: a batch is at most the call's positions, rounded up to whole tiles
        long atBytes = 8L * (tokens + tile);
        if (at == null || at.bytes() < atBytes) {
            if (at != null) at.free();
            at = cl.buffer(Math.max(atBytes, 1024), "queries' rows and rotations");
        }
        try (Arena a = Arena.ofConfined()) {
            attendAll(a, rows, qpos, attend, colSums, keysBySlot, firstHead, new Batches() {
                @Override
                public void queries(Arena ar, int from, int tb, int tp) {
                    int[] ix = new int[2 * tp];
                    for (int i = 0; i < tp; i++) {
                        int t = from + Math.min(i, tb - 1);
                        ix[2 * i] = t;
                        ix[2 * i + 1] = queryAt == null ? -1 : queryAt[t];
                    }
                    at.writeQueued(0, ar.allocateFrom(ValueLayout.JAVA_INT, ix));
                }

                @Override
                public void outputs(Arena ar, int from, int tb) {
                }

                @Override
                public int bindQueries(ClContext.Kernel partial) {
                    partial.arg(0, qd).arg(1, at).arg(2, table != null ? table : qd).arg(3, heads);
                    return 4;
                }

                @Override
                public void bindOutputs(ClContext.Kernel merge, int from) {
                    merge.arg(3, od).arg(7, heads).arg(8, firstHead).arg(9, from);
                }

                @Override
                public boolean inPlace() {
                    return true;
                }
            });
            // the staged tables are queued: they live until the queue has taken them
            if (colSums == null) cl.finish();
        }
        return true;
    }

    private void attendAll(Arena a, KernelRows rows, int[] qpos, BitSet attend, float[] colSums, dev.kvpc.runtime.Rope keysBySlot, int firstHead, Batches io) {
        int n = rows.size(), gd = group * d, chainsN = rows.chainCount(), rpp = rows.rowsPerPage();
        List<QuantSpec> specs = new ArrayList<>(chainsN);
        for (int c = 0; c < chainsN; c++) specs.add(rows.chainSpec(c));
        DeviceLane lane = lanes.sync(rows);
        Programs p = programs.computeIfAbsent(new Shape(List.copyOf(specs), rpp, keysBySlot != null, qpos.length > 1 ? tile : 1, io.inPlace()), this::build);
        ClContext.Buffer ropeTable = keysBySlot != null ? keyRope.table(keysBySlot, d, n) : null;
        // a batch is whole tiles: its last may repeat the last position (rows computed and not read)
        int tq = p.tile();
        int batch = (int) Math.max(1, Math.min(qpos.length, (1L << 25) / ((long) group * n)));
        batch = (batch + tq - 1) / tq * tq;
        int splits = (n + p.chunk() - 1) / p.chunk();
        reserve(n, batch, splits);
        // the lane's tables, sent where they changed; the column sums in
        DeviceLane.Tables tables = lane.tables(rows, attend, a);
        if (colSums != null) {
            MemorySegment cs = a.allocate(ValueLayout.JAVA_FLOAT, n);
            MemorySegment.copy(colSums, 0, cs, ValueLayout.JAVA_FLOAT, 0, n);
            col.writeQueued(0, cs);
        }
        ClContext.Kernel k = p.partial();
        int arg = io.bindQueries(k);
        for (int c = 0; c < chainsN; c++) {
            DeviceLane.Chain ch = lane.chain(c);
            // a chain holding no page yet is never read: any buffer stands in for it
            ClContext.Buffer pagesBuf = ch.pages() != null ? ch.pages().buffer() : q;
            ClContext.Buffer table = ch.table() != null ? ch.table() : q;
            k.arg(arg++, pagesBuf).arg(arg++, pagesBuf).arg(arg++, pagesBuf).arg(arg++, table);
        }
        k.arg(arg++, tables.slots()).arg(arg++, tables.chains());
        if (keysBySlot != null) k.arg(arg++, ropeTable);
        k.arg(arg++, tables.positions()).arg(arg++, tables.attend());
        k.arg(arg++, weights).arg(arg++, pm).arg(arg++, ps).arg(arg++, po).arg(arg++, qposs).arg(arg++, n).arg(arg++, (float) (1.0 / Math.sqrt(d)))
                .arg(arg, firstHead);
        int pwg = p.workGroup();
        for (int from = 0; from < qpos.length; from += batch) {
            int tb = Math.min(batch, qpos.length - from), tp = (tb + tq - 1) / tq * tq;
            {
                io.queries(a, from, tb, tp);
                int[] positions = java.util.Arrays.copyOfRange(qpos, from, from + tp);
                for (int i = tb; i < tp; i++) positions[i] = qpos[from + tb - 1];
                qposs.writeQueued(0, a.allocateFrom(ValueLayout.JAVA_INT, positions));
            }
            k.launch(new long[] {(long) splits * pwg, tp / tq}, new long[] {pwg, 1});
            p.merge().arg(0, pm).arg(1, ps).arg(2, po).arg(4, mstar).arg(5, sinv).arg(6, splits);
            io.bindOutputs(p.merge(), from);
            p.merge().launch(new long[] {(long) tb * group * pwg}, new long[] {pwg});
            if (colSums != null) {
                p.colsums().arg(0, weights).arg(1, pm).arg(2, mstar).arg(3, sinv).arg(4, col).arg(5, n).arg(6, splits).arg(7, tb * group);
                p.colsums().launch(new long[] {((n + pwg - 1) / pwg) * (long) pwg}, new long[] {pwg});
            }
            io.outputs(a, from, tb);
        }
        if (colSums != null) {
            MemorySegment cs = a.allocate(ValueLayout.JAVA_FLOAT, n);
            col.read(0, cs);
            MemorySegment.copy(cs, ValueLayout.JAVA_FLOAT, 0, colSums, 0, n);
        }
    }


    private Programs build(Shape s) {
        int w = wg, ch = chunk;
        if (s.tile() > 1) {
            DecodeAttention.Geometry geo = DecodeAttention.Geometry.of(d, group * s.tile(), cl.device().maxWorkGroupSize());
            w = geo.workGroup();
            ch = geo.chunk();
        }
        String src = CEmitter.emit(module(d, group, s.tile(), w, ch, s.chains(), s.rowsPerPage(), s.rotate(), variant, shape, s.inPlace()), Dialect.OPENCL);
        ClContext.Program p = cl.build(src, "-cl-std=CL1.2", "resident decode attention (head dim " + d + ", group " + group + ", " + s.tile()
                + " positions a work-group, chains " + s.chains() + ")");
        return new Programs(p.kernel("decode_partial"), p.kernel("decode_merge"), p.kernel("decode_colsums"), s.tile(), w, ch);
    }

    /** Buffers for {@code n} entries, {@code batch} query positions and {@code splits} splits. */
    private void reserve(int n, int batch, int splits) {
        if (n > capacity || batch > queryCapacity) {
            int c = Math.max(n, Math.max(256, n > capacity ? capacity * 2 : capacity));
            int qc = Math.max(batch, queryCapacity);
            for (ClContext.Buffer b : new ClContext.Buffer[] {weights, col}) if (b != null) b.free();
            weights = cl.buffer(4L * c * group * qc, "attention weights");
            col = cl.buffer(4L * c, "column sums");
            capacity = c;
        }
        if (batch > queryCapacity) {
            for (ClContext.Buffer b : new ClContext.Buffer[] {q, qposs, out, mstar, sinv}) if (b != null) b.free();
            q = cl.buffer(4L * batch * group * d, "queries");
            qposs = cl.buffer(4L * batch, "query positions");
            out = cl.buffer(4L * batch * group * d, "outputs");
            mstar = cl.buffer(4L * batch * group, "maxima");
            sinv = cl.buffer(4L * batch * group, "inverse sums");
            queryCapacity = batch;
            splitCapacity = -1;
        }
        if (splits > splitCapacity) {
            for (ClContext.Buffer b : new ClContext.Buffer[] {pm, ps, po}) if (b != null) b.free();
            pm = cl.buffer(4L * splits * group * queryCapacity, "split maxima");
            ps = cl.buffer(4L * splits * group * queryCapacity, "split sums");
            po = cl.buffer(4L * splits * group * queryCapacity * d, "split outputs");
            splitCapacity = splits;
        }
    }
}
