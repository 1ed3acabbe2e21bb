package dev.kvpc.runtime.lane;

import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.ChannelBlockCodec;
import dev.kvpc.runtime.store.QuantSpec;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Rows quantised per channel in blocks of {@code group} tokens (KIVI keys): a block is quantised once, whole, from
 * {@code group} rows. Slot {@code b * group + t} is token t of block b. Removing a token marks it dead; a block whose
 * tokens are all dead is replaced by the last block (its tokens reported as moved) and the emptied tail page goes
 * back to the pool. Blocks are dense: blocks {@code 0 .. blocks-1} are in use.
 */
final class BlockChain implements RowStore {
    private final ChannelBlockCodec codec;
    private final PagePool pool;
    private final int blocksPerPage, group;
    private final long blockBytes;
    private final List<PagePool.Page> pages = new ArrayList<>();
    private final List<boolean[]> live = new ArrayList<>();
    private final float[] zeros, scales;
    /**
     * The block whose zero points and scales {@link #zeros} and {@link #scales} hold, -1 for none: an attention pass
     * reads a block's tokens one after another, so its parameters are decoded once, not per token. Forgotten when
     * blocks are added, moved or dropped.
     */
    private int loaded = -1;
    /** {@link #pageStamps}: per page the value of {@link #stamp} when a block of it was last written. */
    private long[] stamps = new long[4];
    private long stamp;

    BlockChain(QuantSpec spec, int headDim, PagePool pool, int blocksPerPage) {
        this.codec = ChannelBlockCodec.of(spec, headDim);
        this.pool = pool;
        this.blocksPerPage = blocksPerPage;
        this.group = spec.group();
        this.blockBytes = codec.blockBytes();
        this.zeros = new float[headDim];
        this.scales = new float[headDim];
    }

    @Override
    public QuantSpec spec() {
        return codec.spec();
    }

    @Override
    public int headDim() {
        return codec.headDim();
    }

    int group() {
        return group;
    }

    @Override
    public MemorySegment[] pageSegments() {
        for (int p = 0; elsewhere.any() && p < pages.size(); p++) elsewhere.bringBack(p, pages.get(p).segment());
        return pageSegmentsAsHeld();
    }

    private MemorySegment[] segments;

    private MemorySegment seg(int block) {
        MemorySegment page = pages.get(block / blocksPerPage).segment();
        if (elsewhere.any()) elsewhere.bringBack(block / blocksPerPage, page);
        return page;
    }

    /** Pages whose newest bytes are elsewhere (a device packed blocks into its copy): as {@link RowChain}'s. */
    private final ElsewherePages elsewhere = new ElsewherePages();

    void fillFrom(ElsewherePages.Fill f) {
        elsewhere.fillFrom(f);
    }

    /**
     * Takes a new block whose bytes someone else writes (a device, into its copy of the page), as
     * {@link RowChain#addElsewhere} takes a row; returns its first slot.
     */
    int addBlockElsewhere() {
        elsewhere.requireKept("blocks");
        int b = live.size();
        loaded = -1;
        if (b == pages.size() * blocksPerPage) {
            pages.add(pool.acquire(blockBytes * blocksPerPage, false));
            segments = null;
        }
        if (elsewhere.mark(b / blocksPerPage)) touch(b);
        boolean[] alive = new boolean[group];
        java.util.Arrays.fill(alive, true);
        live.add(alive);
        return b * group;
    }

    /** The pages' segments without bringing back those whose newest bytes are elsewhere. */
    MemorySegment[] pageSegmentsAsHeld() {
        MemorySegment[] s = segments;
        return s != null ? s : (segments = RowStore.segmentsOf(pages));
    }

    /** Notes that {@code block}'s page is written. */
    private void touch(int block) {
        int p = block / blocksPerPage;
        if (p >= stamps.length) stamps = java.util.Arrays.copyOf(stamps, Math.max(p + 1, 2 * stamps.length));
        stamps[p] = ++stamp;
    }

    @Override
    public long[] pageStamps() {
        return stamps;
    }

    private long off(int block) {
        return (long) (block % blocksPerPage) * blockBytes;
    }

    /** Quantises {@code group} rows ({@code rows}, row-major) into a new block; returns its first slot. */
    int addBlock(float[] rows) {
        int b = live.size();
        loaded = -1;
        if (b == pages.size() * blocksPerPage) {
            pages.add(pool.acquire(blockBytes * blocksPerPage, false));
            segments = null;
        }
        // a reused page holds old blocks; quantise writes every byte of the block (CodecsWriteWholeSlotsTest)
        codec.quantise(rows, 0, seg(b), off(b));
        touch(b);
        boolean[] alive = new boolean[group];
        java.util.Arrays.fill(alive, true);
        live.add(alive);
        return b * group;
    }

    @Override
    public long bytes() {
        return pages.size() * blockBytes * blocksPerPage;
    }

    @Override
    public long scaleBytes() {
        return pages.size() * blocksPerPage * codec.paramBytes();
    }

    @Override
    public void read(int slot, float[] dst, int dstOff) {
        int b = slot / group;
        load(b);
        codec.readRow(seg(b), off(b), slot % group, dst, dstOff, zeros, scales);
    }

    @Override
    public float dot(int slot, float[] q, int qOff) {
        int b = slot / group;
        load(b);
        return codec.dot(seg(b), off(b), slot % group, q, qOff, zeros, scales);
    }

    @Override
    public void axpy(int slot, float w, float[] acc, int accOff) {
        int b = slot / group;
        load(b);
        codec.axpy(seg(b), off(b), slot % group, w, acc, accOff, zeros, scales);
    }

    private void load(int block) {
        if (loaded == block) return;
        codec.loadParams(seg(block), off(block), zeros, scales);
        loaded = block;
    }

    @Override
    public void write(int slot, float[] row, int rowOff) {
        throw new UnsupportedOperationException("a row quantised per channel cannot be rewritten alone (it shares its block's scales)");
    }

    @Override
    public void remove(int slot, RowChain.Mover mover) {
        int b = slot / group;
        live.get(b)[slot % group] = false;
        for (boolean a : live.get(b)) if (a) return;
        loaded = -1;
        int last = live.size() - 1;
        if (b != last) {
            // a block whose page's newest bytes are elsewhere moves there, as RowChain's rows do
            if (!elsewhere.move(last / blocksPerPage, off(last), b / blocksPerPage, off(b), blockBytes)) {
                MemorySegment.copy(seg(last), off(last), seg(b), off(b), blockBytes);
                touch(b);
            }
            boolean[] moved = live.get(last);
            live.set(b, moved);
            for (int t = 0; t < group; t++) if (moved[t]) mover.moved(last * group + t, b * group + t);
        }
        live.removeLast();
        int needed = (live.size() + blocksPerPage - 1) / blocksPerPage;
        while (pages.size() > needed) {
            pool.release(pages.removeLast());
            segments = null;
        }
        elsewhere.dropFrom(needed);
    }

    @Override
    public void clear() {
        loaded = -1;
        for (PagePool.Page p : pages) pool.release(p);
        pages.clear();
        segments = null;
        live.clear();
        elsewhere.dropFrom(0);
    }
}
