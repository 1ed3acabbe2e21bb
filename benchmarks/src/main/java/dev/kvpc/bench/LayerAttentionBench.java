package dev.kvpc.bench;

import org.openjdk.jmh.annotations.*;
import org.openjdk.jmh.infra.Blackhole;

import java.util.concurrent.TimeUnit;

/**
 * One decode step's attention of one layer through the runtime, as {@link LayerFixture} sets it up: 8 KV lanes of
 * {@code entries} entries at {@code precision}, on {@code threads} threads. The lanes grow by one entry per call
 * (about 3% over a run of 5 one-second iterations at 8k).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--sun-misc-unsafe-memory-access=allow"})
public class LayerAttentionBench {
    @Param({"8192"})
    public int entries;
    @Param({"1", "2"})
    public int threads;
    /** f32, int4 or int2. */
    @Param({"f32"})
    public String precision;
    /** Rows a page holds (the runtime's default is 16). */
    @Param({"16"})
    public int rowsPerPage;

    private LayerFixture layer;

    @Setup(Level.Trial)
    public void setUp() {
        layer = new LayerFixture(entries, threads, precision, rowsPerPage);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        layer.close();
    }

    @Benchmark
    public void decodeStep(Blackhole bh) {
        bh.consume(layer.step());
    }
}
