package dev.kvpc.gpu.kernels;

import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.gpu.cl.ClDevice;
import dev.kvpc.runtime.engine.DecodeKernel;
import dev.kvpc.runtime.lane.KernelRows;
import dev.kvpc.runtime.store.QuantSpec;

import java.util.BitSet;
import java.util.Set;

/**
 * Decode attention on one OpenCL device, as the runtime's {@link dev.kvpc.runtime.engine.DecodeKernelProvider}: a host
 * passes it to {@code KvRuntime.withDecodeKernels} ({@code kvpc run --device opencl}). Every standard decode step (and
 * each query position of a prefill) runs on the device: lanes are kept there, page for page, in every format the
 * runtime stores ({@link ResidentDecodeKernel}). Under an attention variant, the variant's IR is lowered into the
 * same kernel ({@link VariantLowering}).
 *
 * <p>One context serves every kernel; calls are serialised on it (the runtime may call from several threads).
 */
public final class OpenClDecodeKernels implements dev.kvpc.runtime.engine.DecodeKernelProvider, AutoCloseable {
    private final ClContext cl;
    private final dev.kvpc.gpu.lane.DeviceLanes lanes;
    private long calls;

    private final boolean ownsContext;
    private final DeviceRowWriter writer;

    /** Kernels in a context of their own on {@code device}. */
    public OpenClDecodeKernels(ClDevice device) {
        this(new ClContext(device), true);
    }

    /**
     * Kernels in {@code cl}, shared with the engine's arithmetic ({@link ClMatmul#forEngine}): the keys and values it
     * leaves on the device are appended to the lanes there ({@link #rowWriter}). The caller closes {@code cl}.
     */
    public OpenClDecodeKernels(ClContext cl) {
        this(cl, false);
    }

    private OpenClDecodeKernels(ClContext cl, boolean ownsContext) {
        this.cl = cl;
        this.ownsContext = ownsContext;
        this.lanes = deviceLanes(cl);
        this.writer = new DeviceRowWriter(cl, lanes, this);
    }

    /**
     * Attention in place where this context holds the engine's queries (its products left them here): queries gathered
     * and rotated and outputs scattered on the device, in double where RoPE rotates them, as the runtime does.
     */
    @Override
    public boolean attendsInPlace(float[] q, float[] out, dev.kvpc.runtime.engine.HostArrays arrays, dev.kvpc.runtime.Rope rope, int headDim,
                                  int positions) {
        if (!cl.arrays().holds(q)) return false;
        return rope == null || (cl.device().fp64() && DeviceRope.covers(rope, headDim, positions));
    }

    /** Appends rows where the lanes are, from the device's copies of the engine's keys and values. */
    @Override
    public DeviceRowWriter rowWriter() {
        return writer;
    }

    /** The lanes of a device as the resident kernels keep them. */
    public static dev.kvpc.gpu.lane.DeviceLanes deviceLanes(ClContext cl) {
        return new dev.kvpc.gpu.lane.DeviceLanes(cl, RowFormats::pageBytes);
    }

    public ClDevice device() {
        return cl.device();
    }

    /** Calls run on the device so far: one per lane and step (a prefill's positions run together). */
    public synchronized long calls() {
        return calls;
    }

    @Override
    public DecodeKernel kernel(int headDim, int group, QuantSpec keys, QuantSpec values) {
        return kernel(headDim, group, Set.of(keys, values));
    }

    /**
     * Every format the runtime stores is read in place ({@link ResidentDecodeKernel}), so the runtime never decodes a
     * lane's rows into arrays for this provider: it has no {@link #denseKernel} (the default, none). Where a shape gets
     * no kernel here, it gets none there either.
     */
    @Override
    public DecodeKernel kernel(int headDim, int group, Set<QuantSpec> formats) {
        return make(headDim, group);
    }

    /** Under an attention variant: its logit, mask and normalisation lowered into the resident kernel. */
    @Override
    public DecodeKernel variantKernel(int headDim, int group, Set<QuantSpec> formats, dev.kvpc.ir.AttentionIr variant, dev.kvpc.runtime.ModelSpec model) {
        dev.kvpc.ir.LaneShape shape = new dev.kvpc.ir.LaneShape(model.layers(), model.heads(), model.kvHeads(), model.headDim());
        if (DecodeAttention.Geometry.of(headDim, group, cl.device().maxWorkGroupSize()) == null) return null;
        try {
            // a variant the lowering cannot write (it names what it lacks) stays on the runtime's kernel
            VariantLowering.score(variant, shape);
        } catch (IllegalArgumentException e) {
            return null;
        }
        ResidentDecodeKernel k;
        synchronized (this) {
            k = new ResidentDecodeKernel(cl, headDim, group, lanes, variant, shape);
        }
        return guard(k);
    }

    /**
     * Bytes of KV pages held on the device now (lanes kept there), as the runtime counts its own pages, after bringing
     * every lane's copy up to date.
     */
    public synchronized long deviceKvBytes() {
        lanes.syncAll();
        return lanes.bytesInUse();
    }

    /** Bytes the device's page buffers hold, used or not. */
    public synchronized long deviceKvBytesReserved() {
        return lanes.bytesReserved();
    }

    /** A kernel, or null where no work-group geometry fits the shape's local memory (the runtime's kernel serves it). */
    private DecodeKernel make(int headDim, int group) {
        if (DecodeAttention.Geometry.of(headDim, group, cl.device().maxWorkGroupSize()) == null) return null;
        DecodeKernel k;
        synchronized (this) {
            k = new ResidentDecodeKernel(cl, headDim, group, lanes);
        }
        return guard(k);
    }

    /** {@code k}, its calls serialised on this provider's context and counted. */
    private DecodeKernel guard(DecodeKernel k) {
        return new DecodeKernel() {
            @Override
            public void attend(KernelRows rows, float[] q, int qpos, BitSet attend, float[] out, float[] colSums) {
                attend(rows, q, qpos, attend, out, colSums, null, 0);
            }

            @Override
            public void attend(KernelRows rows, float[] q, int qpos, BitSet attend, float[] out, float[] colSums, dev.kvpc.runtime.Rope keysBySlot) {
                attend(rows, q, qpos, attend, out, colSums, keysBySlot, 0);
            }

            @Override
            public void attend(KernelRows rows, float[] q, int qpos, BitSet attend, float[] out, float[] colSums, dev.kvpc.runtime.Rope keysBySlot,
                               int firstHead) {
                synchronized (OpenClDecodeKernels.this) {
                    calls++;
                    k.attend(rows, q, qpos, attend, out, colSums, keysBySlot, firstHead);
                }
            }

            @Override
            public void attendAll(KernelRows rows, float[] q, int[] qpos, BitSet attend, float[] out, float[] colSums, dev.kvpc.runtime.Rope keysBySlot,
                                  int firstHead) {
                synchronized (OpenClDecodeKernels.this) {
                    calls++;
                    k.attendAll(rows, q, qpos, attend, out, colSums, keysBySlot, firstHead);
                }
            }

            @Override
            public boolean attendInPlace(KernelRows rows, float[] q, float[] out, int heads, int firstHead, int group, int[] qpos, int[] queryAt,
                                         dev.kvpc.runtime.Rope queryRope, BitSet attend, float[] colSums, dev.kvpc.runtime.Rope keysBySlot,
                                         dev.kvpc.runtime.engine.HostArrays arrays) {
                synchronized (OpenClDecodeKernels.this) {
                    calls++;
                    return k.attendInPlace(rows, q, out, heads, firstHead, group, qpos, queryAt, queryRope, attend, colSums, keysBySlot, arrays);
                }
            }

            @Override
            public boolean rotatesKeysBySlot() {
                return k.rotatesKeysBySlot();
            }
        };
    }

    @Override
    public synchronized void close() {
        lanes.close();
        if (ownsContext) cl.close();
    }
}
