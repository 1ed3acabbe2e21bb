package dev.kvpc.runtime.store;

import java.util.Locale;
import java.util.Objects;

/**
 * How a part (keys or values) of a lane is stored: a precision and, for integer precisions, the grouping of the
 * quantisation. With {@link Axis#TOKEN} a group is {@code group} consecutive channels of one token (so it must
 * divide the head dimension); with {@link Axis#CHANNEL} it is one channel over a block of {@code group}
 * consecutive tokens. Float precisions have no groups; their axis and group are carried but ignored.
 */
public record QuantSpec(Precision precision, Axis axis, int group) {
    /** Grouping direction of the quantisation. */
    public enum Axis {
        TOKEN, CHANNEL;

        public String word() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** Group of the interpreter's per-channel default ({@code group} left out). */
    public static final int DEFAULT_CHANNEL_GROUP = 32;

    public QuantSpec {
        Objects.requireNonNull(precision, "precision");
        Objects.requireNonNull(axis, "axis");
        if (group < 1) throw new IllegalArgumentException("quantisation group must be >= 1, got " + group);
    }

    /** A float precision (no grouping). */
    public static QuantSpec of(Precision precision) {
        if (precision.isInteger()) throw new IllegalArgumentException(precision + " needs an axis and a group");
        return FLOATS[precision.ordinal()];
    }

    /** {@link #of} of each float precision, made once: chains are asked their spec at every store. */
    private static final QuantSpec[] FLOATS = new QuantSpec[Precision.values().length];

    static {
        for (Precision p : Precision.values()) if (!p.isInteger()) FLOATS[p.ordinal()] = new QuantSpec(p, Axis.TOKEN, 1);
    }

    /**
     * The spec with the interpreter's defaults for a group {@code <= 0} (left out): the whole row per token, 32 tokens
     * per channel.
     */
    public static QuantSpec resolve(Precision precision, Axis axis, int groupOrZero, int headDim) {
        int g = groupOrZero > 0 ? groupOrZero : (axis == Axis.TOKEN ? headDim : DEFAULT_CHANNEL_GROUP);
        return new QuantSpec(precision, axis, g).validate(headDim);
    }

    /** Whether values are quantised (integer precision). */
    public boolean quantised() {
        return precision.isInteger();
    }

    /** Checks this spec against a head dimension: positive, and divisible by the group of a per-token grouping. */
    public QuantSpec validate(int headDim) {
        if (headDim < 1) throw new IllegalArgumentException("head dimension must be >= 1, got " + headDim);
        if (precision.isInteger() && axis == Axis.TOKEN && headDim % group != 0) {
            throw new IllegalArgumentException("per-token group " + group + " does not divide head dimension " + headDim);
        }
        return this;
    }

    @Override
    public String toString() {
        return precision.isInteger() ? precision.word() + " per " + axis.word() + " group " + group : precision.word();
    }
}
