package dev.kvpc.runtime.load;

/**
 * The watchdog of loaded policy code. The loader puts a call to {@link #tick} before every backward jump of a jar's
 * classes (every loop's back edge), after verification; {@link GuardedPolicy} gives each call into the jar a
 * deadline. Past it, {@code tick} throws {@link Overrun}, an {@link Error} that policy code cannot catch (the
 * verifier refuses catching {@code Error} and {@code Throwable}), and keeps throwing it until the call returns, so
 * no loop outlives its deadline by more than the time between two checks.
 */
public final class PolicyClock {
    private PolicyClock() {
    }

    /** Checks the clock once in this many ticks: a tick is an increment and a test, a check reads the time. */
    private static final int EVERY = 1 << 14;
    /** Ticks since the last check, shared by every thread (a race only moves when the next check happens). */
    private static int ticks;
    /** Per thread: the deadline of the call into policy code in progress (System.nanoTime), 0 when none. */
    private static final ThreadLocal<long[]> DEADLINE = ThreadLocal.withInitial(() -> new long[1]);

    /** Called by instrumented policy code at every loop's back edge. */
    public static void tick() {
        if ((++ticks & (EVERY - 1)) == 0) check();
    }

    private static void check() {
        long d = DEADLINE.get()[0];
        if (d != 0 && System.nanoTime() - d > 0) throw new Overrun();
    }

    /** Starts a call into policy code that may run {@code nanos}; returns what {@link #end} restores. */
    static long begin(long nanos) {
        long[] d = DEADLINE.get();
        long previous = d[0];
        long mine = System.nanoTime() + nanos;
        // a nested call keeps the earlier deadline
        d[0] = previous != 0 && previous - mine < 0 ? previous : mine;
        return previous;
    }

    static void end(long previous) {
        DEADLINE.get()[0] = previous;
    }

    /** Policy code ran past its deadline. */
    public static final class Overrun extends Error {
        Overrun() {
            super("ran past its time limit", null, false, false);
        }
    }
}
