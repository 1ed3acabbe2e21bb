package dev.kvpc.gpu.kernels;

import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.gpu.cl.DeviceArrays;
import dev.kvpc.gpu.emit.CEmitter;
import dev.kvpc.gpu.emit.Dialect;
import dev.kvpc.gpu.kir.KirModule;
import dev.kvpc.gpu.lane.DeviceLane;
import dev.kvpc.gpu.lane.DeviceLanes;
import dev.kvpc.runtime.Rope;
import dev.kvpc.runtime.engine.HostArrays;
import dev.kvpc.runtime.engine.RowWriter;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;

import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes rows where the lanes are kept on the device ({@link DeviceLanes}). It appends a step's keys and values from
 * the device's copies of the engine's arrays ({@link DeviceArrays}), so neither crosses to the host
 * ({@code append_rows.kir}): keys rotated by RoPE at their positions and both stored in the lanes' host format (f32 or
 * f16), as the runtime's {@code Lane.append} writes them. As the lanes' {@link #source}, it also moves rows (an
 * eviction's compaction), re-stores them at other per-token formats ({@code convert_row.kir}), merges them and packs
 * KIVI's blocks ({@link DeviceMerge}) there, each as the runtime's codecs and rules do it; the host's pages get those
 * rows back only when the host reads them.
 */
public final class DeviceRowWriter implements RowWriter {
    private final ClContext cl;
    private final DeviceLanes lanes;
    private final Object lock;
    private final Map<Integer, ClContext.Kernel> kernels = new HashMap<>();
    private final DeviceRope rope;
    private ClContext.Buffer cs;
    private long launches, rowsWritten;
    /** Buffers for each call's small tables, kept between calls (the writer's calls are serialised). */
    private final ClContext.Buffer[] scratch = new ClContext.Buffer[6];
    private final Lane.PageSource source;

    /** A writer into {@code lanes}, its calls serialised on {@code lock} (the lanes' other users' lock). */
    public DeviceRowWriter(ClContext cl, DeviceLanes lanes, Object lock) {
        this.cl = cl;
        this.lanes = lanes;
        this.lock = lock;
        this.rope = DeviceRope.doubles(cl);
        this.source = new Lane.PageSource() {
            @Override
            public void fill(Lane lane, int chain, int page, java.lang.foreign.MemorySegment into) {
                synchronized (lock) {
                    lanes.fill(lane, chain, page, into);
                }
            }

            @Override
            public boolean move(Lane lane, int chain, int fromPage, long fromOffset, int toPage, long toOffset, long bytes) {
                synchronized (lock) {
                    lanes.move(lane, chain, fromPage, fromOffset, toPage, toOffset, bytes);
                }
                return true;
            }

            @Override
            public boolean converts(Lane lane, QuantSpec from, QuantSpec to) {
                // the divisions in double, as the host's codecs divide
                return cl.device().fp64() && DeviceRowWriter.converts(from, to, lane.headDim());
            }

            @Override
            public void convert(Lane lane, int fromChain, int fromSlot, int toChain, int toSlot) {
                synchronized (lock) {
                    DeviceRowWriter.this.convert(lane, fromChain, fromSlot, toChain, toSlot);
                }
            }

            @Override
            public int[] merge(Lane lane, int[] sources, int[] dests, int by, double[] weights) {
                synchronized (lock) {
                    return DeviceRowWriter.this.merge(lane, sources, dests, by, weights);
                }
            }

            @Override
            public boolean packs(Lane lane, Lane.Part part, int[] entries, QuantSpec spec) {
                if (!cl.device().fp64() || spec.axis() != QuantSpec.Axis.CHANNEL) return false;
                // f16 parameters at even bytes of every block
                long rowCode = spec.precision().packedBytes(lane.headDim());
                return (spec.group() * rowCode) % 2 == 0;
            }

            @Override
            public void pack(Lane lane, Lane.Part part, int[] entries, int chain, int block) {
                synchronized (lock) {
                    DeviceRowWriter.this.pack(lane, part, entries, chain, block);
                }
            }
        };
    }

    /** The kernel for pages of {@code spec}'s precision (F32 or F16), as kernel IR. */
    public static KirModule module(Precision p, int headDim) {
        String pages = switch (p) {
            case F32 -> "out buffer float pages";
            case F16 -> "out buffer half pages";
            default -> throw new IllegalArgumentException("rows are appended on the device in f32 or f16, not " + p);
        };
        return KernelTemplates.module("append_rows", Map.of("D", headDim), Map.of("pages", pages, "rotate", DeviceRope.ROTATE));
    }

    /**
     * The kernel that re-stores a row of {@code from} at {@code to} (both per token; {@code to} a float precision or
     * integer codes per token group), as kernel IR; {@code shared}: source and destination pages are one buffer.
     */
    public static KirModule convertModule(QuantSpec from, QuantSpec to, int headDim, boolean shared) {
        String params = shared ? "out buffer uchar rb0, out buffer float rf0, out buffer half rh0"
                : "buffer uchar rb0, buffer float rf0, buffer half rh0, out buffer uchar db0, out buffer float df0, out buffer half dh0";
        String b = shared ? "rb0" : "db0", f = shared ? "rf0" : "df0", h = shared ? "rh0" : "dh0";
        return KernelTemplates.module("convert_row", Map.of("D", headDim), Map.of("params", params,
                "read", RowFormats.element("r", "x", java.util.List.of(from), headDim), "write", store(to, headDim, b, f, h)));
    }

    /**
     * Statements that write the row {@code xs} at byte {@code dst} as the runtime's codec of {@code to} writes it:
     * floats as they are, halves rounded to nearest even ({@code Float.floatToFloat16}), or per group of channels an
     * f16 zero point (the minimum) and scale ({@code (max - zero) / levels}), then the codes
     * ({@code round((x - zero) / scale)} clamped to the levels; 0 for a zero or non-finite scale), lowest bits first:
     * {@code TokenGroupCodec.write}'s arithmetic, each division in double, rounded to float (the float quotient, as
     * Java's), since OpenCL's float division need not round correctly.
     */
    static String store(QuantSpec to, int d, String b, String f, String h) {
        if (!to.quantised()) {
            return switch (to.precision()) {
                case F32 -> "for zc = 0 to D step 1 {\n  store " + f + "[((dst >> 2) + zc)] = xs[zc];\n}\n";
                case F16 -> "for zc = 0 to D step 1 {\n  store " + h + "[((dst >> 1) + zc)] = xs[zc];\n}\n";
                default -> throw new IllegalArgumentException("rows are re-stored on the device at f32, f16 or integers per token, not " + to);
            };
        }
        if (to.axis() != QuantSpec.Axis.TOKEN) throw new IllegalArgumentException("blocks per channel are packed by the host: " + to);
        int bits = to.precision().bits(), group = to.group(), groups = d / group, levels = (1 << bits) - 1, per = 8 / bits;
        StringBuilder sb = new StringBuilder();
        sb.append("for zg = 0 to ").append(groups).append(" step 1 {\n");
        sb.append("  let float zmn = inf;\n  let float zmx = -inf;\n");
        sb.append("  for zi = 0 to ").append(group).append(" step 1 {\n");
        sb.append("    let float zv = xs[((zg * ").append(group).append(") + zi)];\n");
        sb.append(range("zv"));
        sb.append("  }\n");
        sb.append("  let int zh = ((dst + (4 * zg)) >> 1);\n");
        sb.append(params(h, levels));
        sb.append("  for zi = 0 to ").append(group).append(" step 1 {\n");
        sb.append("    let int zc = ((zg * ").append(group).append(") + zi);\n");
        sb.append(code(h, "xs[zc]", "zc", levels));
        sb.append("  }\n}\n");
        sb.append("for zk = 0 to ").append(d * bits / 8).append(" step 1 {\n  let int zbyte = 0;\n");
        sb.append("  for zj = 0 to ").append(per).append(" step 1 {\n");
        sb.append("    zbyte = (zbyte | (codes[((zk * ").append(per).append(") + zj)] << (zj * ").append(bits).append(")));\n  }\n");
        sb.append("  store ").append(b).append("[((dst + ").append(4 * groups).append(") + zk)] = zbyte;\n}\n");
        return sb.toString();
    }

    // ---- a quantiser's arithmetic (TokenGroupCodec.write, ChannelBlockCodec.quantise), written once for both ----

    /** Statements that widen {@code zmn} and {@code zmx} to take {@code x}: Math.min and Math.max (signed zeros, NaN). */
    static String range(String x) {
        return "    zmn = " + ScalarFns.FLOAT.fn2(dev.kvpc.ir.Op.Fn2.MIN, "zmn", x) + ";\n    zmx = " + ScalarFns.FLOAT.fn2(dev.kvpc.ir.Op.Fn2.MAX, "zmx", x) + ";\n";
    }

    /**
     * Statements that store the f16 zero point (the minimum, rounded to nearest even) and scale ({@code (max - zero) /
     * levels}, the division in double rounded to float: Java's float quotient) at halves {@code zh} and {@code zh + 1}
     * of {@code h}.
     */
    static String params(String h, int levels) {
        return "  store " + h + "[zh] = zmn;\n  let float zzero = " + h + "[zh];\n  store " + h + "[(zh + 1)] = float((double((zmx - zzero)) / " + levels
                + ".0d));\n";
    }

    /**
     * Statements that store into {@code codes[at]} the code of {@code x} under the zero point and scale at halves
     * {@code zh} and {@code zh + 1} of {@code h}: {@code round((x - zero) / scale)} (Math.round's ties upward; a
     * negative quotient rounds to at most 0) clamped to the levels, 0 where the scale is zero or not finite.
     */
    static String code(String h, String x, String at, int levels) {
        return "    let float zcz = " + h + "[zh];\n    let float zcs = " + h + "[(zh + 1)];\n"
                + "    let bool zcf = (((zcs == 0.0f) || (fabs(zcs) == inf)) || (zcs != zcs));\n"
                + "    let float zq = float((double((" + x + " - zcz)) / double(zcs)));\n"
                + "    let float zr = trunc(zq);\n"
                + "    let int zk = select((zq < 0.0f), 0, (int(zr) + select(((zq - zr) >= 0.5f), 1, 0)));\n"
                + "    store codes[" + at + "] = select(zcf, 0, imax(0, imin(" + levels + ", zk)));\n";
    }

    /** Whether {@link #convertModule} re-stores rows of {@code from} at {@code to} (rows of {@code headDim}). */
    static boolean converts(QuantSpec from, QuantSpec to, int headDim) {
        if (from.quantised() && from.axis() != QuantSpec.Axis.TOKEN) return false;
        if (!to.quantised()) return to.precision() == Precision.F32 || to.precision() == Precision.F16;
        if (to.axis() != QuantSpec.Axis.TOKEN) return false;
        int bits = to.precision().bits();
        // whole bytes of codes a group, and f16 parameters on even bytes
        return (to.group() * bits) % 8 == 0 && (headDim * bits) % 16 == 0;
    }

    private record ConvertKey(QuantSpec from, QuantSpec to, int headDim, boolean shared) {
    }

    private final Map<ConvertKey, ClContext.Kernel> converters = new HashMap<>();
    private long converted;

    /** Re-stores a row on the device (under the lock): the lane's copy brought up to date, then one work-item's kernel. */
    private void convert(Lane lane, int fromChain, int fromSlot, int toChain, int toSlot) {
        long sentBefore = lanes.pagesSent();
        DeviceLane dl = lanes.sync(lane);
        int d = lane.headDim(), rpp = lane.rowsPerPage();
        QuantSpec from = lane.chainSpec(fromChain), to = lane.chainSpec(toChain);
        DeviceLane.Chain src = dl.chain(fromChain), dst = dl.chain(toChain);
        long so = (long) src.deviceSlot(fromSlot / rpp) * src.pages().pageBytes() + (fromSlot % rpp) * dev.kvpc.runtime.store.RowCodec.of(from, d).rowBytes();
        long dOff = (long) dst.deviceSlot(toSlot / rpp) * dst.pages().pageBytes() + (toSlot % rpp) * dev.kvpc.runtime.store.RowCodec.of(to, d).rowBytes();
        ClContext.Buffer sb = src.pages().buffer(), db = dst.pages().buffer();
        boolean shared = sb == db;
        ClContext.Kernel k = converters.computeIfAbsent(new ConvertKey(from, to, d, shared), key -> cl.build(CEmitter.emit(convertModule(from, to, d, shared),
                Dialect.OPENCL), "-cl-std=CL1.2", "re-storing rows of " + from + " at " + to).kernel("convert_row"));
        int arg = 0;
        k.arg(arg++, sb).arg(arg++, sb).arg(arg++, sb);
        if (!shared) k.arg(arg++, db).arg(arg++, db).arg(arg++, db);
        k.arg(arg++, Math.toIntExact(so)).arg(arg, Math.toIntExact(dOff));
        k.launch(new long[] {1}, null);
        converted++;
        if (lanes.pagesSent() != sentBefore) cl.finish();
    }

    private record MergeKey(List<QuantSpec> chains, List<Integer> buffers, int rowsPerPage, int headDim, DeviceMerge.By by) {
    }

    private final Map<MergeKey, ClContext.Kernel> mergers = new HashMap<>();
    private long merged;
    private static final int MERGE_GROUP = 64;

    /** A merge on the device (under the lock), or null where the lane's formats are not all read and written here. */
    private int[] merge(Lane lane, int[] sources, int[] dests, int by, double[] weights) {
        int d = lane.headDim(), n = lane.chainCount(), entries = lane.size();
        List<QuantSpec> specs = new java.util.ArrayList<>(n);
        for (int c = 0; c < n; c++) specs.add(lane.chainSpec(c));
        // in double, as the host merges
        if (!cl.device().fp64() || !DeviceMerge.handles(specs, d)) return null;
        if (sources.length == 0) return new int[0];
        int wg = Math.min(MERGE_GROUP, Integer.highestOneBit((int) Math.min(Integer.MAX_VALUE, cl.device().maxWorkGroupSize())));
        DeviceLane dl = lanes.sync(lane);
        int[] buffer = buffers(dl, n);
        DeviceMerge.By how = DeviceMerge.By.values()[by];
        ClContext.Kernel k = mergers.computeIfAbsent(new MergeKey(List.copyOf(specs), java.util.Arrays.stream(buffer).boxed().toList(), lane.rowsPerPage(), d, how),
                key -> cl.build(CEmitter.emit(DeviceMerge.module(d, wg, specs, buffer, lane.rowsPerPage(), how), Dialect.OPENCL), "-cl-std=CL1.2",
                        "merging rows (" + how + ", chains " + specs + ")").kernel("merge_rows"));
        double[] counts = new double[entries];
        for (int i = 0; i < entries; i++) counts[i] = lane.count(i);
        ClContext.Buffer[] tmp = {scratch(0, 4L * sources.length, "merge sources"), scratch(1, 4L * dests.length, "merge destinations"),
            scratch(2, 8L * weights.length, "merge weights"), scratch(3, 8L * entries, "entry counts"), scratch(4, 4L * sources.length, "merge choices")};
        try (Arena a = Arena.ofConfined()) {
            DeviceLane.Tables t = dl.tables(lane, null, a);
            tmp[0].write(sources);
            if (dests.length > 0) tmp[1].write(dests);
            if (weights.length > 0) tmp[2].write(weights);
            if (entries > 0) tmp[3].write(counts);
            int arg = bindChains(k, dl, n, buffer, tmp[0]);
            k.arg(arg++, t.slots()).arg(arg++, t.chains()).arg(arg++, t.positions());
            k.arg(arg++, tmp[0]).arg(arg++, tmp[1]).arg(arg++, tmp[2]).arg(arg++, tmp[3]).arg(arg++, tmp[4]).arg(arg++, sources.length).arg(arg, dests.length);
            k.launch(new long[] {wg}, new long[] {wg});
            int[] best = new int[sources.length];
            try (Arena r = Arena.ofConfined()) {
                java.lang.foreign.MemorySegment seg = r.allocate(ValueLayout.JAVA_INT, sources.length);
                tmp[4].read(0, seg);
                java.lang.foreign.MemorySegment.copy(seg, ValueLayout.JAVA_INT, 0, best, 0, sources.length);
            }
            merged += sources.length;
            return best;
        }
    }

    /** Scratch buffer {@code i}, at least {@code bytes} long: kept, and grown by doubling. */
    private ClContext.Buffer scratch(int i, long bytes, String what) {
        ClContext.Buffer b = scratch[i];
        if (b == null || b.bytes() < bytes) {
            long size = Math.max(Math.max(bytes, 1024), b == null ? 0 : 2 * b.bytes());
            if (b != null) b.free();
            b = scratch[i] = cl.buffer(size, what);
        }
        return b;
    }

    /**
     * Binds a lane's chains ({@link DeviceMerge#params}: the views of each distinct buffer, each chain's page table) from
     * parameter 0; a chain holding no page yet is never read, and {@code any} stands in for its table. Returns the next
     * parameter's index.
     */
    private static int bindChains(ClContext.Kernel k, DeviceLane dl, int n, int[] buffer, ClContext.Buffer any) {
        int arg = 0;
        for (int c = 0; c < n; c++) {
            DeviceLane.Chain ch = dl.chain(c);
            if (buffer[c] == c) k.arg(arg++, ch.pages().buffer()).arg(arg++, ch.pages().buffer()).arg(arg++, ch.pages().buffer());
            k.arg(arg++, ch.table() != null ? ch.table() : any);
        }
        return arg;
    }

    private record PackKey(List<QuantSpec> chains, List<Integer> buffers, int rowsPerPage, int headDim, int part, int target) {
    }

    private final Map<PackKey, ClContext.Kernel> packers = new HashMap<>();
    private long packed;

    /** The distinct device buffers of a lane's chains: chain {@code c} uses the views of chain {@code buffer[c]}. */
    private static int[] buffers(DeviceLane dl, int n) {
        int[] buffer = new int[n];
        for (int c = 0; c < n; c++) {
            buffer[c] = c;
            for (int o = 0; o < c; o++) {
                if (dl.chain(o).pages().buffer() == dl.chain(c).pages().buffer()) {
                    buffer[c] = buffer[o];
                    break;
                }
            }
        }
        return buffer;
    }

    /** Packs a block per channel on the device (under the lock), from the entries' rows as the device holds them. */
    private void pack(Lane lane, Lane.Part part, int[] entries, int chain, int block) {
        int d = lane.headDim(), n = lane.chainCount();
        List<QuantSpec> specs = new java.util.ArrayList<>(n);
        for (int c = 0; c < n; c++) specs.add(lane.chainSpec(c));
        DeviceLane dl = lanes.sync(lane);
        int[] buffer = buffers(dl, n);
        ClContext.Kernel k = packers.computeIfAbsent(new PackKey(List.copyOf(specs), java.util.Arrays.stream(buffer).boxed().toList(), lane.rowsPerPage(), d,
                part.ordinal(), chain), key -> cl.build(CEmitter.emit(DeviceMerge.packModule(d, specs, buffer, lane.rowsPerPage(), part.ordinal(),
                specs.get(chain), chain), Dialect.OPENCL), "-cl-std=CL1.2", "packing blocks of " + specs.get(chain)).kernel("pack_block"));
        DeviceLane.Chain target = dl.chain(chain);
        long dst = (long) target.deviceSlot(block) * target.pages().pageBytes();
        ClContext.Buffer list = scratch(0, 4L * entries.length, "a block's entries");
        try (Arena a = Arena.ofConfined()) {
            DeviceLane.Tables t = dl.tables(lane, null, a);
            list.write(entries);
            int arg = bindChains(k, dl, n, buffer, list);
            k.arg(arg++, t.slots()).arg(arg++, t.chains()).arg(arg++, list).arg(arg, Math.toIntExact(dst));
            k.launch(new long[] {1}, null);
            // the tables were sent queued from this arena
            cl.finish();
        }
        packed++;
    }

    /** Blocks packed on the device so far. */
    public long blocksPacked() {
        synchronized (lock) {
            return packed;
        }
    }

    /** Sources merged on the device so far. */
    public long rowsMerged() {
        synchronized (lock) {
            return merged;
        }
    }

    /** Rows re-stored at another format on the device so far. */
    public long rowsConverted() {
        synchronized (lock) {
            return converted;
        }
    }

    @Override
    public boolean writes(QuantSpec spec, int headDim, Rope rope, float[] keys, float[] values, HostArrays arrays, int lastPosition) {
        if (spec.quantised() || (spec.precision() != Precision.F32 && spec.precision() != Precision.F16) || headDim % 2 != 0) return false;
        // RoPE in double, as the runtime rotates, from its table of cosines and sines (which ends somewhere)
        if (!cl.device().fp64()) return false;
        if (rope != null && !DeviceRope.covers(rope, headDim, lastPosition + 1)) return false;
        DeviceArrays a = cl.arrays();
        return a.holds(keys) && a.holds(values);
    }

    @Override
    public Lane.PageSource source() {
        return source;
    }

    @Override
    public void write(Lane[] ls, int[][] entries, float[] keys, float[] values, Rope ropeOf, int firstPosition, boolean[] rotate) {
        synchronized (lock) {
            int g = ls.length, tokens = entries[0].length, d = ls[0].headDim(), rpp = ls[0].rowsPerPage();
            long sentBefore = lanes.pagesSent();
            DeviceLane[] dl = new DeviceLane[g];
            // every lane's pages on the device first (a pool that grows moves to a new buffer; slots stay)
            for (int h = 0; h < g; h++) dl[h] = lanes.sync(ls[h]);
            boolean anyRotated = false;
            for (boolean x : rotate) anyRotated |= x;
            if (anyRotated) cs = rope.table(ropeOf, d, firstPosition + tokens);
            for (Lane.Part part : Lane.Part.values()) {
                int[] rows = new int[3 * g * tokens];
                ClContext.Buffer pages = null;
                QuantSpec spec = null;
                for (int h = 0; h < g; h++) {
                    int[] slots = ls[h].slotTable(), chains = ls[h].chainTable();
                    for (int t = 0; t < tokens; t++) {
                        int idx = 2 * entries[h][t] + part.ordinal(), r = t * g + h;
                        DeviceLane.Chain ch = dl[h].chain(chains[idx]);
                        QuantSpec s = ls[h].chainSpec(chains[idx]);
                        if (spec == null) {
                            spec = s;
                            pages = ch.pages().buffer();
                        } else if (!spec.equals(s) || pages != ch.pages().buffer()) {
                            throw new IllegalStateException("appended rows of one step in two formats: " + spec + " and " + s);
                        }
                        int elem = s.precision() == Precision.F32 ? 4 : 2, slot = slots[idx];
                        long at = (long) ch.deviceSlot(slot / rpp) * ch.pages().pageBytes() + (long) (slot % rpp) * d * elem;
                        rows[3 * r] = r * d;
                        rows[3 * r + 1] = Math.toIntExact(at / elem);
                        rows[3 * r + 2] = part == Lane.Part.KEYS && rotate[h] ? firstPosition + t : -1;
                    }
                }
                launch(spec.precision(), d, pages, cl.arrays().read(part == Lane.Part.KEYS ? keys : values, tokens * g * d), rows, g * tokens);
            }
            rowsWritten += 2L * g * tokens;
            // pages were sent queued from the host's memory: they must be on the device before the host writes them again
            if (lanes.pagesSent() != sentBefore) cl.finish();
        }
    }

    private void launch(Precision p, int d, ClContext.Buffer pages, ClContext.Buffer src, int[] rows, int count) {
        ClContext.Kernel k = kernels.computeIfAbsent(p.ordinal() * 65536 + d, x -> cl.build(CEmitter.emit(module(p, d), Dialect.OPENCL), "-cl-std=CL1.2",
                "appending " + p + " rows of " + d + " channels").kernel("append_rows"));
        ClContext.Buffer table = scratch(5, 4L * rows.length, "appended rows' places");
        try (Arena a = Arena.ofConfined()) {
            table.write(0, a.allocateFrom(ValueLayout.JAVA_INT, rows));
        }
        // a buffer stands in for the rotation table where no row is rotated
        k.arg(0, pages).arg(1, src).arg(2, table).arg(3, cs != null ? cs : table).arg(4, count);
        long items = (long) count * (d / 2);
        k.launch(new long[] {items}, null);
        launches++;
    }

    /** Kernel launches so far (two a layer and step: keys, values). */
    public long launches() {
        synchronized (lock) {
            return launches;
        }
    }

    /** Pages brought back to the host so far (it read rows written here), and rows moved here within their chains. */
    public long pagesFilled() {
        return lanes.pagesFilled();
    }

    public long rowsMoved() {
        return lanes.rowsMoved();
    }

    /** Rows written on the device so far. */
    public long rowsWritten() {
        synchronized (lock) {
            return rowsWritten;
        }
    }
}
