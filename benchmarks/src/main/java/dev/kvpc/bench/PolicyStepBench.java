package dev.kvpc.bench;

import dev.kvpc.backend.jvm.JvmDecodeKernels;
import dev.kvpc.runtime.engine.DecodeKernel;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;
import org.openjdk.jmh.annotations.*;
import org.openjdk.jmh.infra.Blackhole;

import java.util.concurrent.TimeUnit;

/**
 * Policy work and policy overhead (docs/performance.md): one step of a policy's work on one lane, compiled and
 * hand-written, as {@link PolicyFixture} describes. The attention step ({@code decodeAttention}: the generated
 * decode kernel over the same lane at the same size) is the overhead target's denominator. Lanes are rebuilt outside
 * the measured time where a step changes their size. {@link PolicyAB} times the two sides interleaved in one JVM.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--sun-misc-unsafe-memory-access=allow"})
public class PolicyStepBench {
    @Param({"h2o", "tova", "quest", "kivi", "snapkv"})
    public String policy;
    @Param({"4096", "16384"})
    public int entries;

    private PolicyFixture fixture;
    private DecodeKernel kernel;
    private final float[] out = new float[PolicyFixture.GROUP * PolicyFixture.D];

    @Setup(Level.Trial)
    public void setUp() {
        fixture = new PolicyFixture(policy, entries);
        kernel = new JvmDecodeKernels().kernel(PolicyFixture.D, PolicyFixture.GROUP, QuantSpec.of(Precision.F32), QuantSpec.of(Precision.F32));
    }

    @Setup(Level.Iteration)
    public void iteration() {
        fixture.fill();
    }

    @Setup(Level.Invocation)
    public void invocation() {
        fixture.prepare();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        fixture.close();
    }

    @Benchmark
    public void compiled(Blackhole bh) {
        bh.consume(fixture.compiled());
        bh.consume(fixture.lane.size());
    }

    @Benchmark
    public void handWritten(Blackhole bh) {
        bh.consume(fixture.handWritten());
        bh.consume(fixture.lane.size());
    }

    /** Item 3's denominator: one decode attention step over the lane (the generated kernel hosts run). */
    @Benchmark
    public void decodeAttention(Blackhole bh) {
        kernel.attend(fixture.lane, fixture.query(), fixture.length(), null, out, null);
        bh.consume(out);
    }
}
