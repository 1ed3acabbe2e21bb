package dev.kvpc.compiler.check;

import dev.kvpc.ir.Op;

import java.util.Locale;

/**
 * The builtins that are neither reductions ({@link Op.Red}: {@code sum}, {@code max}, {@code entropy}...) nor
 * composites ({@link Composite}: {@code variance}, {@code softmax}): one row each, with the facts the checker and the
 * lowering ask. A row with an IR primitive ({@link Op.PrimFn}) is checked and lowered from that primitive's
 * operands. The type checker, the compile-time evaluator and the lowering each switch over this enum with no
 * default, so a new row that one of them does not handle is a compile error.
 */
public enum Builtin {
    MAXPOOL(true, null, null), AVGPOOL(true, null, null),
    QUANTILE(true, null, null),
    POW(false, null, Op.Fn2.POW),
    ABS(false, Op.Fn1.ABS, null), EXP(false, Op.Fn1.EXP, null), LOG(false, Op.Fn1.LOG, null), SQRT(false, Op.Fn1.SQRT, null),
    TANH(false, Op.Fn1.TANH, null), SIGMOID(false, Op.Fn1.SIGMOID, null),
    DOT(false, null, null), SLOPE(false, null, null), TABLE(false, null, null), SHARE(false, null, null),
    FIRST(false, null, null), LAST(false, null, null), TOP(false, null, null), BOTTOM(false, null, null),
    WHERE(false, null, null), PAGES(false, null, null),
    RANK(Op.PrimFn.RANK), COUNT(Op.PrimFn.COUNT), MEMBER(Op.PrimFn.MEMBER), UNIFORM(Op.PrimFn.UNIFORM), GUMBEL(Op.PrimFn.GUMBEL),
    MAXCOS(Op.PrimFn.MAXCOS), MAXDOT(Op.PrimFn.MAXDOT), STRATA(Op.PrimFn.STRATA);

    /** Whether it takes an {@code over:} clause (pooling along an axis, a quantile over some). */
    public final boolean over;
    /** The IR function of an elementwise builtin of one argument, or null. */
    public final Op.Fn1 fn1;
    /** The IR function of an elementwise builtin of two arguments, or null. */
    public final Op.Fn2 fn2;
    /** The IR primitive it calls ({@link Op.Prim}), or null. */
    public final Op.PrimFn prim;

    Builtin(boolean over, Op.Fn1 fn1, Op.Fn2 fn2) {
        this.over = over;
        this.fn1 = fn1;
        this.fn2 = fn2;
        this.prim = null;
    }

    Builtin(Op.PrimFn prim) {
        this.over = false;
        this.fn1 = null;
        this.fn2 = null;
        this.prim = prim;
    }

    /** Its name in the language. */
    public String word() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The builtin a name calls, or null. */
    public static Builtin of(String word) {
        for (Builtin b : values()) if (b.word().equals(word)) return b;
        return null;
    }
}
