package dev.kvpc.runtime;

import dev.kvpc.runtime.store.Precision;

/**
 * The host's model as the KV cache sees it: layers, query heads, KV heads (query head h reads KV head
 * {@code h / (heads / kvHeads)}), head dimension, and the precision keys and values arrive and are stored in.
 */
public record ModelSpec(int layers, int heads, int kvHeads, int headDim, Precision dtype) {
    public ModelSpec {
        if (layers < 1 || heads < 1 || kvHeads < 1 || headDim < 1) throw new IllegalArgumentException("model sizes must be positive");
        if (heads % kvHeads != 0) throw new IllegalArgumentException("query heads " + heads + " not a multiple of KV heads " + kvHeads);
        if (dtype.isInteger()) throw new IllegalArgumentException("the host precision is a float format, not " + dtype);
    }

    public int group() {
        return heads / kvHeads;
    }
}
