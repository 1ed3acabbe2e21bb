package dev.kvpc.bench;

import dev.kvpc.backend.jvm.JvmDecodeKernels;
import dev.kvpc.runtime.engine.DecodeKernel;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * The first decode step a fresh JVM runs through the generated kernel (head dim 128, a group of 4, f32 lane): its
 * class defined and its first call, each fork a new JVM. With {@code vectorUsed}, the Vector API has already been
 * used (as a host's matrix products have by its first decode step); without, the first call pays for its start too.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 0)
@Measurement(iterations = 1)
@Fork(value = 5, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--sun-misc-unsafe-memory-access=allow"})
public class FirstCallBench {
    static final int D = 128, GROUP = 4;

    @Param({"1024", "4096"})
    public int entries;
    @Param({"true", "false"})
    public boolean vectorUsed;

    private PagePool pool;
    private Lane lane;
    private float[] q, out;
    private DecodeKernel made;

    @Setup(Level.Trial)
    public void setUp() {
        Random r = new Random(1);
        pool = new PagePool();
        lane = Lanes.random(pool, D, QuantSpec.of(Precision.F32), entries, r);
        q = new float[GROUP * D];
        for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
        out = new float[GROUP * D];
        if (vectorUsed) {
            // what a host's first matrix product does to the Vector API before any decode step
            var s = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED;
            float[] a = new float[s.length() * 4];
            float sum = 0;
            for (int i = 0; i < a.length; i += s.length()) sum += jdk.incubator.vector.FloatVector.fromArray(s, a, i).reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
            out[0] = sum;
        }
        made = new JvmDecodeKernels().kernel(D, GROUP, lane.formatsInUse());
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        pool.close();
    }

    /** One decode step through a kernel asked of the provider (its class defined) in setup. */
    @Benchmark
    public float[] firstStep() {
        made.attend(lane, q, entries, null, out, null);
        return out;
    }

    /** The kernel for the lane's formats asked of the provider, then one decode step. */
    @Benchmark
    public float[] kernelAndFirstStep() {
        DecodeKernel kernel = new JvmDecodeKernels().kernel(D, GROUP, lane.formatsInUse());
        kernel.attend(lane, q, entries, null, out, null);
        return out;
    }
}
