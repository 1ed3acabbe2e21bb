package dev.kvpc.runtime;

/**
 * An attention variant as the kernel runs it: the logit and the mask of one query-key pair, and the normalisation.
 * Backends compile it from a KVP {@code attention} declaration; null in {@link PolicyRunner#variant()} means standard
 * scaled dot-product attention with a causal mask and softmax.
 */
public interface AttentionVariant {
    enum Normalize { SOFTMAX, SIGMOID, NONE }

    /**
     * The logit of query {@code q} (head {@code head}, at {@code qpos}) against key {@code k} (at {@code kpos}), both
     * as the kernel reads them (rotated where RoPE applies); {@code context} is the number of tokens seen.
     */
    double logit(float[] q, int qOff, float[] k, int qpos, int kpos, int head, int context);

    boolean visible(float[] q, int qOff, float[] k, int qpos, int kpos, int head, int context);

    Normalize normalize();
}
