package dev.kvpc.runtime.engine;

import dev.kvpc.runtime.Rope;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.store.QuantSpec;

/**
 * Appends a step's keys and values where a device keeps the lanes' pages, from the device's own copies of the host's
 * arrays: the rows never cross to the host unless the host reads them ({@link Lane#appendElsewhere}). A
 * {@link DecodeKernelProvider} that keeps lanes offers one ({@link DecodeKernelProvider#rowWriter}).
 */
public interface RowWriter {
    /**
     * Whether this writer appends rows of {@code spec} and {@code headDim} channels from {@code keys} and
     * {@code values} as held in {@code arrays} (it holds copies of them), rotating keys by {@code rope} (null: none)
     * at positions up to {@code lastPosition}; when false, the host appends.
     */
    boolean writes(QuantSpec spec, int headDim, Rope rope, float[] keys, float[] values, HostArrays arrays, int lastPosition);

    /** Where the lanes it writes get their pages' bytes back. */
    Lane.PageSource source();

    /**
     * Writes the rows of entries appended with {@link Lane#appendElsewhere}: {@code entries[h][t]} of {@code lanes[h]}
     * takes token {@code t}'s key and value of KV head {@code h} ({@code keys[(t * lanes.length + h) * headDim ..]}),
     * its key rotated by {@code rope} at {@code firstPosition + t} where {@code rotate[h]} (the runtime's
     * {@link Rope#rotate}, bit for bit), in the lane's host format.
     */
    void write(Lane[] lanes, int[][] entries, float[] keys, float[] values, Rope rope, int firstPosition, boolean[] rotate);
}
