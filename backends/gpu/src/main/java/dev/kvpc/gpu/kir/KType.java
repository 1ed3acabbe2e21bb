package dev.kvpc.gpu.kir;

/**
 * The kernel IR's types. Values are {@code bool}, {@code int} (32-bit), {@code float} (32-bit) and {@code double}
 * (64-bit: the policy kernels, which compute in double as every other backend does); arrays also hold
 * {@code half} (read as and written from float) and {@code uchar} (read as and written from int): the storage forms
 * of packed KV rows.
 */
public enum KType {
    BOOL("bool"), INT("int"), FLOAT("float"), DOUBLE("double"), HALF("half"), UCHAR("uchar");

    public final String text;

    KType(String text) {
        this.text = text;
    }

    /** The type a load of an array of this element type yields, and a store takes. */
    public KType value() {
        return switch (this) {
            case HALF -> FLOAT;
            case UCHAR -> INT;
            default -> this;
        };
    }

    /** Bytes per array element. */
    public int bytes() {
        return switch (this) {
            case HALF -> 2;
            case UCHAR, BOOL -> 1;
            case DOUBLE -> 8;
            default -> 4;
        };
    }

    /** Whether values of this type are floating point (float or double). */
    public boolean real() {
        return this == FLOAT || this == DOUBLE;
    }

    public static KType of(String text) {
        for (KType t : values()) if (t.text.equals(text)) return t;
        return null;
    }
}
