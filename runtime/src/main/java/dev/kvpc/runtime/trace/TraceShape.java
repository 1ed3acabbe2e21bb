package dev.kvpc.runtime.trace;

/**
 * The model shape a trace is recorded for: {@code layers} decoder layers, {@code heads} query heads,
 * {@code kvHeads} KV heads (one lane per layer and KV head) and {@code headDim} channels per head.
 * Query head {@code h} reads KV head {@code h / group()} (MHA when {@code group() == 1}, MQA when
 * {@code kvHeads == 1}, GQA otherwise).
 */
public record TraceShape(int layers, int heads, int kvHeads, int headDim) {

    public TraceShape {
        if (layers <= 0 || heads <= 0 || kvHeads <= 0 || headDim <= 0) {
            throw new IllegalArgumentException("trace shape needs positive sizes, got layers=" + layers + " heads=" + heads
                    + " kv_heads=" + kvHeads + " head_dim=" + headDim);
        }
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("heads=" + heads + " is not a multiple of kv_heads=" + kvHeads);
        }
        if ((long) heads * headDim > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("heads=" + heads + " x head_dim=" + headDim
                    + " floats per token exceed what one Java array holds");
        }
    }

    /** Query heads per KV head. */
    public int group() {
        return heads / kvHeads;
    }

    /** The KV head whose keys and values query head {@code head} attends to. */
    public int kvHeadOf(int head) {
        if (head < 0 || head >= heads) {
            throw new IndexOutOfBoundsException("query head " + head + " outside 0.." + (heads - 1));
        }
        return head / group();
    }

    /** Floats per token and layer in one K (or V) block: {@code kvHeads * headDim}. */
    public int kvWidth() {
        return kvHeads * headDim;
    }

    /** Floats per token and layer in one Q block: {@code heads * headDim}. */
    public int qWidth() {
        return heads * headDim;
    }

    /** The same words as the text and binary headers use. */
    @Override
    public String toString() {
        return "layers=" + layers + " heads=" + heads + " kv_heads=" + kvHeads + " head_dim=" + headDim;
    }
}
