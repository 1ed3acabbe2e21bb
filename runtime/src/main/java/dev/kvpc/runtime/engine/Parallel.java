package dev.kvpc.runtime.engine;

import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.IntConsumer;

/**
 * Runs the parts of one step on several threads: part 0 on the caller's thread, the others on shared daemon
 * threads, and returns when all are done. A part's exception (the first, by part index) is rethrown on the caller's
 * thread after every part has finished, so no part is still running when the caller sees it.
 */
public final class Parallel {
    private static final ExecutorService POOL = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "kvpc-worker");
        t.setDaemon(true);
        return t;
    });

    private Parallel() {}

    public static void run(int parts, IntConsumer part) {
        if (parts == 1) {
            part.accept(0);
            return;
        }
        Future<?>[] f = new Future<?>[parts];
        for (int p = 1; p < parts; p++) {
            int pi = p;
            f[p] = POOL.submit(() -> part.accept(pi));
        }
        Throwable first = null;
        try {
            part.accept(0);
        } catch (RuntimeException | Error e) {
            first = e;
        }
        boolean interrupted = false;
        for (int p = 1; p < parts; p++) {
            while (true) {
                try {
                    f[p].get();
                    break;
                } catch (ExecutionException e) {
                    if (first == null) first = e.getCause();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true; // the parts write the caller's arrays: wait for them all the same
                }
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
        if (first instanceof RuntimeException re) throw re;
        if (first instanceof Error er) throw er;
    }
}
