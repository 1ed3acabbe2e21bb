package dev.kvpc.runtime.policy;

/**
 * One event of a lane (or of the lanes of one layer, under per-layer selection) as compiled policy code sees it.
 *
 * <p>Numbers travel as {@code double[]} buffers, row-major over named axes given as a comma-separated list in
 * canonical order ({@code "head,token"}, {@code "query,group,token"}; {@code ""} for a scalar, one element).
 * Axis extents are named as in the loop IR: {@code len} (entries), {@code head_dim}, {@code query} (observed
 * queries), {@code group}, {@code pages}, {@code heads} (lanes handled together), {@code layers}. Ints and bools are
 * whole numbers and 0/1. Token sets are opaque handles the context creates and reads back.
 *
 * <p>A keep, evict or merge changes which entries the lane holds. A buffer over tokens computed before such an
 * effect indexes the entries as they were: compiled code asks {@link #rebase} for it re-indexed to the entries now
 * (entries that left are dropped, entries that arrived read NaN), passing the {@link #epoch} it was computed at.
 * Token sets are re-indexed by the context itself.
 */
public interface LaneContext {
    /** The extent of a named dimension now. */
    int extent(String dim);

    /**
     * The runtime's buffer for a signal ({@code kind} "signal", {@code what} its name), a state ("state", its name),
     * a fused kernel statistic ("kernelstat", {@code signal:fn:axis+axis}), a parameter or a table; {@code axes} are
     * the buffer's axes.
     */
    double[] bind(String kind, String what, String axes);

    /** A counter that changes whenever the entries of the lane change. */
    int epoch();

    /** {@code values} (over {@code axes}, computed at {@code epoch}) re-indexed to the entries now. */
    double[] rebase(double[] values, String axes, int epoch);

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
    Object where(double[] predicate, String axes);

    /**
     * The {@code count} best non-NaN candidates of {@code score} ({@code top}: highest), over {@code domain}
     * ("token" or "page"); with {@code floor >= 0}, each head first gets its best {@code floor}. Ties go to the
     * later index, then the lower head; the compensation entry never ranks. {@code algorithm} is the selection
     * pass's choice (a hint: every algorithm gives the same set).
     */
    Object rank(double[] score, String axes, boolean top, long count, long floor, String domain, String algorithm);

    /** {@code fn} one of union, diff, inter. */
    Object setOp(String fn, Object a, Object b);

    /** A set restricted to another. */
    Object withinSet(Object a, Object set);

    /** {@code values} with entries outside {@code set} set to NaN (a new buffer). */
    double[] within(double[] values, String axes, Object set);

    /** The {@code p} quantile (linear interpolation) of all of {@code values}. */
    double quantile(double[] values, String axes, double p);

    // ------------------------------------------------------------------------------------------------- effects

    void keep(Object set);

    void evict(Object set);

    void attend(Object set);

    /** {@code by}: none, cosine_k, cosine_v or nearest; {@code weight} null or a buffer over {@code weightAxes}. */
    void merge(Object source, Object dest, String by, double[] weight, String weightAxes);

    /**
     * Storage precision: {@code parts} "keys", "values" or "keys,values"; {@code format} f32, f16, bf16, int8, int4,
     * int2 or int; {@code bits} and {@code group} -1 when absent; {@code axis} token or channel; {@code scope} all,
     * for, except or otherwise ({@code set} null unless for or except).
     */
    void store(String parts, String format, long bits, String axis, long group, String scope, Object set);

    /** {@code state op value}; {@code op} one of = += -= *=. */
    void writeState(String name, String op, double[] value, String axes);

    // ------------------------------------------------------------------------------------------------- fused forms
    // What compiled code calls where a value would be made only to be consumed by the next operation. Each means
    // exactly its composition of the operations above (the default); a context may do it without the intermediate
    // buffer.

    /** {@code writeState(name, op, bind(kind, what, axes), axes)}: H2O's {@code acc += sum(attn, ...)}. */
    default void writeStateFrom(String name, String op, String kind, String what, String axes) {
        writeState(name, op, bind(kind, what, axes), axes);
    }

    /**
     * {@code rank(bind(kind, what, axes), axes, ...)}, or with a {@code set} (null: none) {@code rankWithin(bind(kind,
     * what, axes), axes, set, ...)}: a ranking of a state or a kernel statistic, which a context may read where it is
     * kept.
     */
    default Object rankBound(String kind, String what, String axes, Object set, boolean top, long count, long floor, String domain, String algorithm) {
        double[] score = bind(kind, what, axes);
        return set == null ? rank(score, axes, top, count, floor, domain, algorithm) : rankWithin(score, axes, set, top, count, floor, domain, algorithm);
    }

    /** {@code rank(within(score, axes, set), axes, ...)}: a ranking restricted to a set. */
    default Object rankWithin(double[] score, String axes, Object set, boolean top, long count, long floor, String domain, String algorithm) {
        return rank(within(score, axes, set), axes, top, count, floor, domain, algorithm);
    }
}
