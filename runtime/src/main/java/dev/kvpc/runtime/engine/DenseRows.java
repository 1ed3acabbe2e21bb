package dev.kvpc.runtime.engine;

import dev.kvpc.runtime.Rope;
import dev.kvpc.runtime.lane.KernelRows;
import dev.kvpc.runtime.lane.Lane;

import java.lang.foreign.MemorySegment;
import java.util.BitSet;

/**
 * Float32 key and value rows in two arrays, entry {@code i}'s at {@code i * headDim}, with their positions: a lane's
 * rows as one step reads them ({@link #read}: dequantised, keys rotated by their slot for {@code positions cache}).
 * {@link AttentionKernel} computes over these arrays when several query rows read the rows, and a compiled f32 kernel
 * runs over them ({@link KernelRows}) for a lane it cannot read in place. Each part is one page of
 * {@link #rowsPerPage} rows; the slot table maps entry {@code i} to row {@code i} of both. Reused from step to step.
 * Not thread-safe.
 */
public final class DenseRows implements KernelRows {
    private final int headDim;
    private int n, capacity;
    private float[] keys = new float[0], values = new float[0];
    private int[] positions = new int[0], slots = new int[0], chains = new int[0];
    private MemorySegment[] keyPage, valuePage;

    public DenseRows(int headDim) {
        this.headDim = headDim;
    }

    /**
     * Reads {@code lane}'s entries: all their positions, and the key rows of those in {@code attend} (null: all), as
     * {@link Lane#read} gives them, rotated by their slot when {@code bySlot} is not null; their value rows too when
     * {@code withValues}. The rows of entries outside {@code attend} are left undefined. Returns this.
     */
    public DenseRows read(Lane lane, BitSet attend, Rope bySlot, boolean withValues) {
        int size = lane.size(), d = headDim;
        reserve(size);
        System.arraycopy(lane.positionTable(), 0, positions, 0, size);
        for (int j = 0; j < size; j++) {
            if (attend != null && !attend.get(j)) continue;
            lane.read(j, Lane.Part.KEYS, keys, j * d);
            if (bySlot != null) bySlot.rotate(keys, j * d, d, j);
            if (withValues) lane.read(j, Lane.Part.VALUES, values, j * d);
        }
        return this;
    }

    private void reserve(int size) {
        if (size > capacity) {
            capacity = Math.max(size, capacity * 2);
            keys = new float[capacity * headDim];
            values = new float[capacity * headDim];
            positions = new int[capacity];
            slots = new int[2 * capacity];
            chains = new int[2 * capacity];
            for (int i = 0; i < capacity; i++) {
                slots[2 * i] = slots[2 * i + 1] = i;
                chains[2 * i + 1] = 1;
            }
            keyPage = new MemorySegment[] {MemorySegment.ofArray(keys)};
            valuePage = new MemorySegment[] {MemorySegment.ofArray(values)};
        }
        n = size;
    }

    /** Key rows as {@link #read} left them, entry {@code i}'s at {@code i * headDim}. */
    float[] keys() {
        return keys;
    }

    /** Value rows as {@link #read} left them, entry {@code i}'s at {@code i * headDim}. */
    float[] values() {
        return values;
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

    /** Chain 0 holds the keys, chain 1 the values, both f32, one page each. */
    @Override
    public int[] chainTable() {
        return chains;
    }

    @Override
    public int chainCount() {
        return 2;
    }

    @Override
    public dev.kvpc.runtime.store.QuantSpec chainSpec(int c) {
        return F32;
    }

    private static final dev.kvpc.runtime.store.QuantSpec F32 = dev.kvpc.runtime.store.QuantSpec.of(dev.kvpc.runtime.store.Precision.F32);

    @Override
    public MemorySegment[] chainPages(int c) {
        return rowPages(c == 0 ? Lane.Part.KEYS : Lane.Part.VALUES);
    }

    @Override
    public MemorySegment[] rowPages(Lane.Part part) {
        if (capacity == 0) return new MemorySegment[0];
        return part == Lane.Part.KEYS ? keyPage : valuePage;
    }
}
