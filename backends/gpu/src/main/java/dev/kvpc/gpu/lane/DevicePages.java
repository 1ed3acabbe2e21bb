package dev.kvpc.gpu.lane;

import dev.kvpc.gpu.cl.ClContext;

import java.util.Arrays;

/**
 * Pages of one size in one device buffer: the device's side of the runtime's page pool. A page is a slot index;
 * slot {@code i} is bytes {@code [i * pageBytes, (i + 1) * pageBytes)} of {@link #buffer()}. When every slot is taken
 * the buffer grows (twice the slots, the old contents copied on the device), so slots stay valid; kernels take the
 * buffer anew at each launch.
 */
public final class DevicePages {
    private final ClContext cl;
    private final long pageBytes;
    private ClContext.Buffer buffer;
    private int capacity;
    private int[] free = new int[0];
    private int freeCount, inUse;

    public DevicePages(ClContext cl, long pageBytes) {
        if (pageBytes <= 0) throw new IllegalArgumentException("page bytes " + pageBytes);
        this.cl = cl;
        this.pageBytes = pageBytes;
    }

    public long pageBytes() {
        return pageBytes;
    }

    /** The buffer holding every slot (changes when the pages grow). */
    public ClContext.Buffer buffer() {
        if (buffer == null) grow();
        return buffer;
    }

    public int acquire() {
        if (freeCount == 0) grow();
        inUse++;
        return free[--freeCount];
    }

    public void release(int slot) {
        if (slot < 0 || slot >= capacity) throw new IllegalArgumentException("slot " + slot + " of " + capacity);
        free[freeCount++] = slot;
        inUse--;
    }

    /** Bytes of the pages in use: what the runtime's pool counts for the same pages. */
    public long bytesInUse() {
        return inUse * pageBytes;
    }

    /** Bytes of the device buffer, used or not. */
    public long bytesReserved() {
        return capacity * pageBytes;
    }

    private void grow() {
        int next = Math.max(16, capacity * 2);
        ClContext.Buffer b = cl.buffer(next * pageBytes, "KV pages of " + pageBytes + " bytes");
        if (buffer != null) {
            buffer.copyTo(b, 0, 0, capacity * pageBytes);
            buffer.free();
        }
        buffer = b;
        free = Arrays.copyOf(free, next);
        // new slots handed out lowest first
        for (int s = next - 1; s >= capacity; s--) free[freeCount++] = s;
        capacity = next;
    }

    public void close() {
        if (buffer != null) buffer.free();
        buffer = null;
    }
}
