package dev.kvpc.bench;

import dev.kvpc.backend.jvm.JvmDecodeKernels;
import dev.kvpc.runtime.Rope;
import dev.kvpc.runtime.engine.DecodeKernel;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.QuantSpec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

/**
 * Two builds of the decode template (their {@code DecodeTemplate.class} files) timed in one JVM, in alternating
 * rounds ({@link Interleaved}) over the same lane. Head dim 128 and a group of 4 unless given; prints each build's median time per
 * call, and the median and 10th-90th percentiles of the per-round ratio. It also says whether the two gave the same
 * bits. Shared JDK code is profiled once for both builds, so a build that feeds it other types (a heap segment where
 * the other reads native ones) can slow the other: compare a build with itself first.
 *
 * <p>{@code benchmarks/template-ab A.class B.class [f32|int4|int2|kivi][-slot] [entries] [rounds] [head dim] [group]}:
 * {@code kivi}: 2-bit keys per channel in blocks of 32 and values per token, the last 128 entries f32 ({@link Lanes#kivi});
 * {@code -slot}, a lane of {@code positions cache}, whose keys the kernels rotate by slot as they read them.
 */
public final class TemplateAB {
    private TemplateAB() {}

    public static void main(String[] args) throws java.io.IOException {
        if (args.length < 2) {
            System.err.println("usage: template-ab A.class B.class [f32|int4|int2|kivi][-slot] [entries] [rounds] [head dim] [group]");
            System.exit(64);
        }
        String precision = args.length > 2 ? args[2] : "f32";
        Rope rope = precision.endsWith("-slot") ? new Rope(10000) : null;
        int n, rounds, d, g;
        try {
            n = args.length > 3 ? Integer.parseInt(args[3]) : 4096;
            rounds = args.length > 4 ? Integer.parseInt(args[4]) : 20;
            d = args.length > 5 ? Integer.parseInt(args[5]) : 128;
            g = args.length > 6 ? Integer.parseInt(args[6]) : 4;
        } catch (NumberFormatException e) {
            System.err.println("template-ab: " + e.getMessage() + ": entries, rounds, head dim and group are whole numbers");
            System.exit(64);
            return;
        }
        if (n < 1 || rounds < 3 || d < 2 || d % 2 != 0 || g < 1) {
            System.err.println("template-ab: at least 1 entry and 3 rounds, an even head dim and a group of at least 1");
            System.exit(64);
        }
        for (int i = 0; i < 2; i++) {
            if (!Files.isRegularFile(Path.of(args[i]))) {
                System.err.println("template-ab: " + args[i] + ": no such class file (build that checkout first)");
                System.exit(66);
            }
        }
        DecodeKernel a = JvmDecodeKernels.template(Files.readAllBytes(Path.of(args[0])), d, g), b = JvmDecodeKernels.template(Files.readAllBytes(Path.of(args[1])), d, g);
        if (a == null || b == null) {
            System.err.println("template-ab: the template needs the Vector API (--add-modules jdk.incubator.vector)");
            System.exit(69);
        }
        QuantSpec spec;
        try {
            String format = precision.replace("-slot", "");
            // a KIVI lane starts at f32 and is then stored as KIVI stores it
            spec = Lanes.spec(format.equals("kivi") ? "f32" : format, d);
        } catch (IllegalArgumentException e) {
            System.err.println("template-ab: " + e.getMessage());
            System.exit(64);
            return;
        }
        try (PagePool pool = new PagePool()) {
            Random r = new Random(1);
            Lane lane = Lanes.random(pool, d, spec, n, r);
            if (precision.startsWith("kivi")) Lanes.kivi(lane);
            float[] q = new float[g * d], outA = new float[g * d], outB = new float[g * d];
            for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
            int calls = Math.max(20, 400_000 / n);
            for (int w = 0; w < 20; w++) {
                for (int i = 0; i < calls; i++) {
                    a.attend(lane, q, n, null, outA, null, rope);
                    b.attend(lane, q, n, null, outB, null, rope);
                }
            }
            Interleaved.Result res = Interleaved.run(() -> time(a, lane, q, n, outA, calls, rope), () -> time(b, lane, q, n, outB, calls, rope), rounds);
            System.out.printf("%s, %d entries, %d rounds of %d calls: A %.1f us, B %.1f us (medians); A/B time %.3f (10th-90th percentile %.3f-%.3f); %s%n",
                    precision, n, rounds, calls, res.a(), res.b(), res.ratio(), res.ratioLow(), res.ratioHigh(),
                    Arrays.equals(outA, outB) ? "the same bits" : "different bits");
            lane.clear();
        }
    }

    /** Mean time in microseconds of {@code calls} calls of one kernel. */
    private static double time(DecodeKernel kernel, Lane lane, float[] q, int n, float[] out, int calls, Rope rope) {
        long t0 = System.nanoTime();
        for (int i = 0; i < calls; i++) kernel.attend(lane, q, n, null, out, null, rope);
        return (System.nanoTime() - t0) / 1e3 / calls;
    }
}
