package dev.kvpc.bench;

import dev.kvpc.backend.jvm.JvmDecodeKernels;
import dev.kvpc.runtime.KvRuntime;
import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.Sequence;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import org.openjdk.jmh.annotations.*;
import org.openjdk.jmh.infra.Blackhole;

import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * One decode step's attention of one layer, through the runtime as the engine runs it ({@link Sequence#append} then
 * {@link Sequence#attend}): 32 query heads over 8 KV lanes of head dim 128 (a Llama-2-7B-like layer with GQA), full
 * cache, {@code entries} entries per lane, on {@code threads} threads. The lanes grow by one entry per call (about
 * 3% over a run of 5 one-second iterations at 8k).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--sun-misc-unsafe-memory-access=allow"})
public class LayerAttentionBench {
    static final int HEADS = 32, KV_HEADS = 8, HEAD_DIM = 128;

    @Param({"8192"})
    public int entries;
    @Param({"1", "2"})
    public int threads;

    private PagePool pool;
    private Sequence seq;
    private float[] k, v, q, out;

    @Setup(Level.Trial)
    public void setUp() {
        Random r = new Random(1);
        ModelSpec model = new ModelSpec(1, HEADS, KV_HEADS, HEAD_DIM, Precision.F32);
        pool = new PagePool();
        seq = new KvRuntime(model, PolicyRunner.fullCache(), pool, 16, new JvmDecodeKernels()).withThreads(threads).newSequence();
        float[] keys = gaussian(r, entries * KV_HEADS * HEAD_DIM), values = gaussian(r, entries * KV_HEADS * HEAD_DIM);
        seq.beginPrefill(entries);
        seq.append(0, keys, values); // the prompt's rows, not attended: the benchmark times decode steps
        k = gaussian(r, KV_HEADS * HEAD_DIM);
        v = gaussian(r, KV_HEADS * HEAD_DIM);
        q = gaussian(r, HEADS * HEAD_DIM);
        out = new float[HEADS * HEAD_DIM];
    }

    private static float[] gaussian(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian();
        return a;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        seq.close();
        pool.close();
    }

    @Benchmark
    public void decodeStep(Blackhole bh) {
        seq.beginDecode();
        seq.append(0, k, v);
        seq.attend(0, q, out);
        bh.consume(out);
    }

}
