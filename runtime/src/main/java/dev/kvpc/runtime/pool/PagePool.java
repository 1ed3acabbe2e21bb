package dev.kvpc.runtime.pool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Off-heap pages for KV lanes, shared by every sequence of a runtime. Thread-safe. A released page goes to a free
 * list of its size and is handed out again, so memory freed by eviction is reused; {@link #trim()} returns free
 * pages to the operating system. {@link #bytesInUse()} is what the cache holds now (pages handed out and not
 * released); {@link #bytesReserved()} adds the free lists.
 */
public final class PagePool implements AutoCloseable {
    /** One page: its memory, and the arena that owns it (closed when the page is trimmed or the pool closes). */
    public static final class Page {
        private final MemorySegment segment;
        private final Arena arena;
        private boolean inUse;

        private Page(long bytes) {
            this.arena = Arena.ofShared();
            this.segment = arena.allocate(bytes, 64);
        }

        public MemorySegment segment() {
            return segment;
        }

        public long bytes() {
            return segment.byteSize();
        }
    }

    private final Map<Long, ArrayDeque<Page>> free = new HashMap<>();
    private final AtomicLong inUse = new AtomicLong(), reserved = new AtomicLong(), acquired = new AtomicLong(), reused = new AtomicLong();
    private final long limit;
    private boolean closed;

    /** A pool with no limit. */
    public PagePool() {
        this(Long.MAX_VALUE);
    }

    /** A pool that refuses to hold more than {@code limitBytes} in use. */
    public PagePool(long limitBytes) {
        if (limitBytes <= 0) throw new IllegalArgumentException("pool limit must be positive");
        this.limit = limitBytes;
    }

    /** A zeroed page of exactly {@code bytes}. */
    public Page acquire(long bytes) {
        return acquire(bytes, true);
    }

    /**
     * A page of exactly {@code bytes}: zeroed when new; a reused one is zeroed only if {@code zeroed}. A caller that
     * writes every part of the page before reading it (a lane's chains: their codecs write whole slots) passes false,
     * and a lane at a page boundary, which takes a page and gives it back at every decode step, no longer clears a
     * whole page each time.
     */
    public synchronized Page acquire(long bytes, boolean zeroed) {
        if (closed) throw new IllegalStateException("page pool is closed");
        if (bytes <= 0) throw new IllegalArgumentException("page size must be positive");
        if (inUse.get() + bytes > limit) {
            throw new OutOfKvMemoryException("KV cache limit of " + limit + " bytes reached (" + inUse.get() + " in use, " + bytes + " more asked)");
        }
        ArrayDeque<Page> list = free.get(bytes);
        Page p = list == null ? null : list.pollFirst();
        if (p == null) {
            p = new Page(bytes);
            reserved.addAndGet(bytes);
        } else {
            if (zeroed) p.segment.fill((byte) 0);
            reused.incrementAndGet();
        }
        p.inUse = true;
        inUse.addAndGet(bytes);
        acquired.incrementAndGet();
        return p;
    }

    public synchronized void release(Page p) {
        if (!p.inUse) throw new IllegalStateException("page released twice");
        p.inUse = false;
        inUse.addAndGet(-p.bytes());
        if (closed) {
            p.arena.close();
            return;
        }
        free.computeIfAbsent(p.bytes(), k -> new ArrayDeque<>()).addFirst(p);
    }

    /** Frees every page on the free lists; returns the bytes given back. */
    public synchronized long trim() {
        long freed = 0;
        for (ArrayDeque<Page> list : free.values()) {
            for (Page p : list) {
                freed += p.bytes();
                p.arena.close();
            }
            list.clear();
        }
        reserved.addAndGet(-freed);
        return freed;
    }

    public long bytesInUse() {
        return inUse.get();
    }

    public long bytesReserved() {
        return reserved.get();
    }

    /** Pages handed out so far, and how many of them were reused from the free lists. */
    public long pagesAcquired() {
        return acquired.get();
    }

    public long pagesReused() {
        return reused.get();
    }

    @Override
    public synchronized void close() {
        trim();
        closed = true;
    }
}
