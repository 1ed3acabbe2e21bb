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
 * each query position of a prefill) runs {@link ClDecodeKernel} on the device, for lanes of any row format and for
 * rows a step decoded into arrays; attention variants stay on the runtime's kernel, as with every provider.
 *
 * <p>One context serves every kernel; calls are serialised on it (the runtime may call from several threads).
 */
public final class OpenClDecodeKernels implements dev.kvpc.runtime.engine.DecodeKernelProvider, AutoCloseable {
    private final ClContext cl;
    private long calls;

    public OpenClDecodeKernels(ClDevice device) {
        this.cl = new ClContext(device);
    }

    public ClDevice device() {
        return cl.device();
    }

    /** Decode kernel calls run on the device so far. */
    public synchronized long calls() {
        return calls;
    }

    @Override
    public DecodeKernel kernel(int headDim, int group, QuantSpec keys, QuantSpec values) {
        return make(headDim, group);
    }

    @Override
    public DecodeKernel kernel(int headDim, int group, Set<QuantSpec> formats) {
        return make(headDim, group);
    }

    @Override
    public DecodeKernel denseKernel(int headDim, int group) {
        return make(headDim, group);
    }

    private DecodeKernel make(int headDim, int group) {
        ClDecodeKernel k;
        synchronized (this) {
            k = new ClDecodeKernel(cl, headDim, group);
        }
        return new DecodeKernel() {
            @Override
            public void attend(KernelRows rows, float[] q, int qpos, BitSet attend, float[] out, float[] colSums) {
                synchronized (OpenClDecodeKernels.this) {
                    calls++;
                    k.attend(rows, q, qpos, attend, out, colSums);
                }
            }
        };
    }

    @Override
    public synchronized void close() {
        cl.close();
    }
}
