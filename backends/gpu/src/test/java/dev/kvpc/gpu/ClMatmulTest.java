package dev.kvpc.gpu;

import dev.kvpc.examples.llama.GgufFile;
import dev.kvpc.examples.llama.Matmul;
import dev.kvpc.examples.llama.Matrix;
import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.gpu.kernels.ClMatmul;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The engine's matrix products on the OpenCL device against the CPU's scalar kernel (llama2.c's order), for every
 * weight type, one token and a batch, shapes whose columns are and are not a multiple of the work-group: every
 * output within 1e-5 of the largest output of its token (sums in another order), and a weight found in the right
 * place (a one-hot input reads one column exactly).
 */
class ClMatmulTest {
    @Test
    void everyWeightTypeMatchesTheCpu() {
        try (ClContext cl = Devices.context()) {
            ClMatmul mm = new ClMatmul(cl);
            Random r = new Random(5);
            for (GgufFile.TensorType type : GgufFile.TensorType.values()) {
                for (int[] shape : new int[][] {{96, 128}, {33, 64}, {512, 288}}) {
                    // K-quant rows are whole blocks of 256
                    Matrix w = Matrix.random(type, shape[0], type.codec != null && type.codec.block > 1 ? 256 * (1 + shape[1] / 256) : shape[1], r);
                    for (int tokens : new int[] {1, 5}) {
                        float[] x = new float[tokens * w.cols];
                        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                        float[] got = new float[tokens * w.rows], want = new float[tokens * w.rows];
                        java.util.Arrays.fill(got, Float.NaN);
                        mm.matmul(got, w, x, tokens);
                        Matmul.scalar().matmul(want, w, x, tokens);
                        for (int t = 0; t < tokens; t++) {
                            double scale = 0;
                            for (int i = 0; i < w.rows; i++) scale = Math.max(scale, Math.abs(want[t * w.rows + i]));
                            for (int i = 0; i < w.rows; i++) {
                                assertEquals(want[t * w.rows + i], got[t * w.rows + i], 1e-5 * scale, type + " " + w.rows + "x" + w.cols + " token " + t + " row " + i);
                            }
                        }
                    }
                    // a one-hot input reads column 7 exactly: the weights are where the CPU has them
                    float[] hot = new float[w.cols], col = new float[w.rows], row = new float[w.cols];
                    hot[7] = 1f;
                    mm.matmul(col, w, hot, 1);
                    for (int i = 0; i < w.rows; i++) {
                        w.row(i, row, 0);
                        assertEquals(row[7], col[i], 0f, type + " weight (" + i + ", 7)");
                    }
                }
            }
            assertEquals(GgufFile.TensorType.values().length * 3 * 3, mm.calls());
        }
    }
}
