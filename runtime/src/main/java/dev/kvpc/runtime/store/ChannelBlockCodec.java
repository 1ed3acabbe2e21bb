package dev.kvpc.runtime.store;

import java.lang.foreign.MemorySegment;

import static dev.kvpc.runtime.store.Packing.BYTE;
import static dev.kvpc.runtime.store.Packing.SHORT_LE;

/**
 * A block of {@code group} tokens quantised per channel (KIVI keys): each of the {@code headDim} channels has one
 * zero point and scale over the block's {@code group} tokens, computed as the interpreter's {@code Quant.group} on
 * that column ({@code zero = f16(min)}, {@code scale = f16((max - zero) / (2^b - 1))}, {@code x' = zero + q * scale};
 * a zero or non-finite scale reads the column as {@code zero}). Only full blocks are quantised; tokens of a
 * partial block stay at the host precision elsewhere.
 *
 * <p>Layout of one block ({@link #blockBytes()} bytes, no alignment required):
 * <pre>
 *   [headDim x (zero: f16, scale: f16)]           4 bytes per channel, little-endian
 *   [group x row codes, ceil(headDim * b / 8) bytes each]
 *                                                 token t's row at headDim * 4 + t * rowCodeBytes; within a row
 *                                                 channel c at bit (c * b) mod 8 of byte (c * b) / 8 (int4 low
 *                                                 nibble first, int2 lowest bits first)
 * </pre>
 *
 * <p>The {@code zeros}/{@code scales} overloads take the block's parameters decoded once by
 * {@link #loadParams} (caller-owned scratch arrays of {@code headDim}), and give bit for bit the same results.
 */
public final class ChannelBlockCodec {
    private final QuantSpec spec;
    private final int headDim, group, bits, levels;
    private final long paramBytes, rowCodeBytes;
    private final boolean quads;

    public ChannelBlockCodec(QuantSpec spec, int headDim) {
        spec.validate(headDim);
        if (!spec.quantised() || spec.axis() != QuantSpec.Axis.CHANNEL) {
            throw new IllegalArgumentException("not an integer per-channel spec: " + spec);
        }
        this.spec = spec;
        this.headDim = headDim;
        this.group = spec.group();
        this.bits = spec.precision().bits();
        this.levels = spec.precision().levels();
        this.paramBytes = 4L * headDim;
        this.rowCodeBytes = spec.precision().packedBytes(headDim);
        this.quads = headDim % 4 == 0;
    }

    public static ChannelBlockCodec of(QuantSpec spec, int headDim) {
        return new ChannelBlockCodec(spec, headDim);
    }

    public QuantSpec spec() {
        return spec;
    }

    public int headDim() {
        return headDim;
    }

    /** Tokens per block. */
    public int group() {
        return group;
    }

    /** Bytes of one block: scales and zero points, then the codes of its {@code group} rows. */
    public long blockBytes() {
        return paramBytes + group * rowCodeBytes;
    }

    /** Bytes of the scales and zero points of a block (4 per channel). */
    public long paramBytes() {
        return paramBytes;
    }

    /** Bytes of the packed codes of one token's row. */
    public long rowCodeBytes() {
        return rowCodeBytes;
    }

    /** Offset, from the block's start, of token {@code t}'s codes. */
    public long rowOffset(int t) {
        return paramBytes + t * rowCodeBytes;
    }

    /** Zero point of channel {@code c} of the block at {@code blockOff}. */
    public float zero(MemorySegment seg, long blockOff, int c) {
        return Packing.getF16(seg, blockOff + 4L * c);
    }

    /** Stored scale of channel {@code c} of the block at {@code blockOff}. */
    public float scale(MemorySegment seg, long blockOff, int c) {
        return Packing.getF16(seg, blockOff + 4L * c + 2);
    }

    // ---- quantisation ----

    /** Quantises {@code group} rows, {@code rows[rowsOff + t * headDim + c]}, into the block at {@code blockOff}. */
    public void quantise(float[] rows, int rowsOff, MemorySegment seg, long blockOff) {
        for (int c = 0; c < headDim; c++) {
            float min = Float.POSITIVE_INFINITY, max = Float.NEGATIVE_INFINITY;
            for (int t = 0, i = rowsOff + c; t < group; t++, i += headDim) {
                min = Math.min(min, rows[i]);
                max = Math.max(max, rows[i]);
            }
            putParams(seg, blockOff, c, min, max);
        }
        for (int t = 0; t < group; t++) {
            long cp = blockOff + rowOffset(t);
            int cur = 0, fill = 0, base = rowsOff + t * headDim;
            for (int c = 0; c < headDim; c++) {
                cur |= code(seg, blockOff, c, rows[base + c]) << fill;
                fill += bits;
                if (fill == 8) {
                    seg.set(BYTE, cp++, (byte) cur);
                    cur = 0;
                    fill = 0;
                }
            }
            if (fill > 0) seg.set(BYTE, cp, (byte) cur);
        }
    }

    /**
     * Quantises {@code group} rows stored at a float precision ({@link Packing}), row {@code t} at
     * {@code srcOff + t * srcStride} of {@code src}, into the block at {@code blockOff} of {@code dst}: the same
     * as reading them back to floats and calling {@link #quantise(float[], int, MemorySegment, long)}.
     */
    public void quantise(Precision host, MemorySegment src, long srcOff, long srcStride, MemorySegment dst, long blockOff) {
        if (host.isInteger()) throw new IllegalArgumentException("rows to quantise must be at a float precision, not " + host);
        for (int c = 0; c < headDim; c++) {
            float min = Float.POSITIVE_INFINITY, max = Float.NEGATIVE_INFINITY;
            for (int t = 0; t < group; t++) {
                float x = Packing.get(host, src, srcOff + t * srcStride, c);
                min = Math.min(min, x);
                max = Math.max(max, x);
            }
            putParams(dst, blockOff, c, min, max);
        }
        for (int t = 0; t < group; t++) {
            long cp = blockOff + rowOffset(t), row = srcOff + t * srcStride;
            int cur = 0, fill = 0;
            for (int c = 0; c < headDim; c++) {
                cur |= code(dst, blockOff, c, Packing.get(host, src, row, c)) << fill;
                fill += bits;
                if (fill == 8) {
                    dst.set(BYTE, cp++, (byte) cur);
                    cur = 0;
                    fill = 0;
                }
            }
            if (fill > 0) dst.set(BYTE, cp, (byte) cur);
        }
    }

    private void putParams(MemorySegment seg, long blockOff, int c, float min, float max) {
        short zb = Float.floatToFloat16(min);
        float zero = Float.float16ToFloat(zb);
        short sb = Float.floatToFloat16((max - zero) / levels);
        seg.set(SHORT_LE, blockOff + 4L * c, zb);
        seg.set(SHORT_LE, blockOff + 4L * c + 2, sb);
    }

    private int code(MemorySegment seg, long blockOff, int c, float x) {
        float zero = Packing.getF16(seg, blockOff + 4L * c);
        float scale = Packing.getF16(seg, blockOff + 4L * c + 2);
        return scale == 0f || !Float.isFinite(scale) ? 0 : Packing.quantise(x, zero, scale, levels);
    }

    // ---- reading, parameters decoded on the fly ----

    /** Channel {@code c} of token {@code t}, dequantised. */
    public float get(MemorySegment seg, long blockOff, int t, int c) {
        float zero = Packing.getF16(seg, blockOff + 4L * c);
        float scale = Packing.readScale(Packing.getF16(seg, blockOff + 4L * c + 2));
        return zero + Packing.code(seg, blockOff + rowOffset(t), c, bits) * scale;
    }

    /** Token {@code t}'s row, dequantised, into {@code dst[dstOff .. dstOff+headDim)}. */
    public void readRow(MemorySegment seg, long blockOff, int t, float[] dst, int dstOff) {
        long codes = blockOff + rowOffset(t);
        for (int c = 0; c < headDim; c++) {
            float zero = Packing.getF16(seg, blockOff + 4L * c);
            float scale = Packing.readScale(Packing.getF16(seg, blockOff + 4L * c + 2));
            dst[dstOff + c] = zero + Packing.code(seg, codes, c, bits) * scale;
        }
    }

    /** {@code sum q[qOff+c] * x'[t][c]} in the package's four-lane order. */
    public float dot(MemorySegment seg, long blockOff, int t, float[] q, int qOff) {
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
        int c = 0, n = headDim;
        if (quads) {
            long codes = blockOff + rowOffset(t);
            for (; c < n; c += 4) {
                int k = Packing.quad(seg, codes, c, bits);
                long pc = blockOff + 4L * c;
                int j = qOff + c;
                s0 += q[j] * (Packing.getF16(seg, pc) + (k & 0xFF) * Packing.readScale(Packing.getF16(seg, pc + 2)));
                s1 += q[j + 1] * (Packing.getF16(seg, pc + 4) + ((k >>> 8) & 0xFF) * Packing.readScale(Packing.getF16(seg, pc + 6)));
                s2 += q[j + 2] * (Packing.getF16(seg, pc + 8) + ((k >>> 16) & 0xFF) * Packing.readScale(Packing.getF16(seg, pc + 10)));
                s3 += q[j + 3] * (Packing.getF16(seg, pc + 12) + (k >>> 24) * Packing.readScale(Packing.getF16(seg, pc + 14)));
            }
            return (s0 + s1) + (s2 + s3);
        }
        for (; c + 3 < n; c += 4) {
            s0 += q[qOff + c] * get(seg, blockOff, t, c);
            s1 += q[qOff + c + 1] * get(seg, blockOff, t, c + 1);
            s2 += q[qOff + c + 2] * get(seg, blockOff, t, c + 2);
            s3 += q[qOff + c + 3] * get(seg, blockOff, t, c + 3);
        }
        if (c < n) s0 += q[qOff + c] * get(seg, blockOff, t, c);
        if (c + 1 < n) s1 += q[qOff + c + 1] * get(seg, blockOff, t, c + 1);
        if (c + 2 < n) s2 += q[qOff + c + 2] * get(seg, blockOff, t, c + 2);
        return (s0 + s1) + (s2 + s3);
    }

    /** {@code acc[accOff+c] += w * x'[t][c]}. */
    public void axpy(MemorySegment seg, long blockOff, int t, float w, float[] acc, int accOff) {
        for (int c = 0; c < headDim; c++) acc[accOff + c] += w * get(seg, blockOff, t, c);
    }

    // ---- reading with the block's parameters decoded once ----

    /**
     * Decodes the block's zero points and reader scales (a zero or non-finite scale as {@code -0.0}, see
     * {@code Packing.readScale}) into {@code zeros[0..headDim)} and {@code scales[0..headDim)}.
     */
    public void loadParams(MemorySegment seg, long blockOff, float[] zeros, float[] scales) {
        for (int c = 0; c < headDim; c++) {
            zeros[c] = Packing.getF16(seg, blockOff + 4L * c);
            scales[c] = Packing.readScale(Packing.getF16(seg, blockOff + 4L * c + 2));
        }
    }

    /** {@link #readRow(MemorySegment, long, int, float[], int)} with parameters from {@link #loadParams}. */
    public void readRow(MemorySegment seg, long blockOff, int t, float[] dst, int dstOff, float[] zeros, float[] scales) {
        long codes = blockOff + rowOffset(t);
        if (quads) {
            for (int c = 0; c < headDim; c += 4) {
                int k = Packing.quad(seg, codes, c, bits);
                dst[dstOff + c] = zeros[c] + (k & 0xFF) * scales[c];
                dst[dstOff + c + 1] = zeros[c + 1] + ((k >>> 8) & 0xFF) * scales[c + 1];
                dst[dstOff + c + 2] = zeros[c + 2] + ((k >>> 16) & 0xFF) * scales[c + 2];
                dst[dstOff + c + 3] = zeros[c + 3] + (k >>> 24) * scales[c + 3];
            }
        } else {
            for (int c = 0; c < headDim; c++) dst[dstOff + c] = zeros[c] + Packing.code(seg, codes, c, bits) * scales[c];
        }
    }

    /** {@link #dot(MemorySegment, long, int, float[], int)} with parameters from {@link #loadParams}. */
    public float dot(MemorySegment seg, long blockOff, int t, float[] q, int qOff, float[] zeros, float[] scales) {
        long codes = blockOff + rowOffset(t);
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
        int c = 0, n = headDim;
        if (quads) {
            for (; c < n; c += 4) {
                int k = Packing.quad(seg, codes, c, bits);
                int j = qOff + c;
                s0 += q[j] * (zeros[c] + (k & 0xFF) * scales[c]);
                s1 += q[j + 1] * (zeros[c + 1] + ((k >>> 8) & 0xFF) * scales[c + 1]);
                s2 += q[j + 2] * (zeros[c + 2] + ((k >>> 16) & 0xFF) * scales[c + 2]);
                s3 += q[j + 3] * (zeros[c + 3] + (k >>> 24) * scales[c + 3]);
            }
        } else {
            for (; c + 3 < n; c += 4) {
                s0 += q[qOff + c] * (zeros[c] + Packing.code(seg, codes, c, bits) * scales[c]);
                s1 += q[qOff + c + 1] * (zeros[c + 1] + Packing.code(seg, codes, c + 1, bits) * scales[c + 1]);
                s2 += q[qOff + c + 2] * (zeros[c + 2] + Packing.code(seg, codes, c + 2, bits) * scales[c + 2]);
                s3 += q[qOff + c + 3] * (zeros[c + 3] + Packing.code(seg, codes, c + 3, bits) * scales[c + 3]);
            }
            if (c < n) s0 += q[qOff + c] * (zeros[c] + Packing.code(seg, codes, c, bits) * scales[c]);
            if (c + 1 < n) s1 += q[qOff + c + 1] * (zeros[c + 1] + Packing.code(seg, codes, c + 1, bits) * scales[c + 1]);
            if (c + 2 < n) s2 += q[qOff + c + 2] * (zeros[c + 2] + Packing.code(seg, codes, c + 2, bits) * scales[c + 2]);
        }
        return (s0 + s1) + (s2 + s3);
    }

    /** {@link #axpy(MemorySegment, long, int, float, float[], int)} with parameters from {@link #loadParams}. */
    public void axpy(MemorySegment seg, long blockOff, int t, float w, float[] acc, int accOff, float[] zeros, float[] scales) {
        long codes = blockOff + rowOffset(t);
        if (quads) {
            for (int c = 0; c < headDim; c += 4) {
                int k = Packing.quad(seg, codes, c, bits);
                int j = accOff + c;
                acc[j] += w * (zeros[c] + (k & 0xFF) * scales[c]);
                acc[j + 1] += w * (zeros[c + 1] + ((k >>> 8) & 0xFF) * scales[c + 1]);
                acc[j + 2] += w * (zeros[c + 2] + ((k >>> 16) & 0xFF) * scales[c + 2]);
                acc[j + 3] += w * (zeros[c + 3] + (k >>> 24) * scales[c + 3]);
            }
        } else {
            for (int c = 0; c < headDim; c++) acc[accOff + c] += w * (zeros[c] + Packing.code(seg, codes, c, bits) * scales[c]);
        }
    }

    /**
     * The dot of {@code q} with every token of the block: {@code out[outOff + t]} for {@code t < group}, each equal to
     * {@link #dot(MemorySegment, long, int, float[], int)}. {@code zeros} and {@code scales} are scratch of
     * {@code headDim}, overwritten.
     */
    public void dotBlock(MemorySegment seg, long blockOff, float[] q, int qOff, float[] out, int outOff, float[] zeros, float[] scales) {
        loadParams(seg, blockOff, zeros, scales);
        for (int t = 0; t < group; t++) out[outOff + t] = dot(seg, blockOff, t, q, qOff, zeros, scales);
    }

    /**
     * {@code acc[accOff + c] += w[wOff + t] * x'[t][c]} for every token of the block, tokens in order (the same as
     * {@link #axpy(MemorySegment, long, int, float, float[], int)} for t = 0, 1, ...). {@code zeros} and
     * {@code scales} are scratch of {@code headDim}, overwritten.
     */
    public void axpyBlock(MemorySegment seg, long blockOff, float[] w, int wOff, float[] acc, int accOff, float[] zeros, float[] scales) {
        loadParams(seg, blockOff, zeros, scales);
        for (int t = 0; t < group; t++) axpy(seg, blockOff, t, w[wOff + t], acc, accOff, zeros, scales);
    }

    @Override
    public String toString() {
        return "ChannelBlockCodec[" + spec + ", headDim " + headDim + "]";
    }
}
