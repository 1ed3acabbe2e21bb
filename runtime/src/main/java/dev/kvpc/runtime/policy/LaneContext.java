package dev.kvpc.runtime.policy;

import dev.kvpc.ir.Axis;
import dev.kvpc.ir.Instr;
import dev.kvpc.ir.Op;
import dev.kvpc.ir.Signal;

/**
 * One event of a lane (or of the lanes of one layer, under per-layer selection) as compiled policy code sees it.
 * The interface is typed: signals, reductions, set operations, merge rules, formats and scopes are the IR's own
 * enums ({@link Signal}, {@link Op.Red}, {@link Op.SetFn}, {@link Instr.MergeBy}, {@link Instr.Format},
 * {@link Instr.Scope}...), which compiled code reads as constants; nothing is parsed from text at run time.
 *
 * <p>Numbers travel as {@code double[]} buffers, row-major over axes in canonical order, named by an axis mask
 * ({@link Axis#mask}: bit {@code 1 << ordinal} per axis; 0 for a scalar, one element); {@link #extent} gives each
 * axis's length. Ints and bools are whole numbers and 0/1.
 * Token sets are opaque handles the context creates and reads back. States are named as the policy declares them.
 *
 * <p>A keep, evict or merge changes which entries the lane holds. A buffer over tokens computed before such an
 * effect indexes the entries as they were: compiled code asks {@link #rebase} for it re-indexed to the entries now
 * (entries that left are dropped, entries that arrived read NaN), passing the {@link #epoch} it was computed at.
 * Token sets are re-indexed by the context itself.
 */
public interface LaneContext {
    /**
     * The extent of an axis now: entries ({@code TOKEN}), pages, observed queries, the group, channels, the lanes
     * handled together ({@code HEAD}) or the model's layers.
     */
    int extent(Axis axis);

    /** The runtime's buffer for a signal, over {@code axes}. */
    double[] signal(Signal signal, int axes);

    /** A state's current values, over {@code axes}. */
    double[] state(String name, int axes);

    /**
     * A statistic over every cell of a {@code per model} state ({@link Op.ModelStat}): a scalar, as the cells are now
     * (what earlier lanes and layers of this step wrote included).
     */
    double[] modelStat(Op.CellStat stat, String state, int axes);

    /**
     * A kernel statistic: {@code fn} of {@code signal} (attn or logits) over the axes {@code over} (a mask; query
     * among them), accumulated by the attention kernel where it can be; the result over {@code axes}.
     */
    double[] kernelStat(Signal signal, Op.Red fn, int over, int axes);

    /** A counter that changes whenever the entries of the lane change. */
    int epoch();

    /** {@code values} (over {@code axes}, computed at {@code epoch}) re-indexed to the entries now. */
    double[] rebase(double[] values, int axes, int epoch);

    // ------------------------------------------------------------------------------------------------- sets

    /** Every entry (the compensation entry included). */
    Object all();

    /** The compensation entry (empty while there is none; a merge into it creates it). */
    Object compensation();

    /** The first or last {@code count} regular entries of each lane. */
    Object range(boolean last, long count);

    /** The entries of the pages in a set of pages. */
    Object pages(Object pageSet);

    /** The entries (or pages, by {@code axes}) whose predicate is non-zero. */
    Object where(double[] predicate, int axes);

    /**
     * The {@code count} best non-NaN candidates of {@code score} ({@code top}: highest), over {@code domain}
     * (token or page); with {@code floor >= 0}, each head first gets its best {@code floor}. Ties go to the later
     * index, then the lower head; the compensation entry never ranks. {@code algorithm} is the selection pass's
     * choice (a hint: every algorithm gives the same set).
     */
    Object rank(double[] score, int axes, boolean top, long count, long floor, Axis domain, Op.Algorithm algorithm);

    /** {@code a fn b} ({@link Op.SetFn}). */
    Object setOp(Op.SetFn fn, Object a, Object b);

    /** A set restricted to another. */
    Object withinSet(Object a, Object set);

    /** {@code values} with entries outside {@code set} set to NaN (a new buffer). */
    double[] within(double[] values, int axes, Object set);

    /** The {@code p} quantile (linear interpolation) of all of {@code values}. */
    double quantile(double[] values, int axes, double p);

    /**
     * {@code quantile(values, p, over: ...)}: the {@code p} quantile along the axes of the mask {@code over}, for each
     * cell of the other axes of {@code values} ({@link Op.Quantile#along}).
     */
    default double[] quantileAlong(double[] values, int axes, int over, double p) {
        java.util.List<dev.kvpc.ir.Axis> all = dev.kvpc.ir.Axis.of(axes);
        int[] dims = new int[all.size()];
        boolean[] reduced = new boolean[all.size()];
        for (int i = 0; i < dims.length; i++) {
            dims[i] = extent(all.get(i));
            reduced[i] = (over & 1 << all.get(i).ordinal()) != 0;
        }
        return Op.Quantile.along(values, dims, reduced, p);
    }

    /**
     * A primitive with a numeric result ({@link Op.PrimFn}, by {@code dev.kvpc.runtime.exec.Prims}' rules): its
     * operands are {@code values} over {@code valueAxes} (null when it takes none), its first set {@code set} and its
     * second {@code rows} (null when none) and the scalar {@code arg} (0 when none); the result over {@code axes}.
     */
    double[] prim(Op.PrimFn fn, double[] values, int valueAxes, Object set, Object rows, double arg, int axes);

    /** A primitive whose result is a token set ({@code strata}), with operands as {@link #prim} takes them. */
    Object primSet(Op.PrimFn fn, double[] values, int valueAxes, double arg);

    // ------------------------------------------------------------------------------------------------- effects

    void keep(Object set);

    void evict(Object set);

    void attend(Object set);

    /** {@code weight} null or a buffer over {@code weightAxes}. */
    void merge(Object source, Object dest, Instr.MergeBy by, double[] weight, int weightAxes);

    /**
     * Storage precision of the parts named ({@code keys}, {@code values}): {@code bits} and {@code group} -1 when
     * absent; {@code axis} null unless the format is an integer one; {@code set} null unless the scope is for or
     * except.
     */
    void store(boolean keys, boolean values, Instr.Format format, long bits, Instr.QuantAxis axis, long group, Instr.Scope scope, Object set);

    /** {@code state op value}. */
    void writeState(String name, Instr.Assign op, double[] value, int axes);

    // ------------------------------------------------------------------------------------------------- fused forms
    // What compiled code calls where a value would be made only to be consumed by the next operation. Each means
    // exactly its composition of the operations above (the default); a context may do it without the intermediate
    // buffer.

    /** {@code writeState(name, op, kernelStat(signal, fn, over, axes), axes)}: H2O's {@code acc += sum(attn, ...)}. */
    default void writeStateFrom(String name, Instr.Assign op, Signal signal, Op.Red fn, int over, int axes) {
        writeState(name, op, kernelStat(signal, fn, over, axes), axes);
    }

    /**
     * {@code rank(state(name, axes), axes, ...)}, or with a {@code set} (null: none) {@code rankWithin(state(name,
     * axes), axes, set, ...)}: a ranking of a state, which a context may read where it is kept.
     */
    default Object rankState(String name, int axes, Object set, boolean top, long count, long floor, Axis domain, Op.Algorithm algorithm) {
        double[] score = state(name, axes);
        return set == null ? rank(score, axes, top, count, floor, domain, algorithm) : rankWithin(score, axes, set, top, count, floor, domain, algorithm);
    }

    /** As {@link #rankState}, of {@code kernelStat(signal, fn, over, axes)}. */
    default Object rankKernelStat(Signal signal, Op.Red fn, int over, int axes, Object set, boolean top, long count, long floor, Axis domain,
                                  Op.Algorithm algorithm) {
        double[] score = kernelStat(signal, fn, over, axes);
        return set == null ? rank(score, axes, top, count, floor, domain, algorithm) : rankWithin(score, axes, set, top, count, floor, domain, algorithm);
    }

    /** {@code rank(within(score, axes, set), axes, ...)}: a ranking restricted to a set. */
    default Object rankWithin(double[] score, int axes, Object set, boolean top, long count, long floor, Axis domain, Op.Algorithm algorithm) {
        return rank(within(score, axes, set), axes, top, count, floor, domain, algorithm);
    }
}
