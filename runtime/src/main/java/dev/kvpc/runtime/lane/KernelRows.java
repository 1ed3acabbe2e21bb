package dev.kvpc.runtime.lane;

import java.lang.foreign.MemorySegment;

/**
 * What a compiled decode kernel ({@link dev.kvpc.runtime.engine.DecodeKernel}) reads: entries with positions, and
 * their key and value rows in pages, located through a slot table. A {@link Lane} is one (its rows in place); a
 * {@link dev.kvpc.runtime.engine.DenseRows} is another (rows a step has decoded or rotated into arrays, for lanes no kernel reads in place).
 */
public interface KernelRows {
    int headDim();

    /** Entries. */
    int size();

    /**
     * Entry {@code i}'s text position is {@code table[i]} for {@code i < size()} (-1 for a compensation entry); read
     * only, and valid until the rows next change.
     */
    int[] positionTable();

    /** Entry {@code i}'s part {@code p} is row {@code table[2 * i + p.ordinal()]} of that part's pages; read only. */
    int[] slotTable();

    /** Rows per page: row {@code s} is row {@code s % rowsPerPage} of page {@code s / rowsPerPage}. */
    int rowsPerPage();

    /** The pages holding {@code part}'s rows, each row laid out as its row codec says. */
    MemorySegment[] rowPages(Lane.Part part);
}
