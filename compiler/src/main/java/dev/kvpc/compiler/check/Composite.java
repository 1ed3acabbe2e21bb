package dev.kvpc.compiler.check;

/**
 * Builtins defined by other operations (the compiler lowers each to the IR's own reductions and elementwise
 * functions, so their meaning is that of what they are made of): {@code f(x, over: axes)}, a float result.
 * The checker types them from this table; {@code Lowering} says what each is made of.
 */
public enum Composite {
    /** Population variance along the axes, two passes: {@code mean((x - mean(x, over))^2, over)}. */
    VARIANCE(true),
    /** {@code exp(x - max) / sum(exp(x - max))} along the axes: the shape of {@code x}, summing to 1 along them. */
    SOFTMAX(false);

    /** Whether the result lacks the axes (a reduction) or keeps the shape of {@code x}. */
    public final boolean reduces;

    Composite(boolean reduces) {
        this.reduces = reduces;
    }

    public String word() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    /** The composite a builtin's name calls, or null. */
    public static Composite of(String word) {
        for (Composite c : values()) if (c.word().equals(word)) return c;
        return null;
    }
}
