package dev.kvpc.ir;

import java.util.Arrays;
import java.util.BitSet;
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
    record Signal(dev.kvpc.ir.Signal signal) implements Op {
        public List<Integer> operands() { return List.of(); }
    }

    /** The current value of a state. */
    record StateRead(String name) implements Op {
        public List<Integer> operands() { return List.of(); }
    }

    /** A calibration table named by file (loaded at specialisation). */
    record Table(String file) implements Op {
        public List<Integer> operands() { return List.of(); }

        /** The row of a channel table that holds lane (layer, head)'s channels: rows are lanes, layer-major. */
        public static int channelRow(int layer, int head, int kvHeads) {
            return layer * kvHeads + head;
        }
    }

    /**
     * A lane constant that is not a scalar: a table specialised to the lane, where the lane still has an axis of it.
     * A channel table ({@code table[channel]}) gives its row at the lane's cell, float [channel]; under per-layer
     * selection a table gives the layer's heads, float [head] or [head, channel]. {@code dims} are the extents of
     * those axes, the values row-major; both are compared by content.
     */
    record Vector(int[] dims, double[] values) implements Op {
        public Vector {
            dims = dims.clone();
            values = values.clone();
            int n = 1;
            for (int d : dims) n *= d;
            if (n != values.length) throw new IllegalArgumentException("a vector of " + java.util.Arrays.toString(dims) + " holds " + n + " values, not " + values.length);
        }

        public int[] dims() {
            return dims.clone();
        }

        public double[] values() {
            return values.clone();
        }

        public int size() {
            return values.length;
        }

        public double at(int i) {
            return values[i];
        }

        public List<Integer> operands() { return List.of(); }

        @Override
        public boolean equals(Object o) {
            return o instanceof Vector v && java.util.Arrays.equals(dims, v.dims) && java.util.Arrays.equals(values, v.values);
        }

        @Override
        public int hashCode() {
            return 31 * java.util.Arrays.hashCode(dims) + java.util.Arrays.hashCode(values);
        }

        @Override
        public String toString() {
            return "Vector" + java.util.Arrays.toString(dims) + java.util.Arrays.toString(values);
        }
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

        /**
         * The {@code p} quantile of {@code values} (sorted in place): linear interpolation between the order
         * statistics around {@code p * (n - 1)}, {@code p} clamped to [0, 1], over the {@code n} values that are not
         * NaN (the entries {@code x within S} leaves out read as NaN, and do not count); NaN of no values.
         */
        public static double of(double[] values, double p) {
            Arrays.sort(values);
            // NaN sorts last: the first n values are the numbers
            int n = values.length;
            while (n > 0 && Double.isNaN(values[n - 1])) n--;
            if (n == 0) return Double.NaN;
            double q = Math.max(0, Math.min(1, p)) * (n - 1);
            int lo = (int) Math.floor(q), hi = (int) Math.ceil(q);
            return values[lo] + (values[hi] - values[lo]) * (q - lo);
        }

        /**
         * {@code quantile(x, p, over: ...)}: for each cell of the axes not reduced, {@link #of} the values along the
         * reduced ones. {@code x} is row-major over axes of extents {@code dims}, {@code reduced[i]} marking the
         * reduced axes; the result is row-major over the others.
         */
        public static double[] along(double[] x, int[] dims, boolean[] reduced, double p) {
            int outN = 1, alongN = 1;
            for (int i = 0; i < dims.length; i++) {
                if (reduced[i]) alongN *= dims[i];
                else outN *= dims[i];
            }
            double[][] cells = new double[outN][alongN];
            int[] filled = new int[outN];
            int[] idx = new int[dims.length];
            for (int f = 0; f < x.length; f++) {
                int o = 0;
                for (int i = 0; i < dims.length; i++) if (!reduced[i]) o = o * dims[i] + idx[i];
                cells[o][filled[o]++] = x[f];
                for (int i = dims.length - 1; i >= 0; i--) {
                    if (++idx[i] < dims[i]) break;
                    idx[i] = 0;
                }
            }
            double[] out = new double[outN];
            for (int o = 0; o < outN; o++) out[o] = of(cells[o], p);
            return out;
        }
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
     * A primitive over a lane's entries that no elementwise or reduction form can say: an entry's rank, set
     * membership and size, seeded random numbers, the greatest similarity to a set's entries, a ranking cut into
     * strata. Its rule, for every engine, is in the runtime's {@code Prims}; {@link PrimFn} says what it takes.
     */
    record Prim(PrimFn fn, List<Integer> args) implements Op {
        public Prim {
            args = List.copyOf(args);
            if (args.size() != fn.operands.length) throw new IllegalArgumentException(fn.word() + " takes " + fn.operands.length + " operands");
        }

        public List<Integer> operands() { return args; }

        /**
         * The value id of the {@code nth} (0 or 1) operand of kind {@code kind}, or -1 when it takes none: how every
         * backend reads the operand list ({@code prim(values, set, rows, scalar)}: the first set, then the second).
         */
        public int operand(Operand kind, int nth) {
            int seen = 0;
            for (int i = 0; i < args.size(); i++) {
                if (fn.operands[i] != kind) continue;
                if (seen++ == nth) return args.get(i);
            }
            return -1;
        }
    }

    /** What an operand of a {@link Prim} is. */
    enum Operand {
        /** Numbers over the lane's entries (and maybe channels, and the head under per-layer selection). */
        VALUES,
        /** A token set. */
        SET,
        /** An int or float scalar. */
        SCALAR
    }

    /** The primitives of {@link Prim}: each its word in the language and its operands, in order. */
    enum PrimFn {
        /** {@code rank(s)}: each entry's place in {@code top}'s order of {@code s} (0: the best), a float: NaN where it cannot rank. */
        RANK(Operand.VALUES),
        /** {@code count(S)}: the number of entries of {@code S}. */
        COUNT(Operand.SET),
        /** {@code member(S)}: per entry, whether it belongs to {@code S}. */
        MEMBER(Operand.SET),
        /** {@code uniform(seed)}: per entry, a number in (0, 1) fixed by the seed, step, layer, KV head and position. */
        UNIFORM(Operand.SCALAR),
        /** {@code gumbel(seed)}: per entry, {@code -log(-log(u))} of the same {@code u} as {@code uniform(seed)}. */
        GUMBEL(Operand.SCALAR),
        /**
         * {@code maxcos(x, S, R)}: per entry of R (every entry when written {@code maxcos(x, S)}), its greatest cosine
         * similarity (over channel) to another entry of S; NaN outside R.
         */
        MAXCOS(Operand.VALUES, Operand.SET, Operand.SET),
        /** {@code maxdot(x, S, R)}: as {@link #MAXCOS}, the greatest dot product. */
        MAXDOT(Operand.VALUES, Operand.SET, Operand.SET),
        /** {@code strata(s, n)}: {@code top}'s order of {@code s} cut into {@code n} equal strata, the best of each. */
        STRATA(Operand.VALUES, Operand.SCALAR);

        public final Operand[] operands;

        PrimFn(Operand... operands) {
            this.operands = operands;
        }

        public String word() { return name().toLowerCase(Locale.ROOT); }

        /** Whether its result is a token set (else numbers). */
        public boolean setResult() { return this == STRATA; }

        /** The primitive a builtin's name calls, or null. */
        public static PrimFn of(String word) {
            for (PrimFn f : values()) if (f.word().equals(word)) return f;
            return null;
        }
    }

    /**
     * A statistic over every cell of a {@code per model} state (all its location axes, {@code over}), as the state
     * holds it now: a reduction of {@link Red}'s table, or {@link CellStat#SHARE}, the lane's own cell's part of the
     * cells' total. The rule is the runtime's {@code ModelCells}, which every engine calls.
     */
    record ModelStat(CellStat stat, String state, List<Axis> over) implements Op {
        public ModelStat { over = List.copyOf(over); }

        public List<Integer> operands() { return List.of(); }
    }

    /** What {@link ModelStat} computes over a model state's cells: a reduction, or the own cell's share. */
    enum CellStat {
        SUM(Red.SUM), MEAN(Red.MEAN), MAX(Red.MAX), MIN(Red.MIN), NORM(Red.NORM), ENTROPY(Red.ENTROPY),
        /**
         * {@code share(total, w)}'s fraction: {@code max(own, 0) / sum(max(cell, 0))} over the cells, or
         * {@code 1 / cells} when no cell is positive; in [0, 1], and the fractions of all cells add up to 1.
         */
        SHARE(null);

        /** The reduction it is (null for {@link #SHARE}). */
        public final Red red;

        CellStat(Red red) {
            this.red = red;
        }

        public String word() { return name().toLowerCase(Locale.ROOT); }

        public static CellStat of(Red r) {
            for (CellStat c : values()) if (c.red == r) return c;
            throw new IllegalArgumentException("no cell statistic for " + r);
        }
    }

    /**
     * A statistic of the attention kernel, fused: the kernel accumulates it while computing attention instead of
     * materialising {@code attn} rows. {@code reduction} is the reduction over query rows (and group) it replaces.
     */
    record KernelStat(dev.kvpc.ir.Signal input, Red fn, List<Axis> over) implements Op {
        public KernelStat { over = List.copyOf(over); }

        public List<Integer> operands() { return List.of(); }
    }

    enum Fn1 {
        NEG, NOT, ABS, EXP, LOG, SQRT, TANH, SIGMOID, TO_INT, TO_FLOAT;

        public String word() { return name().toLowerCase(Locale.ROOT); }

        /** The function on doubles (booleans are 0 and 1): the rule every evaluator of the IR uses. */
        public double apply(double x) {
            return switch (this) {
                case NEG -> -x;
                case NOT -> x == 0 ? 1 : 0;
                case ABS -> Math.abs(x);
                case EXP -> Math.exp(x);
                case LOG -> Math.log(x);
                case SQRT -> Math.sqrt(x);
                case TANH -> Math.tanh(x);
                case SIGMOID -> 1 / (1 + Math.exp(-x));
                case TO_INT -> (double) (long) x;
                case TO_FLOAT -> x;
            };
        }
    }

    enum Fn2 {
        ADD, SUB, MUL, DIV, MOD, LT, LE, GT, GE, EQ, NE, AND, OR, MAX, MIN, POW;

        public String word() { return name().toLowerCase(Locale.ROOT); }

        public boolean comparison() { return ordinal() >= LT.ordinal() && ordinal() <= NE.ordinal(); }

        /** The function on doubles (booleans are 0 and 1): the rule every evaluator of the IR uses. */
        public double apply(double a, double b) {
            return switch (this) {
                case ADD -> a + b;
                case SUB -> a - b;
                case MUL -> a * b;
                case DIV -> a / b;
                case MOD -> b == 0 ? Double.NaN : a % b;
                case LT -> a < b ? 1 : 0;
                case LE -> a <= b ? 1 : 0;
                case GT -> a > b ? 1 : 0;
                case GE -> a >= b ? 1 : 0;
                case EQ -> a == b ? 1 : 0;
                case NE -> a != b ? 1 : 0;
                case AND -> a != 0 && b != 0 ? 1 : 0;
                case OR -> a != 0 || b != 0 ? 1 : 0;
                case MAX -> Math.max(a, b);
                case MIN -> Math.min(a, b);
                case POW -> Math.pow(a, b);
            };
        }
    }

    /**
     * A scalar formula over numbered variables, built from the IR's own functions: how a reduction maps each value
     * before folding it and finishes its result. Evaluated here ({@link #eval}) by the interpreter and the runtime,
     * lowered to loop expressions by the loop IR, so that a rule stated once is the same everywhere.
     */
    sealed interface Scalar {
        /** Variable {@code i}: the value (or the fold) for 0, the count of values folded for 1. */
        record Var(int i) implements Scalar {}

        record Num(double value) implements Scalar {}

        record Un(Fn1 fn, Scalar x) implements Scalar {}

        record Bin(Fn2 fn, Scalar a, Scalar b) implements Scalar {}

        /** {@code cond != 0 ? a : b}. */
        record If(Scalar cond, Scalar a, Scalar b) implements Scalar {}

        Scalar V = new Var(0), N = new Var(1), ZERO = new Num(0.0);

        default double eval(double v, double n) {
            return switch (this) {
                case Var x -> x.i() == 0 ? v : n;
                case Num c -> c.value();
                case Un u -> u.fn().apply(u.x().eval(v, n));
                case Bin b -> b.fn().apply(b.a().eval(v, n), b.b().eval(v, n));
                case If f -> f.cond().eval(v, n) != 0 ? f.a().eval(v, n) : f.b().eval(v, n);
            };
        }
    }

    /**
     * A reduction, whole: how each value is mapped ({@code pre}, over {@link Scalar#V}; null: as it is), the fold
     * ({@code acc}: SUM, MAX or MIN, from its identity), how the result comes from the fold and the count of values
     * ({@code post}, over V and {@link Scalar#N}; null: the fold), and the facts the checker and the passes ask. The
     * interpreter, the runtime and the loop lowering all derive from this; a new reduction is a new constant, and its
     * word is the builtin's name ({@code entropy(x, over: token)}).
     */
    enum Red {
        SUM(null, Fold.SUM, null, false, true, true),
        /** The mean; 0 over no values. */
        MEAN(null, Fold.SUM, new Scalar.If(new Scalar.Bin(Fn2.EQ, Scalar.N, Scalar.ZERO), Scalar.ZERO, new Scalar.Bin(Fn2.DIV, Scalar.V, Scalar.N)),
                true, true, false),
        MAX(null, Fold.MAX, null, false, true, true),
        MIN(null, Fold.MIN, null, false, false, true),
        /** The Euclidean norm. */
        NORM(new Scalar.Bin(Fn2.MUL, Scalar.V, Scalar.V), Fold.SUM, new Scalar.Un(Fn1.SQRT, Scalar.V), true, false, false),
        /** The Shannon entropy (nats) of a distribution: the sum of -p log p over its positive entries. */
        ENTROPY(new Scalar.If(new Scalar.Bin(Fn2.GT, Scalar.V, Scalar.ZERO),
                new Scalar.Bin(Fn2.SUB, Scalar.ZERO, new Scalar.Bin(Fn2.MUL, Scalar.V, new Scalar.Un(Fn1.LOG, Scalar.V))), Scalar.ZERO),
                Fold.SUM, null, true, false, false);

        /** How values fold: each has its identity. */
        public enum Fold {
            SUM(0.0), MAX(Double.NEGATIVE_INFINITY), MIN(Double.POSITIVE_INFINITY);

            public final double identity;

            Fold(double identity) {
                this.identity = identity;
            }

            public double apply(double acc, double v) {
                return switch (this) {
                    case SUM -> acc + v;
                    case MAX -> Math.max(acc, v);
                    case MIN -> Math.min(acc, v);
                };
            }
        }

        public final Scalar pre, post;
        public final Fold fold;
        /** Whether the result is a float whatever the input (a mean of ints is not an int). */
        public final boolean floatResult;
        /** Whether a reduction of attention over queries may be named a kernel statistic (FuseStatistics). */
        public final boolean kernelStatistic;
        /** Whether a per-page state reducing tokens may be kept up to date page by page (Incrementalize). */
        public final boolean incremental;

        Red(Scalar pre, Fold fold, Scalar post, boolean floatResult, boolean kernelStatistic, boolean incremental) {
            this.pre = pre;
            this.fold = fold;
            this.post = post;
            this.floatResult = floatResult;
            this.kernelStatistic = kernelStatistic;
            this.incremental = incremental;
        }

        public String word() { return name().toLowerCase(Locale.ROOT); }

        /** The reduction a builtin's name calls, or null. */
        public static Red of(String word) {
            for (Red r : values()) if (r.word().equals(word)) return r;
            return null;
        }

        public double identity() {
            return fold.identity;
        }

        /** {@code acc} with value {@code v} folded in. */
        public double fold(double acc, double v) {
            return fold.apply(acc, pre == null ? v : pre.eval(v, 0));
        }

        /** Whether {@link #finish} of {@code count} values is the fold divided by {@code count} (a mean of some values). */
        public boolean dividesBy(double count) {
            return this == MEAN && count != 0;
        }

        /** The reduction of all of {@code values}, folded in their order. */
        public double all(double[] values) {
            double acc = identity();
            for (double v : values) acc = fold(acc, v);
            return finish(acc, values.length);
        }

        /** The result from the fold of {@code count} values. */
        public double finish(double acc, double count) {
            return post == null ? acc : post.eval(acc, count);
        }

        /**
         * {@link #finish} of every fold in {@code acc}, each of {@code count} values, in place: the same results, a
         * mean over values by one division per cell.
         */
        public void finish(double[] acc, double count) {
            if (post == null) return;
            if (dividesBy(count)) {
                for (int i = 0; i < acc.length; i++) acc[i] /= count;
                return;
            }
            for (int i = 0; i < acc.length; i++) acc[i] = finish(acc[i], count);
        }
    }

    enum Order {
        TOP, BOTTOM;

        public String word() { return name().toLowerCase(Locale.ROOT); }
    }

    enum End {
        FIRST, LAST;

        public String word() { return name().toLowerCase(Locale.ROOT); }
    }

    /**
     * Set algebra over entries, whole: how each head's members combine, and whether the lane's compensation entry
     * (a member whether or not it exists yet) belongs to the result. The interpreter and the runtime both call it.
     */
    enum SetFn {
        UNION, DIFF, INTER;

        public String word() { return name().toLowerCase(Locale.ROOT); }

        /** {@code a} combined with {@code b}, in place ({@code a} is the result). */
        public BitSet apply(BitSet a, BitSet b) {
            switch (this) {
                case UNION -> a.or(b);
                case DIFF -> a.andNot(b);
                case INTER -> a.and(b);
            }
            return a;
        }

        /** {@link #apply} of {@code a} and the run {@code [from, to)}, in place ({@code a} is the result). */
        public BitSet applyRun(BitSet a, int from, int to) {
            switch (this) {
                case UNION -> a.set(from, Math.max(from, to));
                case DIFF -> a.clear(from, Math.max(from, to));
                case INTER -> {
                    a.clear(0, from);
                    a.clear(Math.max(from, to), Math.max(Math.max(from, to), a.length()));
                }
            }
            return a;
        }

        /**
         * {@link #apply} of the runs {@code [aFrom, aTo)} and {@code [bFrom, bTo)}: the result as one run
         * ({@link Runs}), or {@link Runs#NONE} when it is not one run.
         */
        public long run(int aFrom, int aTo, int bFrom, int bTo) {
            boolean aEmpty = aTo <= aFrom, bEmpty = bTo <= bFrom;
            return switch (this) {
                case UNION -> {
                    if (aEmpty) yield Runs.of(bFrom, bTo);
                    if (bEmpty) yield Runs.of(aFrom, aTo);
                    yield aFrom <= bTo && bFrom <= aTo ? Runs.of(Math.min(aFrom, bFrom), Math.max(aTo, bTo)) : Runs.NONE;
                }
                case INTER -> Runs.of(Math.max(aFrom, bFrom), Math.min(aTo, bTo));
                case DIFF -> {
                    if (aEmpty || bEmpty || bTo <= aFrom || bFrom >= aTo) yield Runs.of(aFrom, aTo);
                    if (bFrom <= aFrom) yield Runs.of(Math.min(aTo, bTo), aTo);
                    yield bTo >= aTo ? Runs.of(aFrom, bFrom) : Runs.NONE;
                }
            };
        }

        /** Whether the compensation entry is a member of the result, from its membership of {@code a} and {@code b}. */
        public boolean compensation(boolean a, boolean b) {
            return switch (this) {
                case UNION -> a || b;
                case DIFF -> a && !b;
                case INTER -> a && b;
            };
        }
    }

    /** How a rank is computed: chosen by the selection pass from the sizes involved. */
    enum Algorithm {
        AUTO, MIN_TRACK, QUICKSELECT, HEAP, SORT;

        public String word() { return name().toLowerCase(Locale.ROOT); }
    }
}
