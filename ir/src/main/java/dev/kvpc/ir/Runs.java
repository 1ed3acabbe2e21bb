package dev.kvpc.ir;

/**
 * A run of entries {@code [from, to)} packed in a long ({@code from << 32 | to}), the form a set takes when its
 * members are consecutive (all entries, {@code first(n)}, {@code last(n)} and what set algebra and store scopes make
 * of them). {@link #NONE} says a result is not one run. Engines that keep such sets as runs use the run forms of the
 * rules ({@link Op.SetFn#run}, {@link Instr.Scope#coveredRun}), which agree with the rules on bits.
 */
public final class Runs {
    private Runs() {}

    /** Not one run. */
    public static final long NONE = -1;

    /** The run {@code [from, to)} (empty when {@code to <= from}: then {@code [from, from)}). */
    public static long of(int from, int to) {
        if (from < 0) throw new IllegalArgumentException("run from " + from);
        return (long) from << 32 | Math.max(from, to);
    }

    public static int from(long run) {
        return (int) (run >>> 32);
    }

    public static int to(long run) {
        return (int) run;
    }
}
