package dev.kvpc.runtime;

import dev.kvpc.runtime.store.Precision;

/**
 * The host's model as the KV cache sees it: layers, query heads, KV heads (query head h reads KV head
 * {@code h / (heads / kvHeads)}), head dimension, the precision keys and values arrive and are stored in, and
 * {@code rope}: null when the host rotates keys and queries itself (every policy then sees original positions),
 * or the model's RoPE when the host hands them over unrotated (the runtime rotates, by text position or, for
 * policies with {@code positions cache}, by cache slot).
 */
public record ModelSpec(int layers, int heads, int kvHeads, int headDim, Precision dtype, Rope rope) {
    public ModelSpec(int layers, int heads, int kvHeads, int headDim, Precision dtype) {
        this(layers, heads, kvHeads, headDim, dtype, null);
    }

    public ModelSpec {
        if (rope != null && headDim % 2 != 0) throw new IllegalArgumentException("RoPE needs an even head dimension");
        if (layers < 1 || heads < 1 || kvHeads < 1 || headDim < 1) throw new IllegalArgumentException("model sizes must be positive");
        if (heads % kvHeads != 0) throw new IllegalArgumentException("query heads " + heads + " not a multiple of KV heads " + kvHeads);
        if (dtype.isInteger()) throw new IllegalArgumentException("the host precision is a float format, not " + dtype);
    }

    public int group() {
        return heads / kvHeads;
    }
}
