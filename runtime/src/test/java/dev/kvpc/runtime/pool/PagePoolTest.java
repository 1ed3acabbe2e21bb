package dev.kvpc.runtime.pool;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.*;

class PagePoolTest {
    @Test
    void releasedPagesAreReusedAndZeroed() {
        try (PagePool pool = new PagePool()) {
            PagePool.Page a = pool.acquire(4096);
            a.segment().set(java.lang.foreign.ValueLayout.JAVA_INT, 0, 42);
            assertEquals(4096, pool.bytesInUse());
            pool.release(a);
            assertEquals(0, pool.bytesInUse());
            assertEquals(4096, pool.bytesReserved());
            PagePool.Page b = pool.acquire(4096);
            assertSame(a, b);
            assertEquals(0, b.segment().get(java.lang.foreign.ValueLayout.JAVA_INT, 0));
            assertEquals(1, pool.pagesReused());
            assertThrows(IllegalStateException.class, () -> {
                pool.release(b);
                pool.release(b);
            });
            assertEquals(4096, pool.trim());
            assertEquals(0, pool.bytesReserved());
        }
    }

    @Test
    void aReusedPageAskedForAsItIsKeepsItsBytes() {
        try (PagePool pool = new PagePool()) {
            PagePool.Page a = pool.acquire(4096, false);
            assertEquals(0, a.segment().get(java.lang.foreign.ValueLayout.JAVA_INT, 0), "a new page is zeroed");
            a.segment().set(java.lang.foreign.ValueLayout.JAVA_INT, 0, 42);
            pool.release(a);
            PagePool.Page b = pool.acquire(4096, false);
            assertSame(a, b);
            assertEquals(42, b.segment().get(java.lang.foreign.ValueLayout.JAVA_INT, 0), "not cleared when asked as it is");
            assertEquals(4096, pool.bytesInUse());
            pool.release(b);
            assertEquals(0, pool.acquire(4096).segment().get(java.lang.foreign.ValueLayout.JAVA_INT, 0), "cleared when asked zeroed");
        }
    }

    @Test
    void limitIsEnforced() {
        try (PagePool pool = new PagePool(10_000)) {
            pool.acquire(6000);
            OutOfKvMemoryException e = assertThrows(OutOfKvMemoryException.class, () -> pool.acquire(6000));
            assertTrue(e.getMessage().contains("10000"), e.getMessage());
        }
    }

    @Test
    void manyThreadsKeepTheAccountsStraight() throws Exception {
        try (PagePool pool = new PagePool(); ExecutorService ex = Executors.newFixedThreadPool(8)) {
            List<Future<?>> fs = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                fs.add(ex.submit(() -> {
                    List<PagePool.Page> mine = new ArrayList<>();
                    for (int i = 0; i < 500; i++) {
                        mine.add(pool.acquire(1024));
                        if (i % 3 == 0) pool.release(mine.removeFirst());
                    }
                    mine.forEach(pool::release);
                }));
            }
            for (Future<?> f : fs) f.get();
            assertEquals(0, pool.bytesInUse());
            assertEquals(8 * 500, pool.pagesAcquired());
            assertTrue(pool.pagesReused() > 0);
        }
    }
}
