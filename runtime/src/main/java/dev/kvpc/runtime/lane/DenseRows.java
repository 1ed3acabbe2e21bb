package dev.kvpc.runtime.lane;

import java.lang.foreign.MemorySegment;

/**
 * Float32 key and value rows in two arrays, entry {@code i}'s at {@code i * headDim}, with their positions: the rows
 * of a lane as one step reads them (dequantised, or rotated by their slot for {@code positions cache}), so that a
 * compiled f32 kernel can run over a lane it cannot read in place. Each part is one page of {@link #capacity} rows;
 * the slot table maps entry {@code i} to row {@code i} of both. Reused from step to step: {@link #reset} sizes it,
 * {@link #keys()} and {@link #values()} are filled by the caller. Not thread-safe.
 */
public final class DenseRows implements KernelRows {
    private final int headDim;
    private int n, capacity;
    private float[] keys = new float[0], values = new float[0];
    private int[] positions = new int[0], slots = new int[0];
    private MemorySegment[] keyPage, valuePage;

    public DenseRows(int headDim) {
        this.headDim = headDim;
    }

    /** Makes room for {@code n} entries (their rows and positions undefined until written) and returns this. */
    public DenseRows reset(int n) {
        if (n > capacity) {
            capacity = Math.max(n, capacity * 2);
            keys = new float[capacity * headDim];
            values = new float[capacity * headDim];
            positions = new int[capacity];
            slots = new int[2 * capacity];
            for (int i = 0; i < capacity; i++) slots[2 * i] = slots[2 * i + 1] = i;
            keyPage = new MemorySegment[] {MemorySegment.ofArray(keys)};
            valuePage = new MemorySegment[] {MemorySegment.ofArray(values)};
        }
        this.n = n;
        return this;
    }

    /** Key rows, entry {@code i}'s at {@code i * headDim}. */
    public float[] keys() {
        return keys;
    }

    /** Value rows, entry {@code i}'s at {@code i * headDim}. */
    public float[] values() {
        return values;
    }

    /** Positions by entry, to be filled for the first {@link #size()} entries. */
    public int[] positions() {
        return positions;
    }

    @Override
    public int headDim() {
        return headDim;
    }

    @Override
    public int size() {
        return n;
    }

    @Override
    public int[] positionTable() {
        return positions;
    }

    @Override
    public int[] slotTable() {
        return slots;
    }

    @Override
    public int rowsPerPage() {
        return Math.max(1, capacity);
    }

    @Override
    public MemorySegment[] rowPages(Lane.Part part) {
        if (capacity == 0) return new MemorySegment[0];
        return part == Lane.Part.KEYS ? keyPage : valuePage;
    }
}
