package dev.kvpc.runtime.store;

import java.lang.foreign.MemorySegment;

/**
 * One token's row of {@code headDim} keys or values as a self-contained record of {@link #rowBytes()} bytes at
 * some offset of a segment: a float precision ({@link FloatRowCodec}) or integer per-token groups
 * ({@link TokenGroupCodec}). Per-channel quantisation spans several tokens and has its own block codec,
 * {@link ChannelBlockCodec}. Implementations are immutable, thread-safe and allocation-free.
 */
public sealed interface RowCodec permits FloatRowCodec, TokenGroupCodec {
    /** The row codec of a spec: any float precision, or an integer precision grouped per token. */
    static RowCodec of(QuantSpec spec, int headDim) {
        spec.validate(headDim);
        if (!spec.quantised()) return new FloatRowCodec(spec.precision(), headDim);
        if (spec.axis() == QuantSpec.Axis.TOKEN) return new TokenGroupCodec(spec, headDim);
        throw new IllegalArgumentException(spec + " spans tokens: use ChannelBlockCodec");
    }

    QuantSpec spec();

    int headDim();

    /** Bytes of one stored row, scales included. */
    long rowBytes();

    /** Stores {@code src[srcOff .. srcOff+headDim)} at {@code offset}. */
    void write(float[] src, int srcOff, MemorySegment seg, long offset);

    /** Reads the row at {@code offset} back (dequantised) into {@code dst[dstOff .. dstOff+headDim)}. */
    void read(MemorySegment seg, long offset, float[] dst, int dstOff);

    /** {@code sum q[qOff+i] * x'[i]} with {@code x'} the dequantised row, in the package's four-lane order. */
    float dot(MemorySegment seg, long offset, float[] q, int qOff);

    /** {@code acc[accOff+i] += w * x'[i]} with {@code x'} the dequantised row. */
    void axpy(MemorySegment seg, long offset, float w, float[] acc, int accOff);

    default void write(float[] src, MemorySegment seg, long offset) {
        write(src, 0, seg, offset);
    }

    default void read(MemorySegment seg, long offset, float[] dst) {
        read(seg, offset, dst, 0);
    }

    default float dot(MemorySegment seg, long offset, float[] q) {
        return dot(seg, offset, q, 0);
    }

    default void axpy(MemorySegment seg, long offset, float w, float[] acc) {
        axpy(seg, offset, w, acc, 0);
    }
}
