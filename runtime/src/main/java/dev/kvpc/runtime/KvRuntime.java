package dev.kvpc.runtime;

import dev.kvpc.runtime.pool.PagePool;

/**
 * A policy deployed on a model: creates sequences whose KV caches live in the shared page pool. Thread-safe: many
 * sequences may run on many threads (each sequence on one thread at a time).
 */
public final class KvRuntime {
    private final ModelSpec model;
    private final PolicyRunner policy;
    private final PagePool pool;
    private final int rowsPerPage;

    public KvRuntime(ModelSpec model, PolicyRunner policy, PagePool pool) {
        this(model, policy, pool, 16);
    }

    public KvRuntime(ModelSpec model, PolicyRunner policy, PagePool pool, int rowsPerPage) {
        this.model = model;
        this.policy = policy;
        this.pool = pool;
        this.rowsPerPage = rowsPerPage;
    }

    public ModelSpec model() {
        return model;
    }

    public PagePool pool() {
        return pool;
    }

    public Sequence newSequence() {
        return new Sequence(model, policy, pool, rowsPerPage);
    }
}
