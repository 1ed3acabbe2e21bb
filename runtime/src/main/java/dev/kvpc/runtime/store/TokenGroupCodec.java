package dev.kvpc.runtime.store;

import java.lang.foreign.MemorySegment;

import static dev.kvpc.runtime.store.Packing.BYTE;
import static dev.kvpc.runtime.store.Packing.SHORT_LE;

/**
 * A row quantised per token: {@code headDim / group} groups of {@code group} consecutive channels, each with an
 * asymmetric min/max quantisation to {@code b} bits as the interpreter's {@code Quant.group}: {@code zero = f16(min)},
 * {@code scale = f16((max - zero) / (2^b - 1))}, {@code q = clamp(round((x - zero) / scale), 0, 2^b - 1)},
 * {@code x' = zero + q * scale}; a zero or non-finite scale reads every element as {@code zero}.
 *
 * <p>Layout of one row record ({@link #rowBytes()} bytes, no alignment required):
 * <pre>
 *   [groups x (zero: f16, scale: f16)]          4 bytes per group, little-endian
 *   [codes: ceil(headDim * b / 8) bytes]        element i at bit (i * b) mod 8 of byte (i * b) / 8:
 *                                               int8 one per byte, int4 low nibble first, int2 lowest bits first
 * </pre>
 */
public final class TokenGroupCodec implements RowCodec {
    private final QuantSpec spec;
    private final int headDim, group, groups, bits, levels;
    private final long paramBytes, codeBytes;
    private final boolean quads;

    public TokenGroupCodec(QuantSpec spec, int headDim) {
        spec.validate(headDim);
        if (!spec.quantised() || spec.axis() != QuantSpec.Axis.TOKEN) {
            throw new IllegalArgumentException("not an integer per-token spec: " + spec);
        }
        this.spec = spec;
        this.headDim = headDim;
        this.group = spec.group();
        this.groups = headDim / group;
        this.bits = spec.precision().bits();
        this.levels = spec.precision().levels();
        this.paramBytes = 4L * groups;
        this.codeBytes = spec.precision().packedBytes(headDim);
        this.quads = group % 4 == 0;
    }

    @Override
    public QuantSpec spec() {
        return spec;
    }

    @Override
    public int headDim() {
        return headDim;
    }

    @Override
    public long rowBytes() {
        return paramBytes + codeBytes;
    }

    /** Bytes of the packed codes of a row. */
    public long codeBytes() {
        return codeBytes;
    }

    /** Bytes of the scales and zero points of a row (4 per group). */
    public long paramBytes() {
        return paramBytes;
    }

    /** Zero point of group {@code g} of the row at {@code offset}. */
    public float zero(MemorySegment seg, long offset, int g) {
        return Packing.getF16(seg, offset + 4L * g);
    }

    /** Stored scale of group {@code g} of the row at {@code offset}. */
    public float scale(MemorySegment seg, long offset, int g) {
        return Packing.getF16(seg, offset + 4L * g + 2);
    }

    @Override
    public void write(float[] src, int srcOff, MemorySegment seg, long offset) {
        long cp = offset + paramBytes;
        int cur = 0, fill = 0;
        for (int g = 0; g < groups; g++) {
            int from = srcOff + g * group, to = from + group;
            float min = Float.POSITIVE_INFINITY, max = Float.NEGATIVE_INFINITY;
            for (int i = from; i < to; i++) {
                min = Math.min(min, src[i]);
                max = Math.max(max, src[i]);
            }
            short zb = Float.floatToFloat16(min);
            float zero = Float.float16ToFloat(zb);
            short sb = Float.floatToFloat16((max - zero) / levels);
            float scale = Float.float16ToFloat(sb);
            seg.set(SHORT_LE, offset + 4L * g, zb);
            seg.set(SHORT_LE, offset + 4L * g + 2, sb);
            boolean flat = scale == 0f || !Float.isFinite(scale);
            for (int i = from; i < to; i++) {
                int c = flat ? 0 : Packing.quantise(src[i], zero, scale, levels);
                cur |= c << fill;
                fill += bits;
                if (fill == 8) {
                    seg.set(BYTE, cp++, (byte) cur);
                    cur = 0;
                    fill = 0;
                }
            }
        }
        if (fill > 0) seg.set(BYTE, cp, (byte) cur);
    }

    @Override
    public void read(MemorySegment seg, long offset, float[] dst, int dstOff) {
        long codes = offset + paramBytes;
        for (int g = 0; g < groups; g++) {
            float zero = Packing.getF16(seg, offset + 4L * g);
            float scale = Packing.readScale(Packing.getF16(seg, offset + 4L * g + 2));
            int from = g * group, to = from + group;
            if (quads) {
                for (int i = from; i < to; i += 4) {
                    int c = Packing.quad(seg, codes, i, bits);
                    dst[dstOff + i] = zero + (c & 0xFF) * scale;
                    dst[dstOff + i + 1] = zero + ((c >>> 8) & 0xFF) * scale;
                    dst[dstOff + i + 2] = zero + ((c >>> 16) & 0xFF) * scale;
                    dst[dstOff + i + 3] = zero + (c >>> 24) * scale;
                }
            } else {
                for (int i = from; i < to; i++) dst[dstOff + i] = zero + Packing.code(seg, codes, i, bits) * scale;
            }
        }
    }

    @Override
    public float dot(MemorySegment seg, long offset, float[] q, int qOff) {
        if (!quads) return dotGeneric(seg, offset, q, qOff);
        long codes = offset + paramBytes;
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
        for (int g = 0; g < groups; g++) {
            float zero = Packing.getF16(seg, offset + 4L * g);
            float scale = Packing.readScale(Packing.getF16(seg, offset + 4L * g + 2));
            int from = g * group, to = from + group;
            for (int i = from; i < to; i += 4) {
                int c = Packing.quad(seg, codes, i, bits);
                int j = qOff + i;
                s0 += q[j] * (zero + (c & 0xFF) * scale);
                s1 += q[j + 1] * (zero + ((c >>> 8) & 0xFF) * scale);
                s2 += q[j + 2] * (zero + ((c >>> 16) & 0xFF) * scale);
                s3 += q[j + 3] * (zero + (c >>> 24) * scale);
            }
        }
        return (s0 + s1) + (s2 + s3);
    }

    @Override
    public void axpy(MemorySegment seg, long offset, float w, float[] acc, int accOff) {
        long codes = offset + paramBytes;
        for (int g = 0; g < groups; g++) {
            float zero = Packing.getF16(seg, offset + 4L * g);
            float scale = Packing.readScale(Packing.getF16(seg, offset + 4L * g + 2));
            int from = g * group, to = from + group;
            if (quads) {
                for (int i = from; i < to; i += 4) {
                    int c = Packing.quad(seg, codes, i, bits);
                    int j = accOff + i;
                    acc[j] += w * (zero + (c & 0xFF) * scale);
                    acc[j + 1] += w * (zero + ((c >>> 8) & 0xFF) * scale);
                    acc[j + 2] += w * (zero + ((c >>> 16) & 0xFF) * scale);
                    acc[j + 3] += w * (zero + (c >>> 24) * scale);
                }
            } else {
                for (int i = from; i < to; i++) acc[accOff + i] += w * (zero + Packing.code(seg, codes, i, bits) * scale);
            }
        }
    }

    /** Element {@code i} of the dequantised row at {@code offset}. */
    public float get(MemorySegment seg, long offset, int i) {
        int g = i / group;
        float zero = Packing.getF16(seg, offset + 4L * g);
        float scale = Packing.readScale(Packing.getF16(seg, offset + 4L * g + 2));
        return zero + Packing.code(seg, offset + paramBytes, i, bits) * scale;
    }

    /** Groups that do not start on a multiple of 4 elements: one element at a time, same lanes and order. */
    private float dotGeneric(MemorySegment seg, long offset, float[] q, int qOff) {
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
        int i = 0, n = headDim;
        for (; i + 3 < n; i += 4) {
            s0 += q[qOff + i] * get(seg, offset, i);
            s1 += q[qOff + i + 1] * get(seg, offset, i + 1);
            s2 += q[qOff + i + 2] * get(seg, offset, i + 2);
            s3 += q[qOff + i + 3] * get(seg, offset, i + 3);
        }
        if (i < n) s0 += q[qOff + i] * get(seg, offset, i);
        if (i + 1 < n) s1 += q[qOff + i + 1] * get(seg, offset, i + 1);
        if (i + 2 < n) s2 += q[qOff + i + 2] * get(seg, offset, i + 2);
        return (s0 + s1) + (s2 + s3);
    }

    @Override
    public String toString() {
        return "TokenGroupCodec[" + spec + ", headDim " + headDim + "]";
    }
}
