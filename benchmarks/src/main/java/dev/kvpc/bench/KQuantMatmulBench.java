package dev.kvpc.bench;

import dev.kvpc.examples.llama.Matmul;
import dev.kvpc.examples.llama.Matrix;
import org.openjdk.jmh.annotations.*;

import java.util.concurrent.TimeUnit;

/**
 * The engine's matrix-vector product (one token) over K-quant weights against Q4_0 and Q8_0, in rows of whole
 * 256-weight blocks, each read in place by a fused vector kernel. Random weights encoded by {@code BlockCodec}; single-threaded.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 4, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class KQuantMatmulBench {
    @Param({"Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"})
    public String type;
    @Param({"2048x2048"})
    public String shape;

    private Matrix w;
    private float[] x, out;
    private final Matmul vector = Matmul.vector();

    @Setup(Level.Trial)
    public void setUp() {
        MatmulBench.Fixture f = MatmulBench.Fixture.of(type, shape);
        w = f.w();
        x = f.x();
        out = f.out();
    }

    @Benchmark
    public float[] vector() {
        vector.matmul(out, w, x, 1);
        return out;
    }
}
