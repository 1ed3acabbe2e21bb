package dev.kvpc.runtime.lane;

import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.RowCodec;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Rows of one format (a {@link RowCodec}) in pages from the shared pool, kept dense: the live rows are always slots
 * {@code 0 .. size-1}. Removing a row moves the last row into its slot (one row copied, whatever was removed) and
 * gives an emptied last page back to the pool, so the chain holds at most one partly used page and memory falls
 * as rows are evicted. The owner learns of moves through {@link Mover}.
 */
final class RowChain implements RowStore {
    /** Told that the row in slot {@code from} now lives in slot {@code to}. */
    interface Mover {
        void moved(int from, int to);
    }

    private final RowCodec codec;
    private final PagePool pool;
    private final int rowsPerPage;
    private final long rowBytes;
    private final List<PagePool.Page> pages = new ArrayList<>();
    private int size;
    private final float[] scratch;
    /** {@link #pageStamps}: per page the value of {@link #stamp} when a row of it was last written. */
    private long[] stamps = new long[4];
    private long stamp;
    /** Pages whose newest bytes are elsewhere (a device wrote rows into its copy of them, {@link #addElsewhere}). */
    private final ElsewherePages elsewhere = new ElsewherePages();

    RowChain(RowCodec codec, PagePool pool, int rowsPerPage) {
        if (rowsPerPage < 1) throw new IllegalArgumentException("rows per page must be positive");
        this.codec = codec;
        this.pool = pool;
        this.rowsPerPage = rowsPerPage;
        this.rowBytes = codec.rowBytes();
        this.scratch = new float[codec.headDim()];
    }

    RowCodec codec() {
        return codec;
    }

    @Override
    public dev.kvpc.runtime.store.QuantSpec spec() {
        return codec.spec();
    }

    @Override
    public int headDim() {
        return codec.headDim();
    }

    @Override
    public long scaleBytes() {
        if (!codec.spec().quantised() || size == 0) return 0;
        long packed = codec.spec().precision().packedBytes(codec.headDim());
        return bytes() * (rowBytes - packed) / rowBytes;
    }

    int size() {
        return size;
    }

    /** Bytes of the pages this chain holds. */
    @Override
    public long bytes() {
        return pages.size() * rowBytes * rowsPerPage;
    }

    @Override
    public MemorySegment[] pageSegments() {
        for (int p = 0; elsewhere.any() && p < pages.size(); p++) elsewhere.bringBack(p, pages.get(p).segment());
        return pageSegmentsAsHeld();
    }

    /** The pages' segments as {@link #pageSegments} last made them; null when pages were added or dropped since. */
    private MemorySegment[] segments;

    private MemorySegment seg(int slot) {
        MemorySegment page = pages.get(slot / rowsPerPage).segment();
        if (elsewhere.any()) elsewhere.bringBack(slot / rowsPerPage, page);
        return page;
    }

    /** Where the rows of {@link #addElsewhere} come from when the host needs them. */
    void fillFrom(ElsewherePages.Fill f) {
        elsewhere.fillFrom(f);
    }

    /**
     * Notes that the holder of this chain's pages wrote a row of {@code slot}'s page in its copy, which it had brought
     * up to date first: the host's page is stale until brought back; its stamp stays (nothing new to send).
     */
    void markElsewhere(int slot) {
        elsewhere.requireKept("rows");
        elsewhere.mark(slot / rowsPerPage);
    }

    /** Whether the newest bytes of {@code slot}'s page are elsewhere. */
    boolean isElsewhere(int slot) {
        return elsewhere.has(slot / rowsPerPage);
    }

    /**
     * Takes a slot for a row whose bytes someone else writes (a device, into its copy of the page; see {@link #fillFrom}):
     * the host's page is not written, and is brought back before the host next reads or writes it. The page's stamp
     * moves only when it was the host's until now (its copy elsewhere may lack what the host wrote; a copy brought up
     * to date before the row is written there holds both); a page already elsewhere keeps its stamp, so no one sends
     * the host's stale bytes over the newer ones. Returns the slot.
     */
    int addElsewhere() {
        elsewhere.requireKept("rows");
        if (size == pages.size() * rowsPerPage) {
            pages.add(pool.acquire(rowBytes * rowsPerPage, false));
            segments = null;
        }
        int slot = size++;
        if (elsewhere.mark(slot / rowsPerPage)) touch(slot);
        return slot;
    }

    /** The pages' segments without bringing back those whose newest bytes are elsewhere (for the copy that holds them). */
    MemorySegment[] pageSegmentsAsHeld() {
        MemorySegment[] s = segments;
        return s != null ? s : (segments = RowStore.segmentsOf(pages));
    }

    /** Notes that a row of {@code slot}'s page is written. */
    private void touch(int slot) {
        int p = slot / rowsPerPage;
        if (p >= stamps.length) stamps = java.util.Arrays.copyOf(stamps, Math.max(p + 1, 2 * stamps.length));
        stamps[p] = ++stamp;
    }

    @Override
    public long[] pageStamps() {
        return stamps;
    }

    private long off(int slot) {
        return (long) (slot % rowsPerPage) * rowBytes;
    }

    /**
     * Stores a row; returns its slot. Pages come from the pool as they are (a reused page holds old rows): the codec
     * writes every byte of the slot (CodecsWriteWholeSlotsTest), so nothing is cleared first.
     */
    int add(float[] row, int rowOff) {
        if (size == pages.size() * rowsPerPage) {
            pages.add(pool.acquire(rowBytes * rowsPerPage, false));
            segments = null;
        }
        int slot = size++;
        codec.write(row, rowOff, seg(slot), off(slot));
        touch(slot);
        return slot;
    }

    /** Removes the row in {@code slot}; the last row moves into it (reported to {@code mover} unless it was the last). */
    @Override
    public void remove(int slot, Mover mover) {
        if (slot < 0 || slot >= size) throw new IndexOutOfBoundsException("slot " + slot + " of " + size);
        int last = size - 1;
        if (slot != last) {
            // rows whose pages' newest bytes are elsewhere move there, and their pages stay there
            if (!elsewhere.move(last / rowsPerPage, off(last), slot / rowsPerPage, off(slot), rowBytes)) {
                MemorySegment.copy(seg(last), off(last), seg(slot), off(slot), rowBytes);
                touch(slot);
            }
            mover.moved(last, slot);
        }
        size--;
        int needed = (size + rowsPerPage - 1) / rowsPerPage;
        while (pages.size() > needed) {
            pool.release(pages.removeLast());
            segments = null;
        }
        elsewhere.dropFrom(needed);
    }

    @Override
    public void read(int slot, float[] dst, int dstOff) {
        codec.read(seg(slot), off(slot), dst, dstOff);
    }

    @Override
    public float dot(int slot, float[] q, int qOff) {
        return codec.dot(seg(slot), off(slot), q, qOff);
    }

    @Override
    public void axpy(int slot, float w, float[] acc, int accOff) {
        codec.axpy(seg(slot), off(slot), w, acc, accOff);
    }

    /** Re-stores a row in place (after a merge changed it). */
    @Override
    public void write(int slot, float[] row, int rowOff) {
        codec.write(row, rowOff, seg(slot), off(slot));
        touch(slot);
    }

    /** Reads a row into the chain's scratch buffer (valid until the next call). */
    float[] row(int slot) {
        read(slot, scratch, 0);
        return scratch;
    }

    /** Gives every page back. */
    @Override
    public void clear() {
        for (PagePool.Page p : pages) pool.release(p);
        pages.clear();
        segments = null;
        size = 0;
        elsewhere.dropFrom(0);
    }
}
