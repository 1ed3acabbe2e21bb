package dev.kvpc.ir;

import java.util.List;
import java.util.Locale;

/**
 * The operations that define values. Operands are value ids ({@code %n}) of the enclosing policy. Every op is pure;
 * effects are {@link Instr}s.
 */
public sealed interface Op {
    /** Operand ids, in order (for the verifier, CSE and dead-code elimination). */
    List<Integer> operands();

    /** A constant: a {@code Long}, {@code Double} or {@code Boolean}. */
    record Const(Object value) implements Op {
        public Const {
            if (!(value instanceof Long || value instanceof Double || value instanceof Boolean)) {
                throw new IllegalArgumentException("constant must be long, double or boolean: " + value);
            }
        }

        public List<Integer> operands() { return List.of(); }
    }

    /** A parameter of the enclosing policy (replaced by its value at specialisation). */
    record Param(String name) implements Op {
        public List<Integer> operands() { return List.of(); }
    }

    /** A signal of the host or the model ({@code attn}, {@code k}, {@code len}, {@code layer}, ...). */
    record Signal(String name) implements Op {
        public List<Integer> operands() { return List.of(); }
    }

    /** The current value of a state. */
    record StateRead(String name) implements Op {
        public List<Integer> operands() { return List.of(); }
    }

    /** A calibration table named by file (loaded at specialisation). */
    record Table(String file) implements Op {
        public List<Integer> operands() { return List.of(); }
    }

    /** Elementwise op of one operand. */
    record Map1(Fn1 fn, int x) implements Op {
        public List<Integer> operands() { return List.of(x); }
    }

    /** Elementwise op of two operands (named-axis broadcasting: the result has the union of the axes). */
    record Map2(Fn2 fn, int a, int b) implements Op {
        public List<Integer> operands() { return List.of(a, b); }
    }

    /** Elementwise {@code c ? a : b}. */
    record Choose(int cond, int a, int b) implements Op {
        public List<Integer> operands() { return List.of(cond, a, b); }
    }

    /** Reduction over axes. */
    record Reduce(Red fn, int x, List<Axis> over) implements Op {
        public Reduce {
            over = List.copyOf(over);
            if (over.isEmpty()) throw new IllegalArgumentException("reduce over no axis");
        }

        public List<Integer> operands() { return List.of(x); }
    }

    /** Sliding-window pooling along one axis, same shape; {@code kernel} is a value id (a positive int constant after folding). */
    record Pool(Red fn, int x, int kernel, Axis along) implements Op {
        public Pool {
            if (fn != Red.MAX && fn != Red.MEAN) throw new IllegalArgumentException("pool is max or mean");
        }

        public List<Integer> operands() { return List.of(x, kernel); }
    }

    /** The p-quantile of x over {@code over} axes (all axes when empty). */
    record Quantile(int x, int p, List<Axis> over) implements Op {
        public Quantile { over = List.copyOf(over); }

        public List<Integer> operands() { return List.of(x, p); }
    }

    /** Sum over channel of a product: attention variants' q.k. */
    record Dot(int a, int b) implements Op {
        public List<Integer> operands() { return List.of(a, b); }
    }

    /** ALiBi slope of a query head. */
    record Slope(int head) implements Op {
        public List<Integer> operands() { return List.of(head); }
    }

    /**
     * The {@code count} entries (or pages) ranking highest ({@code TOP}) or lowest ({@code BOTTOM}) by {@code score};
     * {@code floor} (-1 if none) is the per-head minimum of a per-layer allocation. {@code algorithm} is chosen by the
     * selection pass. Ties break toward the later position (documented in docs/semantics.md).
     */
    record Rank(Order order, int score, int count, int floor, Algorithm algorithm) implements Op {
        public List<Integer> operands() { return floor < 0 ? List.of(score, count) : List.of(score, count, floor); }
    }

    /** {@code first(n)} or {@code last(n)} entries by position. */
    record Range(End end, int count) implements Op {
        public List<Integer> operands() { return List.of(count); }
    }

    /** Every entry of the lane. */
    record All() implements Op {
        public List<Integer> operands() { return List.of(); }
    }

    /** The lane's compensation entry (empty until something is merged into it). */
    record Compensation() implements Op {
        public List<Integer> operands() { return List.of(); }
    }

    /** Entries where a per-entry predicate holds. */
    record Where(int pred) implements Op {
        public List<Integer> operands() { return List.of(pred); }
    }

    /** The entries of a set of pages. */
    record Pages(int pages) implements Op {
        public List<Integer> operands() { return List.of(pages); }
    }

    record SetOp(SetFn fn, int a, int b) implements Op {
        public List<Integer> operands() { return List.of(a, b); }
    }

    /** A per-entry score restricted to a set (entries outside never rank). */
    record Within(int x, int set) implements Op {
        public List<Integer> operands() { return List.of(x, set); }
    }

    /**
     * A statistic of the attention kernel, fused: the kernel accumulates it while computing attention instead of
     * materialising {@code attn} rows. {@code reduction} is the reduction over query rows (and group) it replaces.
     */
    record KernelStat(String signal, Red fn, List<Axis> over) implements Op {
        public KernelStat { over = List.copyOf(over); }

        public List<Integer> operands() { return List.of(); }
    }

    enum Fn1 {
        NEG, NOT, ABS, EXP, LOG, SQRT, TANH, SIGMOID, TO_INT, TO_FLOAT;

        public String word() { return name().toLowerCase(Locale.ROOT); }
    }

    enum Fn2 {
        ADD, SUB, MUL, DIV, MOD, LT, LE, GT, GE, EQ, NE, AND, OR, MAX, MIN;

        public String word() { return name().toLowerCase(Locale.ROOT); }

        public boolean comparison() { return ordinal() >= LT.ordinal() && ordinal() <= NE.ordinal(); }
    }

    enum Red {
        SUM, MEAN, MAX, MIN, NORM;

        public String word() { return name().toLowerCase(Locale.ROOT); }
    }

    enum Order {
        TOP, BOTTOM;

        public String word() { return name().toLowerCase(Locale.ROOT); }
    }

    enum End {
        FIRST, LAST;

        public String word() { return name().toLowerCase(Locale.ROOT); }
    }

    enum SetFn {
        UNION, DIFF, INTER;

        public String word() { return name().toLowerCase(Locale.ROOT); }
    }

    /** How a rank is computed: chosen by the selection pass from the sizes involved. */
    enum Algorithm {
        AUTO, MIN_TRACK, QUICKSELECT, HEAP, SORT;

        public String word() { return name().toLowerCase(Locale.ROOT); }
    }
}
