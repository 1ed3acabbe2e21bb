package dev.kvpc.examples.llama;

import dev.kvpc.runtime.engine.Parallel;

/**
 * {@link Matmul#parallel}: contiguous ranges of rows (multiples of 4), the first on the caller's thread, the others
 * on the runtime's shared daemon threads ({@link Parallel}, which the attention of a layer uses too).
 */
final class ParallelMatmul implements Matmul {
    /** Products below this many multiply-adds run on the caller's thread alone (a hand-off costs microseconds). */
    static final long MIN_WORK = 1 << 16;

    private final Rows kernels;
    private final int threads;

    ParallelMatmul(Rows kernels, int threads) {
        this.kernels = kernels;
        this.threads = threads;
    }

    @Override
    public int threads() {
        return threads;
    }

    public String name() {
        return kernels.name() + " x" + threads;
    }

    public void matmul(float[] out, Matrix w, float[] x, int tokens) {
        Matmul.check(out, w, x, tokens);
        int parts = (int) Math.min(threads, Math.max(1, (long) w.rows * w.cols * tokens / MIN_WORK));
        parts = Math.min(parts, Math.max(1, w.rows / 4));
        if (parts == 1) {
            kernels.rows(out, w, x, tokens, 0, w.rows);
            return;
        }
        int step = (w.rows / parts + 3) & ~3, n = parts;
        Parallel.run(parts, p -> {
            int from = Math.min(w.rows, p * step), to = p == n - 1 ? w.rows : Math.min(w.rows, (p + 1) * step);
            kernels.rows(out, w, x, tokens, from, to);
        });
    }
}
