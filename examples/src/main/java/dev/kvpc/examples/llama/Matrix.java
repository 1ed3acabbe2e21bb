package dev.kvpc.examples.llama;

/**
 * A weight matrix {@code rows x cols}, row-major (row {@code i} is output {@code i}), kept in the type it was stored
 * in: F32 floats, F16 halves, or Q8_0 / Q4_0 blocks of 32 weights of a row with one scale each. Block scales are
 * stored f16 in GGUF and held here as the floats they convert to exactly; Q8_0 quants stay signed bytes, Q4_0 quants
 * stay packed nibbles (byte {@code k} of a block holds weight {@code k} in its low nibble and weight {@code k + 16} in
 * its high nibble, each biased by 8), as GGUF lays them out. {@link Matmul} kernels read them as they are. The
 * K-quants (Q4_K, Q5_K, Q6_K) are {@link Blocks}: the file's bytes as they are, a row decoded by its
 * {@link BlockCodec} when a kernel reads it. BF16 weights are held as F32 (their exact widening).
 */
public abstract sealed class Matrix permits Matrix.F32, Matrix.F16, Matrix.Q8_0, Matrix.Q4_0, Matrix.Blocks {
    public final int rows, cols;

    Matrix(int rows, int cols) {
        if (rows <= 0 || cols <= 0) throw new IllegalArgumentException("a matrix has at least one row and column: " + rows + "x" + cols);
        this.rows = rows;
        this.cols = cols;
    }

    public abstract GgufFile.TensorType type();

    /** Row {@code r} dequantised into {@code dst[off..off+cols)}: weight times its block's scale, in float. */
    public abstract void row(int r, float[] dst, int off);

    /** A matrix of the same type whose row {@code r} is this one's row {@code order[r]}, weights as stored. */
    public abstract Matrix permuteRows(int[] order);

    /** Copies {@code per} elements a row from {@code src} to {@code dst} in {@code order} (arrays of any element type). */
    static void permute(Object src, Object dst, int per, int[] order) {
        for (int r = 0; r < order.length; r++) System.arraycopy(src, order[r] * per, dst, r * per, per);
    }

    /** Every weight dequantised, row-major. */
    public float[] toFloats() {
        float[] out = new float[Math.multiplyExact(rows, cols)];
        for (int r = 0; r < rows; r++) row(r, out, r * cols);
        return out;
    }

    /** Bytes of the weights as held. */
    public abstract long bytes();

    public static F32 f32(int rows, int cols, float[] w) {
        return new F32(rows, cols, w);
    }

    /**
     * A matrix of random weights in {@code type}, for benchmarks and tests: F32 and F16 weights Gaussian with standard
     * deviation 0.05, and K-quants and BF16 such weights encoded; Q8_0 quants -127..127 and Q4_0 nibbles 0..15 uniform, with random f16-exact block scales in
     * [0.001, 0.011).
     */
    public static Matrix random(GgufFile.TensorType type, int rows, int cols, java.util.random.RandomGenerator r) {
        int n = Math.multiplyExact(rows, cols);
        return switch (type) {
            case F32 -> {
                float[] w = new float[n];
                for (int i = 0; i < n; i++) w[i] = (float) r.nextGaussian() * 0.05f;
                yield new F32(rows, cols, w);
            }
            case F16 -> {
                short[] w = new short[n];
                for (int i = 0; i < n; i++) w[i] = Float.floatToFloat16((float) r.nextGaussian() * 0.05f);
                yield new F16(rows, cols, w);
            }
            case Q8_0 -> {
                byte[] q = new byte[n];
                for (int i = 0; i < n; i++) q[i] = (byte) (r.nextInt(255) - 127);
                yield new Q8_0(rows, cols, q, randomScales(n / 32, r));
            }
            case Q4_0 -> {
                byte[] q = new byte[n / 2];
                r.nextBytes(q);
                yield new Q4_0(rows, cols, q, randomScales(n / 32, r));
            }
            case BF16 -> {
                float[] w = new float[n];
                for (int i = 0; i < n; i++) w[i] = (float) r.nextGaussian() * 0.05f;
                BlockCodec.BF16.decode(BlockCodec.BF16.encode(w), 0, w, 0, n);
                yield new F32(rows, cols, w);
            }
            case Q4_K, Q5_K, Q6_K -> {
                float[] w = new float[n];
                for (int i = 0; i < n; i++) w[i] = (float) r.nextGaussian() * 0.05f;
                yield new Blocks(rows, cols, type, type.codec.encode(w));
            }
        };
    }

    private static float[] randomScales(int blocks, java.util.random.RandomGenerator r) {
        float[] d = new float[blocks];
        for (int i = 0; i < blocks; i++) d[i] = Float.float16ToFloat(Float.floatToFloat16(0.001f + r.nextFloat() * 0.01f));
        return d;
    }

    static void checkLength(String what, long have, long want) {
        if (have != want) throw new IllegalArgumentException(what + " holds " + have + " values, the shape needs " + want);
    }

    static void checkBlocks(int cols) {
        if (cols % 32 != 0) throw new IllegalArgumentException("rows of " + cols + " are not whole blocks of 32");
    }

    public static final class F32 extends Matrix {
        final float[] w;

        /** The weights as held, row-major (read only: a device copies them). */
        public float[] weights() {
            return w;
        }

        public F32(int rows, int cols, float[] w) {
            super(rows, cols);
            checkLength("F32 matrix", w.length, (long) rows * cols);
            this.w = w;
        }

        public GgufFile.TensorType type() {
            return GgufFile.TensorType.F32;
        }

        public void row(int r, float[] dst, int off) {
            System.arraycopy(w, r * cols, dst, off, cols);
        }

        public Matrix permuteRows(int[] order) {
            float[] p = new float[w.length];
            permute(w, p, cols, order);
            return new F32(rows, cols, p);
        }

        public long bytes() {
            return 4L * w.length;
        }
    }

    public static final class F16 extends Matrix {
        final short[] w;

        /** The weights' f16 bits as held, row-major (read only: a device copies them). */
        public short[] halves() {
            return w;
        }
        /** No infinity or NaN among the weights (the vector kernel's conversion is exact for finite halves only). */
        final boolean finite;

        public F16(int rows, int cols, short[] w) {
            super(rows, cols);
            checkLength("F16 matrix", w.length, (long) rows * cols);
            this.w = w;
            boolean f = true;
            for (short h : w) if ((h & 0x7c00) == 0x7c00) { f = false; break; }
            this.finite = f;
        }

        public GgufFile.TensorType type() {
            return GgufFile.TensorType.F16;
        }

        public void row(int r, float[] dst, int off) {
            for (int j = 0; j < cols; j++) dst[off + j] = Float.float16ToFloat(w[r * cols + j]);
        }

        public Matrix permuteRows(int[] order) {
            short[] p = new short[w.length];
            permute(w, p, cols, order);
            return new F16(rows, cols, p);
        }

        public long bytes() {
            return 2L * w.length;
        }
    }

    public static final class Q8_0 extends Matrix {
        /** Quants, one signed byte per weight, row-major. */
        final byte[] q;
        /** One scale per block of 32 (block {@code b} covers weights {@code 32b..32b+31} of the flattened matrix). */
        final float[] d;

        /** The quants as held, blocks of 32 weights in row order (read only: a device copies them). */
        public byte[] quants() {
            return q;
        }

        /** Each block's scale, in row order (read only). */
        public float[] scales() {
            return d;
        }

        public Q8_0(int rows, int cols, byte[] q, float[] d) {
            super(rows, cols);
            checkBlocks(cols);
            checkLength("Q8_0 quants", q.length, (long) rows * cols);
            checkLength("Q8_0 scales", d.length, (long) rows * cols / 32);
            this.q = q;
            this.d = d;
        }

        public GgufFile.TensorType type() {
            return GgufFile.TensorType.Q8_0;
        }

        public void row(int r, float[] dst, int off) {
            int base = r * cols;
            for (int j = 0; j < cols; j++) dst[off + j] = q[base + j] * d[(base + j) >> 5];
        }

        public Matrix permuteRows(int[] order) {
            byte[] pq = new byte[q.length];
            float[] pd = new float[d.length];
            permute(q, pq, cols, order);
            permute(d, pd, cols / 32, order);
            return new Q8_0(rows, cols, pq, pd);
        }

        public long bytes() {
            return q.length + 4L * d.length;
        }
    }

    public static final class Q4_0 extends Matrix {
        /** Packed nibbles, 16 bytes per block of 32 weights, blocks in row-major order. */
        final byte[] q;
        final float[] d;


        /** The quants as held, blocks of 32 weights in row order (read only: a device copies them). */
        public byte[] quants() {
            return q;
        }

        /** Each block's scale, in row order (read only). */
        public float[] scales() {
            return d;
        }

        public Q4_0(int rows, int cols, byte[] q, float[] d) {
            super(rows, cols);
            checkBlocks(cols);
            checkLength("Q4_0 nibble bytes", q.length, (long) rows * cols / 2);
            checkLength("Q4_0 scales", d.length, (long) rows * cols / 32);
            this.q = q;
            this.d = d;
        }

        public GgufFile.TensorType type() {
            return GgufFile.TensorType.Q4_0;
        }

        /** The quant (-8..7) of weight {@code j} of the flattened matrix. */
        int quant(int j) {
            int b = j >> 5, k = j & 31;
            int byt = q[b * 16 + (k & 15)] & 0xff;
            return (k < 16 ? byt & 15 : byt >> 4) - 8;
        }

        public void row(int r, float[] dst, int off) {
            int base = r * cols;
            for (int j = 0; j < cols; j++) dst[off + j] = quant(base + j) * d[(base + j) >> 5];
        }

        public Matrix permuteRows(int[] order) {
            byte[] pq = new byte[q.length];
            float[] pd = new float[d.length];
            permute(q, pq, cols / 2, order);
            permute(d, pd, cols / 32, order);
            return new Q4_0(rows, cols, pq, pd);
        }

        public long bytes() {
            return q.length + 4L * d.length;
        }
    }

    /**
     * Weights in one of {@link BlockCodec}'s K-quant formats, the file's bytes as they are (a row is whole blocks: llama.cpp
     * makes K-quant rows multiples of 256). A kernel decodes a row into floats and takes its dot products from those.
     */
    public static final class Blocks extends Matrix {
        private final GgufFile.TensorType type;
        final byte[] raw;
        private final int rowBytes;

        public Blocks(int rows, int cols, GgufFile.TensorType type, byte[] raw) {
            super(rows, cols);
            if (type.codec == null || type.codec.block == 1) throw new IllegalArgumentException(type + " is not a K-quant block format");
            if (cols % type.codec.block != 0) throw new IllegalArgumentException("rows of " + cols + " are not whole " + type + " blocks of " + type.codec.block);
            this.type = type;
            this.rowBytes = Math.toIntExact(type.bytes(cols));
            checkLength(type + " bytes", raw.length, (long) rows * rowBytes);
            this.raw = raw;
        }

        public GgufFile.TensorType type() {
            return type;
        }

        /** Bytes of a row (whole blocks). */
        int rowBytes() {
            return rowBytes;
        }

        public void row(int r, float[] dst, int off) {
            type.codec.decode(raw, r * rowBytes, dst, off, cols);
        }

        public Matrix permuteRows(int[] order) {
            byte[] p = new byte[raw.length];
            permute(raw, p, rowBytes, order);
            return new Blocks(rows, cols, type, p);
        }

        public long bytes() {
            return raw.length;
        }
    }
}
