package dev.kvpc.compiler.check;

import dev.kvpc.compiler.ast.Span;

/** Compile-time values of {@link Evaluator}: what the checker knows of an expression in one lane. */
sealed interface Val {
    /** A number as a linear form (a constant when fully known). */
    record Num(Lin lin, boolean isInt) implements Val {
        static Num of(double v, boolean isInt) { return new Num(Lin.of(v), isInt); }

        boolean known() { return lin.isConstant(); }

        double value() { return lin.constant(); }
    }

    /** A truth value; {@code value} null when it depends on runtime data. */
    record Bool(Boolean value) implements Val {}

    record Str(String value, Span span) implements Val {}

    /** A loaded calibration table, rows = layers, columns = KV heads. */
    /** A calibration table: a cell per (layer, KV head), or with {@code channels} a row of channels per (layer, KV head). */
    record Table(double[][] rows, boolean channels, Span span) implements Val {}

    /**
     * A token or page set, described by what budget checks need: the most entries it can hold, the fewest it holds
     * when the lane is non-empty, how much of it is protected by position ({@code first}/{@code last}/compensation),
     * and whether it is surely non-empty.
     */
    record SetV(Lin max, Lin min, Lin protectedSize, boolean nonEmpty, Span firstSinks) implements Val {}

    /** A per-entry score restricted to a set by {@code within}: ranking it may yield nothing if the set is empty. */
    record Restricted(SetV to) implements Val {}

    /** Runtime data (per-token scores, state): nothing is known at compile time. */
    record Unknown() implements Val {}

    Unknown UNKNOWN = new Unknown();
}
