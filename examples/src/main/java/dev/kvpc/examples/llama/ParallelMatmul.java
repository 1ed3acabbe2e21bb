package dev.kvpc.examples.llama;

import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * {@link Matmul#parallel}: contiguous ranges of rows (multiples of 4), the first on the caller's thread, the others
 * on a pool of daemon threads shared by every instance (idle threads end after a minute).
 */
final class ParallelMatmul implements Matmul {
    /** Products below this many multiply-adds run on the caller's thread alone (a hand-off costs microseconds). */
    static final long MIN_WORK = 1 << 16;

    private final Rows kernels;
    private final int threads;
    private static final ExecutorService POOL = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "kvpc-matmul");
        t.setDaemon(true);
        return t;
    });

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
        int step = (w.rows / parts + 3) & ~3;
        Future<?>[] f = new Future<?>[parts];
        for (int p = 1; p < parts; p++) {
            int from = Math.min(w.rows, p * step), to = p == parts - 1 ? w.rows : Math.min(w.rows, (p + 1) * step);
            f[p] = POOL.submit(() -> kernels.rows(out, w, x, tokens, from, to));
        }
        kernels.rows(out, w, x, tokens, 0, Math.min(w.rows, step));
        try {
            for (int p = 1; p < parts; p++) f[p].get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for a matmul's rows", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException r) throw r;
            throw new IllegalStateException(e.getCause());
        }
    }
}
