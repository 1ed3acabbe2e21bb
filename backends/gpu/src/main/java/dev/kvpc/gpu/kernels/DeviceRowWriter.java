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
import java.util.Map;

/**
 * Appends a step's keys and values to lanes kept on the device ({@link DeviceLanes}) from the device's copies of the
 * engine's arrays ({@link DeviceArrays}), so neither crosses to the host ({@code append_rows.kir}): keys rotated by
 * RoPE at their positions and both stored in the lanes' host format (f32 or f16), as the runtime's {@code Lane.append}
 * writes them. The host's pages get those rows back only when the host reads them ({@link #source}).
 */
public final class DeviceRowWriter implements RowWriter {
    private final ClContext cl;
    private final DeviceLanes lanes;
    private final Object lock;
    private final Map<Integer, ClContext.Kernel> kernels = new HashMap<>();
    private final DeviceRope rope;
    private ClContext.Buffer cs;
    private ClContext.Buffer table;
    private long launches, rowsWritten;
    private final Lane.PageSource source;

    /** A writer into {@code lanes}, its calls serialised on {@code lock} (the lanes' other users' lock). */
    public DeviceRowWriter(ClContext cl, DeviceLanes lanes, Object lock) {
        this.cl = cl;
        this.lanes = lanes;
        this.lock = lock;
        this.rope = new DeviceRope(cl);
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
        if (table == null || table.bytes() < 4L * rows.length) {
            if (table != null) table.free();
            table = cl.buffer(Math.max(4L * rows.length, 4096), "appended rows' places");
        }
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

    /** Pages brought back to the host so far (it read rows written here), and rows moved here (evictions). */
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
