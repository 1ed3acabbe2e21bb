package dev.kvpc.examples.llama;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The matrix kernels over every weight type, on matrices written to GGUF files by {@link GgufWriter} and read back
 * by {@link GgufFile#matrix}: the weights read back are the file's (dequantised by the GGUF specification in test
 * code); the scalar kernel gives llama2.c's floats (dequantise, then add left to right); the Vector API kernel is
 * within {@value #REL} of the exact dot product, relative to the sum of the products' magnitudes, reads every quant
 * in its place, converts every finite half exactly, and gives a token the same floats alone or in a batch.
 */
class MatmulTest {
    /** Vector kernel vs the exact (double) dot product of the dequantised weights: bound on |error| / sum_j |w_j x_j|. */
    static final double REL = 1e-5;

    static final GgufFile.TensorType[] TYPES = GgufFile.TensorType.values();

    record Loaded(Matrix m, float[] dequantised) {
    }

    /** A rows x cols matrix of random weights (a few blocks with one large weight), through a GGUF file. */
    static Loaded load(Path tmp, GgufFile.TensorType type, int rows, int cols, long seed) throws Exception {
        Random r = new Random(seed);
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian() * 0.5f;
        for (int i = 0; i < w.length; i += 97) w[i] *= 40;
        byte[] bytes = GgufWriter.encode(type, w);
        Path f = tmp.resolve(type + "-" + rows + "x" + cols + "-" + seed + ".gguf");
        new GgufWriter().put("general.architecture", "test").tensor("w", type, bytes, cols, rows).write(f);
        GgufFile g = GgufFile.open(f);
        Matrix m = g.matrix("w", cols, rows);
        float[] deq = GgufWriter.dequantise(type, bytes, w.length);
        assertArrayEquals(g.floats("w", cols, rows), deq, type + ": GgufFile.floats");
        return new Loaded(m, deq);
    }

    static float[] randomInput(int n, long seed) {
        Random r = new Random(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextGaussian();
        return x;
    }

    @Test
    void matricesHoldTheFilesWeightsInTheirStoredType(@TempDir Path tmp) throws Exception {
        for (GgufFile.TensorType type : TYPES) {
            int cols = Math.max(64, type.block);
            Loaded l = load(tmp, type, 6, cols, 1);
            assertEquals(type == GgufFile.TensorType.BF16 ? GgufFile.TensorType.F32 : type, l.m().type(), "held in its type (BF16 as F32)");
            assertEquals(6, l.m().rows);
            assertEquals(cols, l.m().cols);
            assertArrayEquals(l.dequantised(), l.m().toFloats(), type.toString());
            // bits held per 256 weights: Q8_0 and Q4_0 hold a float scale per 32, the K-quants their file bytes, BF16 floats
            long bits = switch (type) {
                case F32 -> 8192;
                case F16 -> 4096;
                case BF16 -> 8192;
                case Q8_0 -> 2304;
                case Q4_0 -> 1280;
                case Q4_K -> 1152;
                case Q5_K -> 1408;
                case Q6_K -> 1680;
            };
            assertEquals(6L * cols * bits / 256 / 8, l.m().bytes(), type + ": bytes held");
        }
    }

    @Test
    void theScalarKernelIsDequantiseThenAddLeftToRight(@TempDir Path tmp) throws Exception {
        for (GgufFile.TensorType type : TYPES) {
            int cols = type.block == 1 ? 100 : type.block == 32 ? 96 : 2 * type.block;
            Loaded l = load(tmp, type, 13, cols, 2);
            float[] x = randomInput(3 * cols, 3), out = new float[3 * 13];
            Matmul.scalar().matmul(out, l.m(), x, 3);
            for (int t = 0; t < 3; t++) {
                for (int i = 0; i < 13; i++) {
                    float val = 0;
                    for (int j = 0; j < cols; j++) val += l.dequantised()[i * cols + j] * x[t * cols + j];
                    assertEquals(Float.floatToIntBits(val), Float.floatToIntBits(out[t * 13 + i]), type + " token " + t + " row " + i);
                }
            }
        }
    }

    @Test
    void theVectorKernelIsWithinItsBoundOfTheExactDotProduct(@TempDir Path tmp) throws Exception {
        int[][] shapes = {{37, 96}, {5, 32}, {64, 256}, {9, 128}};
        double worst = 0;
        for (GgufFile.TensorType type : TYPES) {
            for (int[] s : shapes) {
                // F32, F16 and BF16 rows also end in a partial vector; K-quant rows are whole blocks of 256
                int rows = s[0], cols = type.block == 1 ? s[1] + 5 : type.block == 32 ? s[1] : type.block * (1 + s[1] / 128);
                Loaded l = load(tmp, type, rows, cols, rows * 31L + cols);
                for (int tokens : new int[]{1, 3, 4, 6}) {
                    float[] x = randomInput(tokens * cols, tokens), out = new float[tokens * rows];
                    Matmul.vector().matmul(out, l.m(), x, tokens);
                    for (int t = 0; t < tokens; t++) {
                        for (int i = 0; i < rows; i++) {
                            double exact = 0, mag = 0;
                            for (int j = 0; j < cols; j++) {
                                double p = (double) l.dequantised()[i * cols + j] * x[t * cols + j];
                                exact += p;
                                mag += Math.abs(p);
                            }
                            double rel = Math.abs(out[t * rows + i] - exact) / mag;
                            assertTrue(rel <= REL, type + " " + rows + "x" + cols + " token " + t + " row " + i + ": " + out[t * rows + i]
                                    + " vs exact " + exact + ", relative error " + rel);
                            worst = Math.max(worst, rel);
                        }
                    }
                }
            }
        }
        System.out.printf(java.util.Locale.ROOT, "vector kernels: worst relative error %.3g (bound %.0e)%n", worst, REL);
    }

    @Test
    void oneHotInputsReadEveryQuantInItsPlace(@TempDir Path tmp) throws Exception {
        for (GgufFile.TensorType type : TYPES) {
            int cols = Math.max(64, type.block);
            Loaded l = load(tmp, type, 7, cols, 4);
            for (Matmul mm : new Matmul[]{Matmul.scalar(), Matmul.vector()}) {
                for (int c = 0; c < cols; c++) {
                    float[] x = new float[cols], out = new float[7];
                    x[c] = 1;
                    mm.matmul(out, l.m(), x, 1);
                    for (int i = 0; i < 7; i++)
                        assertEquals(l.dequantised()[i * cols + c], out[i], 0f, type + " " + mm.name() + ": row " + i + " column " + c);
                }
            }
        }
    }

    @Test
    void aTokenGetsTheSameFloatsAloneOrInABatch(@TempDir Path tmp) throws Exception {
        for (GgufFile.TensorType type : TYPES) {
            int cols = Math.max(128, type.block);
            Loaded l = load(tmp, type, 23, cols, 5);
            float[] x = randomInput(9 * cols, 6), batch = new float[9 * 23], one = new float[23];
            for (Matmul mm : new Matmul[]{Matmul.scalar(), Matmul.vector()}) {
                mm.matmul(batch, l.m(), x, 9);
                for (int t = 0; t < 9; t++) {
                    mm.matmul(one, l.m(), java.util.Arrays.copyOfRange(x, t * cols, (t + 1) * cols), 1);
                    for (int i = 0; i < 23; i++)
                        assertEquals(Float.floatToIntBits(one[i]), Float.floatToIntBits(batch[t * 23 + i]), type + " " + mm.name() + " token " + t + " row " + i);
                }
            }
        }
    }

    @Test
    void rowsSplitOverThreadsGiveTheSameFloats(@TempDir Path tmp) throws Exception {
        for (GgufFile.TensorType type : TYPES) {
            Loaded l = load(tmp, type, 130, 256, 8);
            for (int tokens : new int[]{1, 2, 8}) {
                float[] x = randomInput(tokens * 256, 9), one = new float[tokens * 130], split = new float[tokens * 130];
                for (Matmul mm : new Matmul[]{Matmul.scalar(), Matmul.vector()}) {
                    mm.matmul(one, l.m(), x, tokens);
                    for (int threads : new int[]{2, 3}) {
                        java.util.Arrays.fill(split, Float.NaN);
                        Matmul.parallel(mm, threads).matmul(split, l.m(), x, tokens);
                        assertArrayEquals(one, split, type + " " + mm.name() + " on " + threads + " threads, " + tokens + " tokens");
                    }
                }
            }
        }
    }

    @Test
    void everyFiniteHalfIsWidenedExactly() {
        short[] halves = new short[1984 * 32];
        int n = 0;
        for (int h = 0; h < 1 << 16; h++) if ((h & 0x7c00) != 0x7c00) halves[n++] = (short) h;
        assertEquals(halves.length, n);
        Matrix.F16 m = new Matrix.F16(1984, 32, halves);
        float[] out = new float[1984];
        for (int c = 0; c < 32; c++) {
            float[] x = new float[32];
            x[c] = 1;
            Matmul.vector().matmul(out, m, x, 1);
            for (int i = 0; i < 1984; i++) {
                // a -0 weight sums to +0 (the accumulator starts at +0); every other half must come out exactly
                assertEquals(Float.float16ToFloat(halves[i * 32 + c]) + 0f, out[i], 0f, "half 0x" + Integer.toHexString(halves[i * 32 + c] & 0xffff));
            }
        }
    }

    @Test
    void halvesWithInfinitiesGoThroughTheScalarKernel() {
        short[] w = new short[2 * 16];
        for (int i = 0; i < w.length; i++) w[i] = Float.floatToFloat16(0.25f * i);
        w[3] = (short) 0x7c00; // +infinity
        Matrix.F16 m = new Matrix.F16(2, 16, w);
        float[] x = randomInput(16, 7), vec = new float[2], sca = new float[2];
        for (int i = 0; i < 16; i++) x[i] = Math.abs(x[i]) + 0.1f;
        Matmul.vector().matmul(vec, m, x, 1);
        Matmul.scalar().matmul(sca, m, x, 1);
        assertEquals(Float.POSITIVE_INFINITY, vec[0]);
        assertArrayEquals(sca, vec);
    }

    @Test
    void badShapesAreRefusedWithTheReason() {
        Matrix m = Matrix.f32(4, 8, new float[32]);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Matmul.vector().matmul(new float[4], m, new float[7], 1));
        assertTrue(e.getMessage().contains("x holds 7 floats"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Matrix.Q8_0(2, 40, new byte[80], new float[2]));
        assertTrue(e.getMessage().contains("not whole blocks of 32"), e.getMessage());
    }
}
