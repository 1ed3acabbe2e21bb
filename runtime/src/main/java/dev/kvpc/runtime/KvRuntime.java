package dev.kvpc.runtime;

import dev.kvpc.runtime.engine.DecodeKernelProvider;
import dev.kvpc.runtime.pool.PagePool;

/**
 * A policy deployed on a model: creates sequences whose KV caches live in the shared page pool. Thread-safe: many
 * sequences may run on many threads (each sequence on one thread at a time).
 *
 * <p>Single-token steps of standard attention run on compiled decode kernels where the provider has one for a lane's
 * formats ({@link DecodeKernelProvider}; by default the one installed on the class path, see
 * {@link DecodeKernelProvider#installed()}), everything else on {@link dev.kvpc.runtime.engine.AttentionKernel}.
 */
public final class KvRuntime {
    private final ModelSpec model;
    private final PolicyRunner policy;
    private final PagePool pool;
    private final int rowsPerPage;
    private final DecodeKernelProvider kernels;

    public KvRuntime(ModelSpec model, PolicyRunner policy, PagePool pool) {
        this(model, policy, pool, 16);
    }

    public KvRuntime(ModelSpec model, PolicyRunner policy, PagePool pool, int rowsPerPage) {
        this(model, policy, pool, rowsPerPage, DecodeKernelProvider.installed());
    }

    /** As above, with the decode kernels from {@code kernels} ({@link DecodeKernelProvider#NONE}: none). */
    public KvRuntime(ModelSpec model, PolicyRunner policy, PagePool pool, int rowsPerPage, DecodeKernelProvider kernels) {
        this.model = model;
        this.policy = policy;
        this.pool = pool;
        this.rowsPerPage = rowsPerPage;
        this.kernels = kernels == null ? DecodeKernelProvider.NONE : kernels;
    }

    /** This runtime with its decode kernels from {@code kernels} instead. */
    public KvRuntime withDecodeKernels(DecodeKernelProvider kernels) {
        return new KvRuntime(model, policy, pool, rowsPerPage, kernels);
    }

    /** Where this runtime's compiled decode kernels come from. */
    public DecodeKernelProvider decodeKernels() {
        return kernels;
    }

    public ModelSpec model() {
        return model;
    }

    public PagePool pool() {
        return pool;
    }

    public Sequence newSequence() {
        return new Sequence(model, policy, pool, rowsPerPage, kernels);
    }
}
