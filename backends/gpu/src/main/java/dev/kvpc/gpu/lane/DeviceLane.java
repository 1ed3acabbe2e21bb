package dev.kvpc.gpu.lane;

import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.runtime.lane.KernelRows;
import dev.kvpc.runtime.store.QuantSpec;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.LongFunction;

/**
 * One lane's rows on the device: each chain's pages, byte for byte as the runtime lays them out, in {@link DevicePages}
 * of the chain's page size, and a page table per chain (device slot of each host page). {@link #sync} brings it up
 * to date: a page is sent again only when its stamp ({@link KernelRows#chainPageStamps}) moved, so a decode step
 * that appended one row sends one page per lane, not the lane.
 */
public final class DeviceLane {
    private final ClContext cl;
    private final LongFunction<DevicePages> poolFor;
    private final List<Chain> chains = new ArrayList<>();
    private long pagesSent, tableIntsSent;
    private final Tables tables = new Tables();

    /**
     * The lane's entry tables on the device (each entry's key and value slots, chains, position, and whether the call
     * attends it), each sent from the first entry that differs from what the device holds: an appended entry sends
     * its own, an eviction what moved down after the first entry it removed, not the lane.
     */
    public static final class Tables {
        ClContext.Buffer slots, chains, positions, attend;
        int capacity;
        int[] sentSlots = new int[0], sentChains = new int[0], sentPositions = new int[0], sentAttend = new int[0];

        public ClContext.Buffer slots() {
            return slots;
        }

        public ClContext.Buffer chains() {
            return chains;
        }

        public ClContext.Buffer positions() {
            return positions;
        }

        public ClContext.Buffer attend() {
            return attend;
        }
    }

    /**
     * Brings the entry tables of {@code rows} up to date for a call attending {@code attend} (null: every entry);
     * writes are queued from native memory of {@code arena}, which must live until the call's blocking read.
     */
    public Tables tables(KernelRows rows, java.util.BitSet attend, java.lang.foreign.Arena arena) {
        int n = rows.size();
        Tables t = tables;
        if (n > t.capacity) {
            int c = Math.max(n, Math.max(256, 2 * t.capacity));
            for (ClContext.Buffer b : new ClContext.Buffer[] {t.slots, t.chains, t.positions, t.attend}) if (b != null) b.free();
            t.slots = cl.buffer(8L * c, "slot table");
            t.chains = cl.buffer(8L * c, "chain table");
            t.positions = cl.buffer(4L * c, "positions");
            t.attend = cl.buffer(4L * c, "the attend set");
            t.capacity = c;
            t.sentSlots = t.sentChains = t.sentPositions = t.sentAttend = new int[0];
        }
        int[] flags = new int[n];
        for (int j = 0; j < n; j++) flags[j] = attend == null || attend.get(j) ? 1 : 0;
        t.sentSlots = send(t.slots, rows.slotTable(), 2 * n, t.sentSlots, arena);
        t.sentChains = send(t.chains, rows.chainTable(), 2 * n, t.sentChains, arena);
        t.sentPositions = send(t.positions, rows.positionTable(), n, t.sentPositions, arena);
        t.sentAttend = send(t.attend, flags, n, t.sentAttend, arena);
        return t;
    }

    /** Sends {@code now[from..len)} where {@code from} is the first index at which it differs from {@code sent}; returns what the device holds. */
    private int[] send(ClContext.Buffer b, int[] now, int len, int[] sent, java.lang.foreign.Arena arena) {
        int from = Arrays.mismatch(now, 0, len, sent, 0, Math.min(len, sent.length));
        if (from < 0) from = Math.min(len, sent.length);
        if (from < len) {
            b.writeQueued(4L * from, arena.allocateFrom(java.lang.foreign.ValueLayout.JAVA_INT, Arrays.copyOfRange(now, from, len)));
            tableIntsSent += len - from;
        }
        return from == len && sent.length == len ? sent : Arrays.copyOf(now, len);
    }

    /** Entry-table ints sent to the device so far. */
    public long tableIntsSent() {
        return tableIntsSent;
    }

    /** @param poolFor the device pages of a page size (shared by every lane of a device) */
    public DeviceLane(ClContext cl, LongFunction<DevicePages> poolFor) {
        this.cl = cl;
        this.poolFor = poolFor;
    }

    /** One chain's pages on the device. */
    public static final class Chain {
        QuantSpec spec;
        DevicePages pages;
        int[] slots = new int[0];
        long[] stamps = new long[0];
        int count;
        ClContext.Buffer table;
        int tableCapacity;
        boolean tableStale = true;

        public DevicePages pages() {
            return pages;
        }

        /** The device slot of the chain's page {@code page}. */
        public int deviceSlot(int page) {
            if (page < 0 || page >= count) throw new IndexOutOfBoundsException("page " + page + " of " + count);
            return slots[page];
        }

        /** The page table: device slot of each of the chain's pages. */
        public ClContext.Buffer table() {
            return table;
        }
    }

    /**
     * Brings the device copy of {@code rows} up to date; {@code pageBytes[c]} is chain c's page size. Pages are sent
     * queued: the caller ends with a blocking call (a read, or {@link ClContext#finish}) before the rows change.
     */
    public void sync(KernelRows rows, long[] pageBytes) {
        int n = rows.chainCount();
        while (chains.size() < n) chains.add(new Chain());
        for (int c = 0; c < n; c++) {
            Chain ch = chains.get(c);
            QuantSpec spec = rows.chainSpec(c);
            if (ch.spec != null && (!ch.spec.equals(spec) || ch.pages.pageBytes() != pageBytes[c])) clear(ch);
            if (ch.pages == null) ch.pages = poolFor.apply(pageBytes[c]);
            ch.spec = spec;
            // as the host holds them: a page whose newest bytes are here already is not brought back to be sent again
            MemorySegment[] segs = rows.chainPagesAsHeld(c);
            long[] stamps = rows.chainPageStamps(c);
            while (ch.count > segs.length) {
                ch.pages.release(ch.slots[--ch.count]);
                ch.tableStale = true;
            }
            if (ch.slots.length < segs.length) {
                ch.slots = Arrays.copyOf(ch.slots, Math.max(segs.length, 2 * ch.slots.length));
                ch.stamps = Arrays.copyOf(ch.stamps, ch.slots.length);
            }
            while (ch.count < segs.length) {
                ch.slots[ch.count] = ch.pages.acquire();
                ch.stamps[ch.count] = Long.MIN_VALUE;
                ch.count++;
                ch.tableStale = true;
            }
            ClContext.Buffer buf = ch.pages.buffer();
            for (int p = 0; p < segs.length; p++) {
                long stamp = stamps == null ? Long.MIN_VALUE : stamps[p];
                if (stamps != null && ch.stamps[p] == stamp) continue;
                if (segs[p].byteSize() != ch.pages.pageBytes()) {
                    throw new IllegalStateException("chain " + c + " page " + p + " has " + segs[p].byteSize() + " bytes, not " + ch.pages.pageBytes());
                }
                // queued: the runtime's page stays as it is until the kernel's call ends with a blocking read
                if (segs[p].isNative()) buf.writeQueued((long) ch.slots[p] * ch.pages.pageBytes(), segs[p]);
                else buf.write((long) ch.slots[p] * ch.pages.pageBytes(), segs[p]);
                ch.stamps[p] = stamp;
                pagesSent++;
            }
            if (ch.tableStale) {
                if (ch.table == null || ch.tableCapacity < ch.count) {
                    if (ch.table != null) ch.table.free();
                    ch.tableCapacity = Math.max(16, Math.max(ch.count, ch.tableCapacity * 2));
                    ch.table = cl.buffer(4L * ch.tableCapacity, "a page table");
                }
                ch.table.write(Arrays.copyOf(ch.slots, Math.max(1, ch.count)));
                ch.tableStale = false;
            }
        }
    }

    public Chain chain(int c) {
        return chains.get(c);
    }

    /** Pages sent to the device so far. */
    public long pagesSent() {
        return pagesSent;
    }

    /** Bytes of this lane's pages on the device. */
    public long bytes() {
        long b = 0;
        for (Chain ch : chains) if (ch.pages != null) b += ch.count * ch.pages.pageBytes();
        return b;
    }

    private static void clear(Chain ch) {
        for (int p = 0; p < ch.count; p++) ch.pages.release(ch.slots[p]);
        ch.count = 0;
        ch.pages = null;
        ch.tableStale = true;
    }

    /** Gives every page back. */
    public void release() {
        for (Chain ch : chains) {
            if (ch.pages != null) clear(ch);
            if (ch.table != null) ch.table.free();
            ch.table = null;
        }
        chains.clear();
        for (ClContext.Buffer b : new ClContext.Buffer[] {tables.slots, tables.chains, tables.positions, tables.attend}) if (b != null) b.free();
        tables.slots = tables.chains = tables.positions = tables.attend = null;
        tables.capacity = 0;
    }
}
