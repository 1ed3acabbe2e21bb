package dev.kvpc.runtime.store;

import java.util.Locale;

/** Storage precision of one element of a key or value row. */
public enum Precision {
    F32(32), F16(16), BF16(16), INT8(8), INT4(4), INT2(2);

    private final int bits;

    Precision(int bits) {
        this.bits = bits;
    }

    /** Bits per element. */
    public int bits() {
        return bits;
    }

    /** True for the quantised (integer) precisions, which need a scale and zero point per group. */
    public boolean isInteger() {
        return this == INT8 || this == INT4 || this == INT2;
    }

    /** Largest code, {@code 2^bits - 1}, of an integer precision. */
    public int levels() {
        if (!isInteger()) throw new IllegalStateException(this + " is not an integer precision");
        return (1 << bits) - 1;
    }

    /** Bytes of {@code elements} packed elements: {@code ceil(elements * bits / 8)}. */
    public long packedBytes(long elements) {
        if (elements < 0) throw new IllegalArgumentException("negative element count");
        return (elements * bits + 7) / 8;
    }

    public String word() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The precision of an integer width (8, 4 or 2 bits). */
    /** The precision a storage rule's format names ({@code int} with its {@code bits}). */
    public static Precision of(dev.kvpc.ir.Instr.Format format, int bits) {
        return switch (format) {
            case F32 -> F32;
            case F16 -> F16;
            case BF16 -> BF16;
            case INT8 -> INT8;
            case INT4 -> INT4;
            case INT2 -> INT2;
            case INT -> ofIntBits(bits);
        };
    }

    public static Precision ofIntBits(int bits) {
        return switch (bits) {
            case 8 -> INT8;
            case 4 -> INT4;
            case 2 -> INT2;
            default -> throw new IllegalArgumentException("no packed integer precision of " + bits + " bits (8, 4 or 2)");
        };
    }
}
