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
    private final int threads;
    private final long minWork;

    /** Rows of a page when a host does not choose: 8 entries, a key row and a value row each. */
    public static final int DEFAULT_ROWS_PER_PAGE = 16;

    public KvRuntime(ModelSpec model, PolicyRunner policy, PagePool pool) {
        this(model, policy, pool, DEFAULT_ROWS_PER_PAGE);
    }

    public KvRuntime(ModelSpec model, PolicyRunner policy, PagePool pool, int rowsPerPage) {
        this(model, policy, pool, rowsPerPage, DecodeKernelProvider.installed());
    }

    /** As above, with the decode kernels from {@code kernels} ({@link DecodeKernelProvider#NONE}: none). */
    public KvRuntime(ModelSpec model, PolicyRunner policy, PagePool pool, int rowsPerPage, DecodeKernelProvider kernels) {
        this(model, policy, pool, rowsPerPage, kernels, 1, DEFAULT_MIN_WORK);
    }

    private KvRuntime(ModelSpec model, PolicyRunner policy, PagePool pool, int rowsPerPage, DecodeKernelProvider kernels, int threads, long minWork) {
        if (threads < 1) throw new IllegalArgumentException("threads must be at least 1, not " + threads);
        if (minWork < 0) throw new IllegalArgumentException("minWork must not be negative, not " + minWork);
        this.threads = threads;
        this.minWork = minWork;
        this.model = model;
        this.policy = policy;
        this.pool = pool;
        this.rowsPerPage = rowsPerPage;
        this.kernels = kernels == null ? DecodeKernelProvider.NONE : kernels;
    }

    /** This runtime with its decode kernels from {@code kernels} instead. */
    public KvRuntime withDecodeKernels(DecodeKernelProvider kernels) {
        return new KvRuntime(model, policy, pool, rowsPerPage, kernels, threads, minWork);
    }

    /**
     * The least attention work, in multiply-adds of key and value rows, that a layer gives each thread it spreads
     * over: below it, a hand-off (microseconds) costs more than it saves.
     */
    public static final long DEFAULT_MIN_WORK = 1 << 18;

    /**
     * This runtime with each sequence's attention spread over up to {@code threads} threads (the caller's and shared
     * daemon threads): the lanes of a layer are attended in parallel when they hold enough work to pay for the
     * hand-off. The results do not depend on the number of threads.
     */
    public KvRuntime withThreads(int threads) {
        return withThreads(threads, DEFAULT_MIN_WORK);
    }

    /** As {@link #withThreads(int)}, each thread given at least {@code minWork} multiply-adds (0: every lane may go). */
    public KvRuntime withThreads(int threads, long minWork) {
        return new KvRuntime(model, policy, pool, rowsPerPage, kernels, threads, minWork);
    }

    public int threads() {
        return threads;
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
        return new Sequence(model, policy, pool, rowsPerPage, kernels, threads, minWork);
    }
}
