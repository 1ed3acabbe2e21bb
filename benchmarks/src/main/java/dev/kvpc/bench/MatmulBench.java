package dev.kvpc.bench;

import dev.kvpc.examples.llama.GgufFile;
import dev.kvpc.examples.llama.Matmul;
import dev.kvpc.examples.llama.Matrix;
import org.openjdk.jmh.annotations.*;

import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * The engine's matrix-vector product (one token, {@code rows x cols} weights) per weight type: the Vector API
 * kernels against the scalar ones (llama2.c's loop, weights dequantised as read), single-threaded. Shapes: 64x64
 * (stories260K's attention), 128x128, 384x128 and 512x128 (kvpc-tiny's attention, feed-forward and classifier),
 * 768x768 (a GPT-2-small-sized projection). Random weights, Q8_0 / Q4_0 weights as random quants with random scales.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class MatmulBench {
    @Param({"F32", "F16", "Q8_0", "Q4_0"})
    public String type;
    @Param({"64x64", "128x128", "384x128", "512x128", "768x768"})
    public String shape;

    private Matrix w;
    private float[] x, out;
    private final Matmul vector = Matmul.vector(), scalar = Matmul.scalar();

    /** A product's operands: random weights of {@code type} in shape {@code "ROWSxCOLS"}, a Gaussian input, an output. */
    record Fixture(Matrix w, float[] x, float[] out) {
        static Fixture of(String type, String shape) {
            String[] s = shape.split("x");
            int rows = Integer.parseInt(s[0]), cols = Integer.parseInt(s[1]);
            float[] x = new float[cols];
            Random r = new Random(2);
            for (int i = 0; i < cols; i++) x[i] = (float) r.nextGaussian();
            return new Fixture(Matrix.random(GgufFile.TensorType.valueOf(type), rows, cols, new Random(1)), x, new float[rows]);
        }
    }

    @Setup(Level.Trial)
    public void setUp() {
        Fixture f = Fixture.of(type, shape);
        w = f.w();
        x = f.x();
        out = f.out();
    }

    @Benchmark
    public float[] vector() {
        vector.matmul(out, w, x, 1);
        return out;
    }

    @Benchmark
    public float[] scalar() {
        scalar.matmul(out, w, x, 1);
        return out;
    }
}
