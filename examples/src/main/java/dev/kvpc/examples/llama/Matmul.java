package dev.kvpc.examples.llama;

/**
 * Matrix products of the engine: {@code out[t][i] = sum_j w[i][j] * x[t][j]} for {@code tokens} rows of {@code x}
 * ({@code tokens x w.cols}, row-major) into {@code out} ({@code tokens x w.rows}), over any {@link Matrix} type.
 * Two implementations: {@link #scalar()}, llama2.c's order (each sum from left to right over dequantised weights,
 * so the same floats as dequantising at load and running llama2.c's matmul), and {@link #vector()}, the Vector API
 * (256-bit float vectors, quantised blocks dequantised in registers), whose sums run in another order. Both give a
 * token's row the same floats whether it comes alone or in a batch of tokens.
 */
public interface Matmul extends dev.kvpc.runtime.engine.HostArrays {
    void matmul(float[] out, Matrix w, float[] x, int tokens);

    /** A short name: "scalar" or "vector". */
    String name();

    // ---- the operations between the products, over the engine's arrays. A device implementation may keep arrays on
    // the device between calls: the engine says where the host reads an array (toHost) and where it wrote one
    // (fromHost). The CPU's are the definitions (the device's are held to them by tests).

    /** {@code o[t] = w * x[t] / rms(x[t])} for each of {@code tokens} rows of {@code n} ({@link LlamaEngine#rmsnorm}). */
    default void rmsnorm(float[] o, float[] x, float[] w, int tokens, int n, float eps) {
        for (int t = 0; t < tokens; t++) LlamaEngine.rmsnorm(o, t * n, x, t * n, w, n, eps);
    }

    /** {@code o = w * x[row] / rms(x[row])}: one row of {@code x} (rows of {@code n}) into {@code o}. */
    default void rmsnormRow(float[] o, float[] x, int row, float[] w, int n, float eps) {
        LlamaEngine.rmsnorm(o, 0, x, row * n, w, n, eps);
    }

    /** {@code x[i] += y[i]} for {@code i < count}: the residual adds. */
    default void add(float[] x, float[] y, int count) {
        for (int i = 0; i < count; i++) x[i] += y[i];
    }

    /** {@code x[t * n + i] += b[i]} for every token {@code t < tokens} and {@code i < n}: a projection's bias (Qwen2's Q, K and V). */
    default void addBias(float[] x, float[] b, int tokens, int n) {
        toHost(x);
        for (int t = 0; t < tokens; t++) for (int i = 0; i < n; i++) x[t * n + i] += b[i];
        fromHost(x);
    }

    /** {@code h[i] = silu(h[i]) * g[i]} for {@code i < count} ({@link LlamaEngine#swiglu}). */
    default void swiglu(float[] h, float[] g, int count) {
        LlamaEngine.swiglu(h, g, count);
    }

    /** The host is about to read {@code a}: make its host copy current. */
    @Override
    default void toHost(float[] a) {
    }

    /** The host wrote {@code a}: a device copy of it is stale. */
    @Override
    default void fromHost(float[] a) {
    }

    /** Threads this kernel set spreads a product over (the engine spreads its attention over as many). */
    default int threads() {
        return 1;
    }

    static Matmul scalar() {
        return ScalarMatmul.INSTANCE;
    }

    /** Whether {@code jdk.incubator.vector} is in the boot layer (the JVM was started with {@code --add-modules jdk.incubator.vector}). */
    static boolean vectorAvailable() {
        return ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
    }

    /** The Vector API kernels; refused, with how to get them, when the module is absent. */
    static Matmul vector() {
        if (!vectorAvailable())
            throw new IllegalStateException("the Vector API kernels need the jdk.incubator.vector module: start the JVM with --add-modules jdk.incubator.vector");
        return VectorMatmul.INSTANCE;
    }

    /** {@link #vector()} when the module is present, else {@link #scalar()}. */
    static Matmul best() {
        return vectorAvailable() ? VectorMatmul.INSTANCE : ScalarMatmul.INSTANCE;
    }

    /**
     * The Vector API or scalar kernels with rows split over {@code threads} threads (the caller's and
     * {@code threads - 1} shared daemon threads) when a product is large enough to pay for it; every output
     * element is summed as {@code kernels} sums it, so the result does not depend on the split.
     */
    static Matmul parallel(Matmul kernels, int threads) {
        if (!(kernels instanceof Rows r)) throw new IllegalArgumentException("parallel() takes Matmul.scalar() or Matmul.vector(), not " + kernels);
        if (threads < 1) throw new IllegalArgumentException("threads must be at least 1, not " + threads);
        return threads == 1 ? kernels : new ParallelMatmul(r, threads);
    }

    /** Kernels that compute a range of rows (of every token). */
    sealed interface Rows extends Matmul permits ScalarMatmul, VectorMatmul {
        /** Rows {@code from..to} of every token's output. */
        void rows(float[] out, Matrix w, float[] x, int tokens, int from, int to);

        default void matmul(float[] out, Matrix w, float[] x, int tokens) {
            check(out, w, x, tokens);
            rows(out, w, x, tokens, 0, w.rows);
        }
    }

    static void check(float[] out, Matrix w, float[] x, int tokens) {
        if (tokens < 1) throw new IllegalArgumentException("a product has at least one token, not " + tokens);
        if (x.length < (long) tokens * w.cols)
            throw new IllegalArgumentException("x holds " + x.length + " floats, " + tokens + " tokens of " + w.cols + " need " + (long) tokens * w.cols);
        if (out.length < (long) tokens * w.rows)
            throw new IllegalArgumentException("out holds " + out.length + " floats, " + tokens + " tokens of " + w.rows + " need " + (long) tokens * w.rows);
    }
}
