package dev.kvpc.bench;

import java.util.Arrays;
import java.util.List;

/**
 * Compiled and hand-written policy steps ({@link PolicyFixture}) timed in one JVM, in alternating rounds
 * ({@link Interleaved}): on a noisy 2-core machine separate JMH forks of the two disagree by more than the gap being
 * measured. Each side has its own lane; each step is timed alone, with the untimed {@link PolicyFixture#prepare}
 * between steps. Lanes are filled once, so a step's one-off work on a fresh lane (KIVI quantising all but the window
 * at its first step) is warm-up, not measured. For each policy and size it prints each side's median time per step
 * and the median and 10th-90th percentiles of the per-round ratio hand-written / compiled time (above 1: compiled
 * faster).
 *
 * <p>{@code benchmarks/policy-ab [policies, comma-separated|all] [entries, comma-separated] [rounds]}
 */
public final class PolicyAB {
    private PolicyAB() {}

    private static volatile Object sink;

    public static void main(String[] args) {
        List<String> policies = args.length > 0 && !args[0].equals("all") ? List.of(args[0].split(",")) : PolicyFixture.POLICIES;
        int[] sizes;
        int rounds;
        try {
            sizes = Arrays.stream((args.length > 1 ? args[1] : "4096,16384").split(",")).mapToInt(Integer::parseInt).toArray();
            rounds = args.length > 2 ? Integer.parseInt(args[2]) : 21;
        } catch (NumberFormatException e) {
            System.err.println("policy-ab: " + e.getMessage() + ": sizes and rounds are whole numbers");
            System.exit(64);
            return;
        }
        for (String p : policies) {
            if (!PolicyFixture.POLICIES.contains(p)) {
                System.err.println("policy-ab: no policy " + p + ": one of " + PolicyFixture.POLICIES);
                System.exit(64);
            }
        }
        for (int n : sizes) {
            if (n < 256) {
                System.err.println("policy-ab: " + n + " entries: at least 256 (KIVI keeps the last 128 at full precision)");
                System.exit(64);
            }
        }
        if (rounds < 3) {
            System.err.println("policy-ab: at least 3 rounds");
            System.exit(64);
        }
        System.out.println("policy  entries  compiled (us)  hand-written (us)  ratio hand/compiled (10th-90th)");
        for (String p : policies) for (int n : sizes) run(p, n, rounds);
    }

    private static void run(String policy, int n, int rounds) {
        try (PolicyFixture compiled = new PolicyFixture(policy, n); PolicyFixture hand = new PolicyFixture(policy, n)) {
            // about 0.2 s of steps per side and round
            int calls = policy.equals("snapkv") ? Math.max(2, 2_000_000 / n / 64) : Math.max(200, 4_000_000 / n);
            // warm-up as JMH's five one-second iterations per side: C2 reaches the steps' code only after many
            long warm = System.nanoTime() + 10_000_000_000L;
            for (int w = 0; w < 10 || System.nanoTime() < warm; w++) {
                time(compiled, true, calls);
                time(hand, false, calls);
            }
            Interleaved.Result r = Interleaved.run(() -> time(hand, false, calls), () -> time(compiled, true, calls), rounds);
            System.out.printf("%-7s %8d  %13.2f  %17.2f  %.3f (%.3f-%.3f)%n", policy, n, r.b(), r.a(), r.ratio(), r.ratioLow(), r.ratioHigh());
        }
    }

    /** Mean time in microseconds of {@code calls} steps of one side, each timed alone. */
    private static double time(PolicyFixture f, boolean compiled, int calls) {
        long total = 0;
        Object last = null;
        for (int i = 0; i < calls; i++) {
            f.prepare();
            long t0 = System.nanoTime();
            last = compiled ? f.compiled() : f.handWritten();
            total += System.nanoTime() - t0;
        }
        sink = last;
        return total / 1e3 / calls;
    }
}
