package dev.kvpc.runtime.engine;

import dev.kvpc.runtime.lane.KernelRows;
import dev.kvpc.runtime.lane.Lane;

import java.util.BitSet;

/**
 * One decode step of standard softmax attention for a group of query heads over one lane, compiled for a head
 * dimension, a group size and the lane's key and value row formats (the JVM backend's {@code DecodeKernelCompiler}
 * generates them). It computes what {@link AttentionKernel#attend(Lane, float[], int[], int, BitSet, float[], float[])}
 * computes for a single query position and no variant: logits {@code q . k / sqrt(headDim)} over the entries in the
 * attend set (null: all) at positions up to {@code qpos}, a softmax per head, the weighted sum of the values, and
 * optionally the fused column sums. Keys and values are read in place from the lane's pages.
 *
 * <p>The caller must have checked that the lane's keys and values are each in one row chain of the kernel's formats
 * ({@link Lane#rowFormat}); {@link DecodeKernels} does. A kernel for f32 keys and values also runs over
 * {@link dev.kvpc.runtime.engine.DenseRows}: a lane's rows decoded or rotated into arrays for the step. Instances keep
 * scratch buffers: one per thread.
 */
public interface DecodeKernel {
    /**
     * @param q       queries of the group, {@code group x headDim}, row-major
     * @param qpos    the query's position (entries at later positions are masked)
     * @param attend  entries that may be read (null: all)
     * @param out     outputs, {@code group x headDim}, overwritten
     * @param colSums if not null, {@code colSums[entry] +=} the entry's probability summed over the group's heads
     */
    void attend(KernelRows rows, float[] q, int qpos, BitSet attend, float[] out, float[] colSums);

    /**
     * As above, each entry's key rotated by {@code keysBySlot} at its index in the lane (its cache slot) as it is
     * read, as a lane of {@code positions cache} wants; only for kernels whose {@link #rotatesKeysBySlot} is true.
     */
    default void attend(KernelRows rows, float[] q, int qpos, BitSet attend, float[] out, float[] colSums, dev.kvpc.runtime.Rope keysBySlot) {
        if (keysBySlot != null) throw new UnsupportedOperationException("this kernel does not rotate keys by slot");
        attend(rows, q, qpos, attend, out, colSums);
    }

    /**
     * As above for a kernel made for an attention variant ({@link DecodeKernelProvider#variantKernel}):
     * {@code firstHead} is the lane's first query head, which the variant may read ({@code head}); standard kernels
     * ignore it.
     */
    default void attend(KernelRows rows, float[] q, int qpos, BitSet attend, float[] out, float[] colSums, dev.kvpc.runtime.Rope keysBySlot, int firstHead) {
        attend(rows, q, qpos, attend, out, colSums, keysBySlot);
    }

    /**
     * A step of several query positions (a prefill, a chunk): {@code q} holds one row of the group's queries per
     * position of {@code qpos}, {@code out} one row of outputs each; each position is masked causally at its own, and
     * the column sums accumulate over all of them. By default the kernel once per position, in order; a kernel may
     * run them together.
     */
    default void attendAll(KernelRows rows, float[] q, int[] qpos, BitSet attend, float[] out, float[] colSums, dev.kvpc.runtime.Rope keysBySlot, int firstHead) {
        int gd = q.length / qpos.length;
        float[] qOne = new float[gd], outOne = new float[gd];
        for (int t = 0; t < qpos.length; t++) {
            System.arraycopy(q, t * gd, qOne, 0, gd);
            attend(rows, qOne, qpos[t], attend, outOne, colSums, keysBySlot, firstHead);
            System.arraycopy(outOne, 0, out, t * gd, gd);
        }
    }

    /**
     * A step's attention for the lane's query heads {@code firstHead .. firstHead + group - 1}, reading the queries
     * from and writing the outputs into the host's arrays of every head's ({@code q} and {@code out}:
     * {@code tokens x heads x headDim}) where {@code arrays} has them (a device's copies), rather than from copies the
     * caller makes: query {@code t} is rotated by {@code queryRope} at {@code queryAt[t]} (null: not rotated) as
     * {@link dev.kvpc.runtime.Rope#rotate} rotates it; otherwise as {@link #attendAll}. Returns false, having done
     * nothing, where this kernel does not work in place (the default): the caller copies then.
     */
    default boolean attendInPlace(KernelRows rows, float[] q, float[] out, int heads, int firstHead, int group, int[] qpos, int[] queryAt,
                                  dev.kvpc.runtime.Rope queryRope, BitSet attend, float[] colSums, dev.kvpc.runtime.Rope keysBySlot, HostArrays arrays) {
        return false;
    }

    /** Whether {@link #attend(KernelRows, float[], int, BitSet, float[], float[], dev.kvpc.runtime.Rope)} rotates keys. */
    default boolean rotatesKeysBySlot() {
        return false;
    }
}
