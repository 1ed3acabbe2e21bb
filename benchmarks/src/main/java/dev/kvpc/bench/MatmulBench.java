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

    @Setup(Level.Trial)
    public void setUp() {
        String[] s = shape.split("x");
        int rows = Integer.parseInt(s[0]), cols = Integer.parseInt(s[1]);
        w = matrix(GgufFile.TensorType.valueOf(type), rows, cols, new Random(1));
        x = new float[cols];
        out = new float[rows];
        Random r = new Random(2);
        for (int i = 0; i < cols; i++) x[i] = (float) r.nextGaussian();
    }

    /** Random weights in {@code type}: Q8_0 quants -127..127 and Q4_0 nibbles 0..15, with random f16-exact scales. */
    static Matrix matrix(GgufFile.TensorType type, int rows, int cols, Random r) {
        int n = rows * cols;
        return switch (type) {
            case F32 -> {
                float[] w = new float[n];
                for (int i = 0; i < n; i++) w[i] = (float) r.nextGaussian() * 0.05f;
                yield new Matrix.F32(rows, cols, w);
            }
            case F16 -> {
                short[] w = new short[n];
                for (int i = 0; i < n; i++) w[i] = Float.floatToFloat16((float) r.nextGaussian() * 0.05f);
                yield new Matrix.F16(rows, cols, w);
            }
            case Q8_0 -> {
                byte[] q = new byte[n];
                for (int i = 0; i < n; i++) q[i] = (byte) (r.nextInt(255) - 127);
                yield new Matrix.Q8_0(rows, cols, q, scales(n / 32, r));
            }
            case Q4_0 -> {
                byte[] q = new byte[n / 2];
                r.nextBytes(q);
                yield new Matrix.Q4_0(rows, cols, q, scales(n / 32, r));
            }
        };
    }

    private static float[] scales(int blocks, Random r) {
        float[] d = new float[blocks];
        for (int i = 0; i < blocks; i++) d[i] = Float.float16ToFloat(Float.floatToFloat16(0.001f + r.nextFloat() * 0.01f));
        return d;
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
