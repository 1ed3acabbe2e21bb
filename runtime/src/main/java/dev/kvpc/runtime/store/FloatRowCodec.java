package dev.kvpc.runtime.store;

import java.lang.foreign.MemorySegment;

/** A row at f32, f16 or bf16: {@code headDim} elements of {@link Packing}, no scales. */
public record FloatRowCodec(Precision precision, int headDim) implements RowCodec {
    public FloatRowCodec {
        if (precision.isInteger()) throw new IllegalArgumentException(precision + " is not a float precision");
        if (headDim < 1) throw new IllegalArgumentException("head dimension must be >= 1, got " + headDim);
    }

    @Override
    public QuantSpec spec() {
        return QuantSpec.of(precision);
    }

    @Override
    public long rowBytes() {
        return precision.packedBytes(headDim);
    }

    @Override
    public void write(float[] src, int srcOff, MemorySegment seg, long offset) {
        Packing.writeRow(precision, src, srcOff, headDim, seg, offset);
    }

    @Override
    public void read(MemorySegment seg, long offset, float[] dst, int dstOff) {
        Packing.readRow(precision, seg, offset, dst, dstOff, headDim);
    }

    @Override
    public float dot(MemorySegment seg, long offset, float[] q, int qOff) {
        return Packing.dot(precision, seg, offset, q, qOff, headDim);
    }

    @Override
    public void axpy(MemorySegment seg, long offset, float w, float[] acc, int accOff) {
        Packing.axpy(precision, seg, offset, w, acc, accOff, headDim);
    }
}
