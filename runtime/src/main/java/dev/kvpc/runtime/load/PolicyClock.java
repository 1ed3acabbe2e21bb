package dev.kvpc.runtime.load;

/**
 * The watchdog of loaded policy code: its time and its allocations. The loader rewrites a jar's classes after
 * verification ({@link PolicyJarLoader#withTicks}): a call to {@link #tick} before every backward jump (every loop's
 * back edge), and a call to {@link #allocate} before every array the code creates and every JDK call that sizes an
 * array from an argument. {@link GuardedPolicy} gives each call into the jar a deadline and an allocation budget.
 *
 * <p>Past the deadline, {@code tick} throws {@link Overrun}; past the budget, {@code allocate} throws
 * {@link Overdraw}. Both are {@link Limit}s, {@link Error}s that policy code cannot catch (the verifier refuses
 * catching {@code Error} and {@code Throwable}), so a loop cannot outlive its deadline by more than the time between
 * two checks, and no array past the budget is ever allocated.
 *
 * <p>An attention variant's per-entry calls are too frequent to read the clock for each: the guard marks the thread
 * as inside one and counts them ({@link #enterUnbounded}), and a thread found inside the same such call for longer
 * than the guard's time limit is stopped the same way. Code of a jar run without a guard (a host that does not use
 * {@link GuardedPolicy}) is not watched.
 */
public final class PolicyClock {
    private PolicyClock() {
    }

    /** Checks the clock once in this many ticks: a tick is an increment and a test, a check reads the time. */
    private static final int EVERY = 1 << 14;
    /** Ticks since the last check, shared by every thread (a race only moves when the next check happens). */
    private static int ticks;

    /** The bytes one call into policy code may allocate unless {@code kvpc.policy.allocation-limit-mb} says otherwise: 1 GiB. */
    public static final long DEFAULT_ALLOCATION_LIMIT_MB = 1024;
    private static final long ALLOCATION_LIMIT = Math.max(1, Long.getLong("kvpc.policy.allocation-limit-mb", DEFAULT_ALLOCATION_LIMIT_MB)) << 20;

    /**
     * Per thread: [0] the deadline of the call into policy code in progress (System.nanoTime), 0 when none; [1] bytes
     * allocated by it; [2] how deep the thread is in calls without a deadline of their own; [3] how many such calls it
     * has begun; [4] that count at the last check; [5] when the check saw it change; [6] their time limit (ns).
     */
    private static final ThreadLocal<long[]> STATE = ThreadLocal.withInitial(() -> new long[7]);

    /** Called by instrumented policy code at every loop's back edge. */
    public static void tick() {
        if ((++ticks & (EVERY - 1)) == 0) check();
    }

    private static void check() {
        long[] s = STATE.get();
        long now = System.nanoTime();
        if (s[0] != 0) {
            if (now - s[0] > 0) throw new Overrun();
            return;
        }
        // no deadline: inside an attention variant's per-entry call, stopped once the thread has begun no other such
        // call for longer than the limit; outside one (a jar run without a guard), not watched
        if (s[2] == 0) return;
        if (s[5] == 0 || s[4] != s[3]) {
            s[4] = s[3];
            s[5] = now;
        } else if (now - s[5] > s[6]) {
            throw new Overrun();
        }
    }

    /**
     * Called by the guard as a call into policy code without a deadline of its own begins (one that may run
     * {@code limitNanos}); the guard hands the result to {@link #exitUnbounded} when it ends.
     */
    static long[] enterUnbounded(long limitNanos) {
        long[] s = STATE.get();
        s[2]++;
        s[3]++;
        s[6] = limitNanos;
        return s;
    }

    static void exitUnbounded(long[] s) {
        s[2]--;
    }

    /**
     * Called by instrumented policy code before it creates an array of {@code count} elements of {@code elementBytes}
     * bytes each (or a JDK call sizes one so); returns {@code count}. A negative count is left to the JVM's
     * {@link NegativeArraySizeException}.
     */
    public static int allocate(int count, int elementBytes) {
        if (count <= 0) return count;
        long bytes = (long) count * elementBytes;
        long[] s = STATE.get();
        // inside a guarded call the bytes add up over the call; outside one (a variant's per-entry call) each array alone
        long total = s[0] != 0 ? (s[1] += bytes) : bytes;
        if (total > ALLOCATION_LIMIT) throw new Overdraw(bytes);
        return count;
    }

    /** The allocation budget of one call, in bytes. */
    static long allocationLimit() {
        return ALLOCATION_LIMIT;
    }

    /** Starts a call into policy code that may run {@code nanos}; returns what {@link #end} restores. */
    static long begin(long nanos) {
        long[] s = STATE.get();
        long previous = s[0];
        long mine = System.nanoTime() + nanos;
        // a nested call keeps the earlier deadline and the bytes of the call it is part of
        if (previous == 0) s[1] = 0;
        s[0] = previous != 0 && previous - mine < 0 ? previous : mine;
        return previous;
    }

    static void end(long previous) {
        STATE.get()[0] = previous;
    }

    /** A limit of policy code was reached. */
    public abstract static class Limit extends Error {
        Limit(String message) {
            super(message, null, false, false);
        }
    }

    /** Policy code ran past its deadline. */
    public static final class Overrun extends Limit {
        Overrun() {
            super("ran past its time limit");
        }
    }

    /** Policy code asked for more memory than its budget. */
    public static final class Overdraw extends Limit {
        Overdraw(long bytes) {
            super("asked for " + bytes + " bytes, past its allocation limit of " + (ALLOCATION_LIMIT >> 20) + " MiB per call");
        }
    }
}
