package dev.kvpc.bench;

import dev.kvpc.runtime.engine.DecodeKernel;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

/**
 * Two builds of the decode template (their {@code DecodeTemplate.class} files) timed in one JVM, in alternating
 * rounds over the same lane, so that the machine's slow spells fall on both: on a noisy 2-core machine this separates
 * a few percent where separate JMH forks cannot. Head dim 128, a group of 4; prints each build's median time per
 * call, and the median and 10th-90th percentiles of the per-round ratio. It also says whether the two gave the same
 * bits. Shared JDK code is profiled once for both builds, so a build that feeds it other types (a heap segment where
 * the other reads native ones) can slow the other: compare a build with itself first.
 *
 * <p>{@code benchmarks/template-ab A.class B.class [f32|int4|int2] [entries] [rounds]}
 */
public final class TemplateAB {
    private TemplateAB() {}

    static DecodeKernel define(byte[] bytes, int[] shape) throws Throwable {
        Class<?> anchor = Class.forName("dev.kvpc.backend.jvm.DecodeTemplates");
        MethodHandles.Lookup l = MethodHandles.privateLookupIn(anchor, MethodHandles.lookup()).defineHiddenClassWithClassData(bytes, shape, true);
        return (DecodeKernel) l.findConstructor(l.lookupClass(), MethodType.methodType(void.class)).invoke();
    }

    public static void main(String[] args) throws Throwable {
        if (args.length < 2) {
            System.err.println("usage: template-ab A.class B.class [f32|int4|int2] [entries] [rounds]");
            System.exit(64);
        }
        String precision = args.length > 2 ? args[2] : "f32";
        int d = 128, g = 4, n = args.length > 3 ? Integer.parseInt(args[3]) : 4096, rounds = args.length > 4 ? Integer.parseInt(args[4]) : 20;
        int[] shape = {d, g, lanes(d), 4}; // as DecodeTemplates shapes it: the widest lanes dividing the head dim, heads in fours
        for (int i = 0; i < 2; i++) {
            if (!Files.isRegularFile(Path.of(args[i]))) {
                System.err.println("template-ab: " + args[i] + ": no such class file (build that checkout first)");
                System.exit(66);
            }
        }
        DecodeKernel a = define(Files.readAllBytes(Path.of(args[0])), shape), b = define(Files.readAllBytes(Path.of(args[1])), shape);
        QuantSpec spec = switch (precision) {
            case "int4" -> QuantSpec.resolve(Precision.INT4, QuantSpec.Axis.TOKEN, 32, d);
            case "int2" -> QuantSpec.resolve(Precision.INT2, QuantSpec.Axis.TOKEN, 32, d);
            case "f32" -> QuantSpec.of(Precision.F32);
            default -> throw new IllegalArgumentException("precision " + precision + ": f32, int4 or int2");
        };
        try (PagePool pool = new PagePool()) {
            Lane lane = new Lane(pool, d, spec, 256);
            Random r = new Random(1);
            float[] k = new float[d], v = new float[d];
            for (int j = 0; j < n; j++) {
                for (int c = 0; c < d; c++) {
                    k[c] = (float) r.nextGaussian();
                    v[c] = (float) r.nextGaussian();
                }
                lane.append(j, j, k, 0, v, 0);
            }
            float[] q = new float[g * d], outA = new float[g * d], outB = new float[g * d];
            for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
            int calls = Math.max(20, 400_000 / n);
            for (int w = 0; w < 20; w++) {
                for (int i = 0; i < calls; i++) {
                    a.attend(lane, q, n, null, outA, null);
                    b.attend(lane, q, n, null, outB, null);
                }
            }
            double[] ta = new double[rounds], tb = new double[rounds], ratio = new double[rounds];
            for (int round = 0; round < rounds; round++) {
                for (int pass = 0; pass < 2; pass++) {
                    boolean first = (pass == 0) == (round % 2 == 0);
                    DecodeKernel kernel = first ? a : b;
                    float[] out = first ? outA : outB;
                    long t0 = System.nanoTime();
                    for (int i = 0; i < calls; i++) kernel.attend(lane, q, n, null, out, null);
                    (first ? ta : tb)[round] = (System.nanoTime() - t0) / 1e3 / calls;
                }
                ratio[round] = ta[round] / tb[round];
            }
            Arrays.sort(ta);
            Arrays.sort(tb);
            Arrays.sort(ratio);
            System.out.printf("%s, %d entries, %d rounds of %d calls: A %.1f us, B %.1f us (medians); A/B time %.3f (10th-90th percentile %.3f-%.3f); %s%n",
                    precision, n, rounds, calls, ta[rounds / 2], tb[rounds / 2], ratio[rounds / 2], ratio[rounds / 10], ratio[rounds * 9 / 10],
                    Arrays.equals(outA, outB) ? "the same bits" : "different bits");
            lane.clear();
        }
    }

    /** The float lanes the template takes for this head dim: the widest power of two of this JVM's, at least 4. */
    private static int lanes(int headDim) {
        int max = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.length();
        for (int l = max; l >= 4; l /= 2) if (headDim % l == 0) return l;
        return 0;
    }
}
