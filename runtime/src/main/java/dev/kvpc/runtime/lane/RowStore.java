package dev.kvpc.runtime.lane;

import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.QuantSpec;

import java.lang.foreign.MemorySegment;
import java.util.List;

/** Where rows of one storage format live: a dense chain of per-token rows, or blocks quantised per channel. */
sealed interface RowStore permits RowChain, BlockChain {
    QuantSpec spec();

    int headDim();

    /** Bytes of the pages held. */
    long bytes();

    /** The segments of the pages held, in order; the same array until pages are added or dropped (read only). */
    MemorySegment[] pageSegments();

    /** The segments of {@code pages}, in order. */
    static MemorySegment[] segmentsOf(List<PagePool.Page> pages) {
        MemorySegment[] s = new MemorySegment[pages.size()];
        for (int i = 0; i < s.length; i++) s[i] = pages.get(i).segment();
        return s;
    }

    /**
     * Per page, a stamp that changes whenever a byte of that page is written (a copy of a page is current while its
     * stamp is unchanged), or null where the store does not keep them; read only, as long as {@link #pageSegments}.
     */
    default long[] pageStamps() {
        return null;
    }

    /** Bytes of quantisation scales within {@link #bytes()}. */
    long scaleBytes();

    void read(int slot, float[] dst, int dstOff);

    /**
     * The dot product of {@code q} with the row {@link #read} gives, summed as {@link Lane#dot4} sums: bit for bit the
     * same (attention kernels read a row once and use it for several queries).
     */
    float dot(int slot, float[] q, int qOff);

    /**
     * {@code acc[accOff + c] += w * row[c]}, where {@code row} is what {@link #read} gives: bit for bit the same
     * (attention kernels read a row once and use it for several queries).
     */
    void axpy(int slot, float w, float[] acc, int accOff);

    /** Re-stores a row in place. */
    void write(int slot, float[] row, int rowOff);

    /** Removes a row; rows that move are reported to {@code mover}. */
    void remove(int slot, RowChain.Mover mover);

    void clear();
}
