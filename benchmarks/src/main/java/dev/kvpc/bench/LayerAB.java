package dev.kvpc.bench;

import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.Locale;

/**
 * A layer's decode attention on f32 lanes beside int4 and int2 lanes, in one JVM, in alternating rounds
 * ({@link Interleaved}): whether quantised lanes decode faster than f32 ones where the cache is a layer's, not one
 * lane's ({@link LayerFixture}: 8 lanes, so at 32k entries 268 MB of f32 keys and values).
 *
 * <pre>
 * benchmarks/layer-ab [entries,...] [threads] [rounds]     (defaults: 8192,32768 1 9)
 * </pre>
 */
public final class LayerAB {
    private LayerAB() {}

    public static void main(String[] args) {
        int[] sizes;
        int threads, rounds;
        try {
            sizes = Arrays.stream((args.length > 0 ? args[0] : "8192,32768").split(",")).mapToInt(Integer::parseInt).toArray();
            threads = args.length > 1 ? Integer.parseInt(args[1]) : 1;
            rounds = args.length > 2 ? Integer.parseInt(args[2]) : 9;
        } catch (NumberFormatException e) {
            System.err.println("layer-ab: " + e.getMessage() + ": entries, threads and rounds are whole numbers");
            System.exit(64);
            return;
        }
        if (rounds < 3 || threads < 1 || Arrays.stream(sizes).anyMatch(n -> n < 1)) {
            System.err.println("layer-ab: at least 3 rounds, 1 thread and 1 entry");
            System.exit(64);
        }
        System.out.printf(Locale.ROOT, "load average %.2f; %d thread(s); %d rounds%n", ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage(), threads, rounds);
        System.out.println("entries  f32 (us)  int4 (us)  speed int4/f32 (10th-90th)  f32 (us)  int2 (us)  speed int2/f32 (10th-90th)");
        for (int n : sizes) run(n, threads, rounds);
    }

    private static void run(int n, int threads, int rounds) {
        try (LayerFixture f32 = new LayerFixture(n, threads, "f32", 16);
             LayerFixture int4 = new LayerFixture(n, threads, "int4", 16);
             LayerFixture int2 = new LayerFixture(n, threads, "int2", 16)) {
            LayerFixture[] all = {f32, int4, int2};
            // warm-up: at least ten seconds and ten steps of each, so that C2 has compiled every format's kernel
            long warm = System.nanoTime() + 10_000_000_000L;
            for (int w = 0; w < 10 || System.nanoTime() < warm; w++) for (LayerFixture l : all) l.step();
            long t = System.nanoTime();
            f32.step();
            int steps = (int) Math.max(3, 400_000_000L / Math.max(1, System.nanoTime() - t)); // about 0.4 s of f32 steps a round
            Interleaved.Result a = Interleaved.run(() -> time(f32, steps), () -> time(int4, steps), rounds);
            Interleaved.Result b = Interleaved.run(() -> time(f32, steps), () -> time(int2, steps), rounds);
            System.out.printf(Locale.ROOT, "%7d  %8.0f  %9.0f  %.3f (%.3f-%.3f)        %8.0f  %9.0f  %.3f (%.3f-%.3f)%n", n,
                    a.a(), a.b(), a.ratio(), a.ratioLow(), a.ratioHigh(), b.a(), b.b(), b.ratio(), b.ratioLow(), b.ratioHigh());
        }
    }

    private static double sink;

    /** Microseconds per step over {@code steps} steps. */
    private static double time(LayerFixture l, int steps) {
        long t = System.nanoTime();
        for (int i = 0; i < steps; i++) sink += l.step()[0];
        return (System.nanoTime() - t) / 1e3 / steps;
    }
}
