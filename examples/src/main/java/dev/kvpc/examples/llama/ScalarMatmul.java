package dev.kvpc.examples.llama;

/** {@link Matmul#scalar()}: llama2.c's loop, each weight dequantised as it is read (weight times its block's scale). */
final class ScalarMatmul implements Matmul.Rows {
    static final ScalarMatmul INSTANCE = new ScalarMatmul();

    private ScalarMatmul() {
    }

    public String name() {
        return "scalar";
    }

    public void rows(float[] out, Matrix w, float[] x, int tokens, int from, int to) {
        int n = w.cols, d = w.rows;
        switch (w) {
            case Matrix.F32 m -> {
                float[] a = m.w;
                for (int t = 0; t < tokens; t++) {
                    int xo = t * n;
                    for (int i = from; i < to; i++) {
                        float val = 0;
                        int row = i * n;
                        for (int j = 0; j < n; j++) val += a[row + j] * x[xo + j];
                        out[t * d + i] = val;
                    }
                }
            }
            case Matrix.F16 m -> {
                short[] a = m.w;
                for (int t = 0; t < tokens; t++) {
                    int xo = t * n;
                    for (int i = from; i < to; i++) {
                        float val = 0;
                        int row = i * n;
                        for (int j = 0; j < n; j++) val += Float.float16ToFloat(a[row + j]) * x[xo + j];
                        out[t * d + i] = val;
                    }
                }
            }
            case Matrix.Q8_0 m -> {
                byte[] q = m.q;
                float[] s = m.d;
                for (int t = 0; t < tokens; t++) {
                    int xo = t * n;
                    for (int i = from; i < to; i++) {
                        float val = 0;
                        int row = i * n;
                        for (int j = 0; j < n; j++) val += q[row + j] * s[(row + j) >> 5] * x[xo + j];
                        out[t * d + i] = val;
                    }
                }
            }
            case Matrix.Q4_0 m -> {
                float[] s = m.d;
                for (int t = 0; t < tokens; t++) {
                    int xo = t * n;
                    for (int i = from; i < to; i++) {
                        float val = 0;
                        int row = i * n;
                        for (int j = 0; j < n; j++) val += m.quant(row + j) * s[(row + j) >> 5] * x[xo + j];
                        out[t * d + i] = val;
                    }
                }
            }
            case Matrix.Blocks m -> {
                // a row decoded once, then its dot product with every token
                float[] row = new float[n];
                for (int i = from; i < to; i++) {
                    m.row(i, row, 0);
                    for (int t = 0; t < tokens; t++) {
                        float val = 0;
                        int xo = t * n;
                        for (int j = 0; j < n; j++) val += row[j] * x[xo + j];
                        out[t * d + i] = val;
                    }
                }
            }
        }
    }
}
