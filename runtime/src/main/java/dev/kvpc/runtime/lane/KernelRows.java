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

    // ---- rows of several formats: the chains ----

    /**
     * Entry {@code i}'s part {@code p} is slot {@code slotTable()[2 * i + p]} of chain {@code table[2 * i + p]}; read
     * only, valid until the rows next change.
     */
    int[] chainTable();

    /** Chains, numbered from 0 (some may hold no rows now). */
    int chainCount();

    /**
     * How chain {@code c} stores its rows. A per-token format ({@link dev.kvpc.runtime.store.QuantSpec.Axis#TOKEN},
     * or a float precision): slot {@code s} is row {@code s % rowsPerPage()} of page {@code s / rowsPerPage()}, laid
     * out as its {@link dev.kvpc.runtime.store.RowCodec} says. A per-channel format: blocks of {@code spec.group()}
     * tokens, one block per page, laid out as {@link dev.kvpc.runtime.store.ChannelBlockCodec} says; slot {@code s} is
     * token {@code s % group} of the block in page {@code s / group}.
     */
    dev.kvpc.runtime.store.QuantSpec chainSpec(int c);

    /** Chain {@code c}'s pages; valid until the rows next change. */
    MemorySegment[] chainPages(int c);

    /**
     * As {@link #chainPages}, without first bringing back pages whose newest bytes are elsewhere
     * ({@link Lane#appendElsewhere}): what the holder of those bytes reads to keep its copy, which it only sends
     * where a page's stamp moved.
     */
    default MemorySegment[] chainPagesAsHeld(int c) {
        return chainPages(c);
    }

    /**
     * Per page of chain {@code c}, a stamp that changes whenever a byte of the page is written, so that a copy of the
     * pages elsewhere (an OpenCL device's) re-sends only pages whose stamp moved; null where the rows keep none (every
     * page then counts as changed). Read only, valid until the rows next change.
     */
    default long[] chainPageStamps(int c) {
        return null;
    }
}
