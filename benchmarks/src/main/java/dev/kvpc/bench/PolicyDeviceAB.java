package dev.kvpc.bench;

import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.gpu.cl.OpenCl;
import dev.kvpc.gpu.policy.ClPolicies;

import java.util.Arrays;
import java.util.List;

/**
 * A policy step ({@link PolicyFixture}) with the policy's lane classes on an OpenCL device ({@link ClPolicies}: loop
 * nests as kernels, rankings of entries by the bitonic top-k) against the JVM backend's compiled classes, in one
 * JVM, in alternating rounds ({@link Interleaved}). Prints each side's median time per step and the median and
 * 10th-90th percentiles of the per-round ratio device / JVM (above 1: the device slower).
 *
 * <p>{@code benchmarks/policy-device-ab [policies|all] [entries, comma-separated] [rounds] [device]}
 */
public final class PolicyDeviceAB {
    private PolicyDeviceAB() {}

    private static volatile Object sink;

    public static void main(String[] args) {
        List<String> policies = args.length > 0 && !args[0].equals("all") ? List.of(args[0].split(",")) : List.of("h2o", "tova", "snapkv");
        int[] sizes;
        int rounds;
        try {
            sizes = Arrays.stream((args.length > 1 ? args[1] : "1024,4096").split(",")).mapToInt(Integer::parseInt).toArray();
            rounds = args.length > 2 ? Integer.parseInt(args[2]) : 11;
        } catch (NumberFormatException e) {
            System.err.println("policy-device-ab: " + e.getMessage() + ": sizes and rounds are whole numbers");
            System.exit(64);
            return;
        }
        for (String p : policies) {
            if (!PolicyFixture.POLICIES.contains(p)) {
                System.err.println("policy-device-ab: no policy " + p + ": one of " + PolicyFixture.POLICIES);
                System.exit(64);
            }
        }
        if (rounds < 3 || Arrays.stream(sizes).anyMatch(n -> n < 256)) {
            System.err.println("policy-device-ab: at least 3 rounds and 256 entries");
            System.exit(64);
        }
        try (ClContext cl = new ClContext(OpenCl.get().select(args.length > 3 ? args[3] : null))) {
            System.out.println("device: " + cl.device().summary());
            System.out.println("policy  entries  JVM (us)  OpenCL (us)  ratio OpenCL/JVM (10th-90th)");
            for (String p : policies) for (int n : sizes) run(p, n, rounds, cl);
        }
    }

    private static void run(String policy, int n, int rounds, ClContext cl) {
        try (PolicyFixture jvm = new PolicyFixture(policy, n); PolicyFixture device = new PolicyFixture(policy, n, s -> ClPolicies.runner(s, cl).runner())) {
            int calls = policy.equals("snapkv") ? 2 : Math.max(20, 200_000 / n);
            // warm-up: the JIT reaches the host side of both, and the device's kernels are built and run
            long warm = System.nanoTime() + 5_000_000_000L;
            for (int w = 0; w < 5 || System.nanoTime() < warm; w++) {
                time(jvm, calls);
                time(device, calls);
            }
            Interleaved.Result r = Interleaved.run(() -> time(device, calls), () -> time(jvm, calls), rounds);
            System.out.printf("%-7s %8d  %8.1f  %11.1f  %.2f (%.2f-%.2f)%n", policy, n, r.b(), r.a(), r.ratio(), r.ratioLow(), r.ratioHigh());
        }
    }

    /** Mean time in microseconds of {@code calls} steps, each timed alone. */
    private static double time(PolicyFixture f, int calls) {
        long total = 0;
        Object last = null;
        for (int i = 0; i < calls; i++) {
            f.prepare();
            long t0 = System.nanoTime();
            last = f.compiled();
            total += System.nanoTime() - t0;
        }
        sink = last;
        return total / 1e3 / calls;
    }
}
