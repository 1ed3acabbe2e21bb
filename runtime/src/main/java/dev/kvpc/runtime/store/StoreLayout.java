package dev.kvpc.runtime.store;

/**
 * Byte accounting of stored keys or values, the layout rules of docs/ir.md ("Memory accounting"), which
 * {@code kvpc memory} predicts with: a packed b-bit element takes b/8 bytes (a row of {@code headDim} elements
 * rounds up to whole bytes); each quantisation group has an f16 zero point and scale, 4 bytes; per-token groups
 * span {@code group} channels of one token; per-channel groups span {@code group} tokens of one channel, and only
 * full groups are quantised (the rest stays at the host precision). The codecs of this package store exactly
 * these bytes.
 */
public final class StoreLayout {
    private StoreLayout() {}

    /** Bytes of one quantisation group's parameters: f16 zero point and f16 scale. */
    public static final int GROUP_PARAM_BYTES = 4;

    /** Packed bytes of one token's row (no scales): {@code ceil(headDim * bits / 8)}. */
    public static long bytesPerToken(QuantSpec spec, int headDim) {
        spec.validate(headDim);
        return spec.precision().packedBytes(headDim);
    }

    /**
     * Scale and zero-point bytes per token: 0 at a float precision; {@code headDim / group * 4} per token grouping;
     * per channel grouping, a block's {@code headDim * 4} amortised over its {@code group} tokens, rounded up when
     * it does not divide (exact figures: {@link #scaleBytes}).
     */
    public static long scaleBytesPerToken(QuantSpec spec, int headDim) {
        spec.validate(headDim);
        if (!spec.quantised()) return 0;
        if (spec.axis() == QuantSpec.Axis.TOKEN) return (long) (headDim / spec.group()) * GROUP_PARAM_BYTES;
        long block = scaleBytesPerBlock(spec, headDim);
        return (block + spec.group() - 1) / spec.group();
    }

    /** Scale and zero-point bytes of one per-channel block of {@code group} tokens: {@code headDim * 4}. */
    public static long scaleBytesPerBlock(QuantSpec spec, int headDim) {
        spec.validate(headDim);
        if (!spec.quantised() || spec.axis() != QuantSpec.Axis.CHANNEL) {
            throw new IllegalArgumentException("only per-channel quantisation has blocks: " + spec);
        }
        return (long) headDim * GROUP_PARAM_BYTES;
    }

    /**
     * Exact scale and zero-point bytes of {@code tokens} quantised tokens: per token grouping
     * {@code tokens * scaleBytesPerToken}; per channel grouping one block's parameters per full group of tokens
     * (a partial group is not quantised and has none).
     */
    public static long scaleBytes(QuantSpec spec, int headDim, long tokens) {
        spec.validate(headDim);
        if (tokens < 0) throw new IllegalArgumentException("negative token count");
        if (!spec.quantised()) return 0;
        if (spec.axis() == QuantSpec.Axis.TOKEN) return tokens * scaleBytesPerToken(spec, headDim);
        return tokens / spec.group() * scaleBytesPerBlock(spec, headDim);
    }

    /**
     * Bytes of one row record of a {@link RowCodec} (float precision, or integer per token grouping):
     * {@code bytesPerToken + scaleBytesPerToken}.
     */
    public static long rowBytes(QuantSpec spec, int headDim) {
        if (spec.quantised() && spec.axis() == QuantSpec.Axis.CHANNEL) {
            throw new IllegalArgumentException("per-channel quantisation is stored in blocks: " + spec);
        }
        return bytesPerToken(spec, headDim) + scaleBytesPerToken(spec, headDim);
    }

    /** Bytes of one {@link ChannelBlockCodec} block: {@code headDim * 4 + group * bytesPerToken}. */
    public static long blockBytes(QuantSpec spec, int headDim) {
        return scaleBytesPerBlock(spec, headDim) + spec.group() * bytesPerToken(spec, headDim);
    }
}
