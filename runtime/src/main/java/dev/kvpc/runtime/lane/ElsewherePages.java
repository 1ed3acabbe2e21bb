package dev.kvpc.runtime.lane;

import java.lang.foreign.MemorySegment;

/**
 * Which pages of a chain ({@link RowChain}, {@link BlockChain}) have their newest bytes elsewhere (a device wrote rows
 * or blocks into its copy of them), and where they come back from: a page so marked is brought back before the host
 * reads or writes a byte of it. A page is marked when someone else takes a slot in it ({@link #mark}: its stamp must
 * move then only if the host had it until now) or writes its copy after bringing that copy up to date.
 */
final class ElsewherePages {
    /** Brings page {@code page}'s bytes from where its newest copy is into {@code into}. */
    interface Fill {
        void fill(int page, MemorySegment into);

        /**
         * Copies {@code bytes} at {@code fromOffset} of page {@code fromPage} to {@code toOffset} of page {@code toPage}
         * where both pages' newest bytes are; false where it cannot (the host copies then).
         */
        default boolean move(int fromPage, long fromOffset, int toPage, long toOffset, long bytes) {
            return false;
        }
    }

    private boolean[] flags = new boolean[4];
    private int count;
    private Fill fill;

    void fillFrom(Fill f) {
        this.fill = f;
    }

    /** Throws unless pages of this chain are kept elsewhere ({@link #fillFrom}). */
    void requireKept(String what) {
        if (fill == null) throw new IllegalStateException("this chain's " + what + " are not kept elsewhere");
    }

    /** Whether any page is elsewhere (the check every host access makes first). */
    boolean any() {
        return count != 0;
    }

    boolean has(int p) {
        return p < flags.length && flags[p];
    }

    /** Marks page {@code p} as elsewhere; returns whether the host had it until now. */
    boolean mark(int p) {
        if (p >= flags.length) flags = java.util.Arrays.copyOf(flags, Math.max(p + 1, 2 * flags.length));
        if (flags[p]) return false;
        flags[p] = true;
        count++;
        return true;
    }

    /** Brings page {@code p} back into {@code seg} if its newest bytes are elsewhere. */
    void bringBack(int p, MemorySegment seg) {
        if (has(p)) {
            fill.fill(p, seg);
            flags[p] = false;
            count--;
        }
    }

    /** Moves bytes where both pages are elsewhere, if the holder does; false where the host must copy. */
    boolean move(int fromPage, long fromOffset, int toPage, long toOffset, long bytes) {
        return has(fromPage) && has(toPage) && fill.move(fromPage, fromOffset, toPage, toOffset, bytes);
    }

    /** Pages from {@code from} on were dropped: they hold nothing, wherever their bytes were. */
    void dropFrom(int from) {
        for (int p = from; count != 0 && p < flags.length; p++) {
            if (flags[p]) {
                flags[p] = false;
                count--;
            }
        }
    }
}
