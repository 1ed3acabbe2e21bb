package dev.kvpc.gpu.lane;

import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.runtime.lane.KernelRows;
import dev.kvpc.runtime.store.QuantSpec;

import java.lang.ref.ReferenceQueue;
import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Every lane kept on one device: the device's page pools (one per page size) and one {@link DeviceLane} per runtime
 * lane, whichever kernel reads it (a lane whose formats change is read by another kernel, not copied twice). A lane
 * is held weakly: once the runtime drops it, its device pages go back to the pools.
 */
public final class DeviceLanes implements AutoCloseable {
    private final ClContext cl;
    private final Map<Long, DevicePages> pools = new HashMap<>();
    /** By the lane's identity hash. */
    private final Map<Integer, List<Mirror>> lanes = new HashMap<>();
    private final ReferenceQueue<KernelRows> gone = new ReferenceQueue<>();

    private static final class Mirror extends WeakReference<KernelRows> {
        final DeviceLane lane;
        final int hash;

        Mirror(KernelRows rows, ReferenceQueue<KernelRows> q, DeviceLane lane) {
            super(rows, q);
            this.lane = lane;
            this.hash = System.identityHashCode(rows);
        }
    }

    public DeviceLanes(ClContext cl, PageSize pageSize) {
        this.cl = cl;
        this.pageSize = pageSize;
    }

    /** Bytes of a page of a chain of {@code spec} (rows per page, or one block of rows quantised per channel). */
    public interface PageSize {
        long bytes(QuantSpec spec, int headDim, int rowsPerPage);
    }

    private final PageSize pageSize;

    /** The device copy of {@code rows}, brought up to date. */
    public synchronized DeviceLane sync(KernelRows rows) {
        dropUnreachable();
        List<Mirror> bucket = lanes.computeIfAbsent(System.identityHashCode(rows), h -> new ArrayList<>(1));
        Mirror mirror = null;
        for (Mirror m : bucket) if (m.get() == rows) mirror = m;
        if (mirror == null) bucket.add(mirror = new Mirror(rows, gone, new DeviceLane(cl, bytes -> pools.computeIfAbsent(bytes, b -> new DevicePages(cl, b)))));
        sync(mirror.lane, rows);
        return mirror.lane;
    }

    private void sync(DeviceLane lane, KernelRows rows) {
        int n = rows.chainCount();
        long[] pageBytes = new long[n];
        for (int c = 0; c < n; c++) pageBytes[c] = pageSize.bytes(rows.chainSpec(c), rows.headDim(), rows.rowsPerPage());
        lane.sync(rows, pageBytes);
    }

    /**
     * Brings every lane's copy up to date now (otherwise a copy is brought up to date when its lane is next read:
     * after a step's evictions it still holds the pages they freed until then), and waits for the copies.
     */
    public synchronized void syncAll() {
        dropUnreachable();
        for (List<Mirror> bucket : lanes.values()) {
            for (Mirror m : bucket) {
                KernelRows rows = m.get();
                if (rows != null) sync(m.lane, rows);
            }
        }
        cl.finish();
    }

    /**
     * Copies page {@code page} of chain {@code chain} of {@code rows}, as the device holds it, into {@code into}: what
     * the host reads back of rows written on the device ({@link dev.kvpc.runtime.lane.Lane#appendElsewhere}).
     */
    public synchronized void fill(KernelRows rows, int chain, int page, java.lang.foreign.MemorySegment into) {
        DeviceLane.Chain ch = held(rows).chain(chain);
        if (ch.pages().pageBytes() != into.byteSize()) throw new IllegalStateException("a page of " + into.byteSize() + " bytes, the device's of " + ch.pages().pageBytes());
        ch.pages().buffer().read((long) ch.deviceSlot(page) * ch.pages().pageBytes(), into);
        pagesFilled++;
    }

    /**
     * Copies {@code bytes} from {@code fromOffset} of page {@code fromPage} to {@code toOffset} of page {@code toPage}
     * of chain {@code chain} of {@code rows}, on the device (queued): a row written there moving down in its chain when
     * another leaves it, without either page crossing.
     */
    public synchronized void move(KernelRows rows, int chain, int fromPage, long fromOffset, int toPage, long toOffset, long bytes) {
        DeviceLane.Chain ch = held(rows).chain(chain);
        long pb = ch.pages().pageBytes();
        ch.pages().buffer().copyTo(ch.pages().buffer(), ch.deviceSlot(fromPage) * pb + fromOffset, ch.deviceSlot(toPage) * pb + toOffset, bytes);
        rowsMoved++;
    }

    private long pagesFilled, rowsMoved;

    /** Pages brought back to the host (rows it read that the device wrote), and rows moved on the device, so far. */
    public synchronized long pagesFilled() {
        return pagesFilled;
    }

    public synchronized long rowsMoved() {
        return rowsMoved;
    }

    private DeviceLane held(KernelRows rows) {
        List<Mirror> bucket = lanes.get(System.identityHashCode(rows));
        if (bucket != null) for (Mirror m : bucket) if (m.get() == rows) return m.lane;
        throw new IllegalStateException("the device holds no copy of this lane");
    }

    /** Bytes of {@code rows}' pages on the device as last brought up to date; 0 where the device holds none of it. */
    public synchronized long bytesOf(KernelRows rows) {
        List<Mirror> bucket = lanes.get(System.identityHashCode(rows));
        if (bucket != null) for (Mirror m : bucket) if (m.get() == rows) return m.lane.bytes();
        return 0;
    }

    /** Pages sent by lanes no longer held. */
    private long sentByDropped;

    /**
     * Pages sent to the device so far, by every lane it held (a count that only grows: a caller compares it before and
     * after a call to know whether pages went, queued, from the host's memory).
     */
    public synchronized long pagesSent() {
        long n = sentByDropped;
        for (List<Mirror> bucket : lanes.values()) for (Mirror m : bucket) n += m.lane.pagesSent();
        return n;
    }

    /** Bytes of the pages in use on the device: the runtime's count for the same lanes. */
    public synchronized long bytesInUse() {
        long b = 0;
        for (DevicePages p : pools.values()) b += p.bytesInUse();
        return b;
    }

    /** Bytes of the device's page buffers, used or not. */
    public synchronized long bytesReserved() {
        long b = 0;
        for (DevicePages p : pools.values()) b += p.bytesReserved();
        return b;
    }

    private void dropUnreachable() {
        for (java.lang.ref.Reference<? extends KernelRows> r; (r = gone.poll()) != null; ) {
            Mirror m = (Mirror) r;
            sentByDropped += m.lane.pagesSent();
            m.lane.release();
            List<Mirror> bucket = lanes.get(m.hash);
            if (bucket != null) {
                bucket.remove(m);
                if (bucket.isEmpty()) lanes.remove(m.hash);
            }
        }
    }

    @Override
    public synchronized void close() {
        for (List<Mirror> bucket : lanes.values()) for (Mirror m : bucket) m.lane.release();
        lanes.clear();
        for (DevicePages p : pools.values()) p.close();
        pools.clear();
    }
}
