package dev.kvpc.runtime.store;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Rows of floats at a float precision in off-heap memory: f32 (4 bytes, the float's bits), f16 (2 bytes, IEEE
 * binary16, round to nearest even via {@link Float#floatToFloat16}) and bf16 (2 bytes, the upper half of the f32
 * bits after rounding to nearest even, as the interpreter's {@code Quant.bf16}); all little-endian, element
 * {@code i} at {@code offset + i * bytes}, no alignment required. Also the low-level accessors the integer codecs
 * share. Allocation-free.
 */
public final class Packing {
    private Packing() {}

    static final ValueLayout.OfByte BYTE = ValueLayout.JAVA_BYTE;
    static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt INT_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    // ---- scalar conversions ----

    /** {@code x} rounded to f16 and back. */
    public static float f16(float x) {
        return Float.float16ToFloat(Float.floatToFloat16(x));
    }

    /** {@code x} rounded to bf16 (nearest even) and back; NaN stays NaN. */
    public static float bf16(float x) {
        if (Float.isNaN(x)) return x;
        int bits = Float.floatToRawIntBits(x);
        int rounding = 0x7FFF + ((bits >>> 16) & 1);
        return Float.intBitsToFloat((bits + rounding) & 0xFFFF0000);
    }

    /** The 16 stored bits of {@code x} at bf16; a NaN keeps its sign and becomes a quiet NaN. */
    public static short bf16Bits(float x) {
        if (Float.isNaN(x)) return (short) ((Float.floatToRawIntBits(x) >>> 16) | 0x7FC0);
        return (short) (Float.floatToRawIntBits(bf16(x)) >>> 16);
    }

    /** The float of stored bf16 bits. */
    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat(bits << 16);
    }

    /** The float of the little-endian f16 at {@code offset}. */
    public static float getF16(MemorySegment seg, long offset) {
        return Float.float16ToFloat(seg.get(SHORT_LE, offset));
    }

    // ---- rows ----

    /** Bytes of one row of {@code n} elements at a float precision. */
    public static long rowBytes(Precision p, int n) {
        checkFloat(p);
        return p.packedBytes(n);
    }

    /** Writes {@code src[srcOff .. srcOff+n)} at precision {@code p} to {@code seg} at {@code offset}. */
    public static void writeRow(Precision p, float[] src, int srcOff, int n, MemorySegment seg, long offset) {
        switch (p) {
            case F32 -> {
                for (int i = 0; i < n; i++) seg.set(FLOAT_LE, offset + 4L * i, src[srcOff + i]);
            }
            case F16 -> {
                for (int i = 0; i < n; i++) seg.set(SHORT_LE, offset + 2L * i, Float.floatToFloat16(src[srcOff + i]));
            }
            case BF16 -> {
                for (int i = 0; i < n; i++) seg.set(SHORT_LE, offset + 2L * i, bf16Bits(src[srcOff + i]));
            }
            default -> throw notFloat(p);
        }
    }

    /** Reads a row of {@code n} elements at precision {@code p} from {@code seg} into {@code dst[dstOff ..)}. */
    public static void readRow(Precision p, MemorySegment seg, long offset, float[] dst, int dstOff, int n) {
        switch (p) {
            case F32 -> MemorySegment.copy(seg, FLOAT_LE, offset, dst, dstOff, n);
            case F16 -> {
                for (int i = 0; i < n; i++) dst[dstOff + i] = getF16(seg, offset + 2L * i);
            }
            case BF16 -> {
                for (int i = 0; i < n; i++) dst[dstOff + i] = bf16ToFloat(seg.get(SHORT_LE, offset + 2L * i));
            }
            default -> throw notFloat(p);
        }
    }

    /** Element {@code i} of a row at precision {@code p}. */
    public static float get(Precision p, MemorySegment seg, long offset, int i) {
        return switch (p) {
            case F32 -> seg.get(FLOAT_LE, offset + 4L * i);
            case F16 -> getF16(seg, offset + 2L * i);
            case BF16 -> bf16ToFloat(seg.get(SHORT_LE, offset + 2L * i));
            default -> throw notFloat(p);
        };
    }

    /** {@code sum q[qOff+i] * x[i]} over the stored row of {@code n} elements, in the package's four-lane order. */
    public static float dot(Precision p, MemorySegment seg, long offset, float[] q, int qOff, int n) {
        return switch (p) {
            case F32 -> dotF32(seg, offset, q, qOff, n);
            case F16 -> dotF16(seg, offset, q, qOff, n);
            case BF16 -> dotBf16(seg, offset, q, qOff, n);
            default -> throw notFloat(p);
        };
    }

    /** {@code acc[accOff+i] += w * x[i]} over the stored row of {@code n} elements. */
    public static void axpy(Precision p, MemorySegment seg, long offset, float w, float[] acc, int accOff, int n) {
        switch (p) {
            case F32 -> axpyF32(seg, offset, w, acc, accOff, n);
            case F16 -> axpyF16(seg, offset, w, acc, accOff, n);
            case BF16 -> axpyBf16(seg, offset, w, acc, accOff, n);
            default -> throw notFloat(p);
        }
    }

    private static void axpyF32(MemorySegment seg, long off, float w, float[] acc, int accOff, int n) {
        for (int i = 0; i < n; i++) acc[accOff + i] += w * seg.get(FLOAT_LE, off + 4L * i);
    }

    private static void axpyF16(MemorySegment seg, long off, float w, float[] acc, int accOff, int n) {
        for (int i = 0; i < n; i++) acc[accOff + i] += w * getF16(seg, off + 2L * i);
    }

    private static void axpyBf16(MemorySegment seg, long off, float w, float[] acc, int accOff, int n) {
        for (int i = 0; i < n; i++) acc[accOff + i] += w * bf16ToFloat(seg.get(SHORT_LE, off + 2L * i));
    }

    private static float dotF32(MemorySegment seg, long off, float[] q, int qOff, int n) {
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
        int i = 0;
        for (; i + 3 < n; i += 4) {
            long o = off + 4L * i;
            s0 += q[qOff + i] * seg.get(FLOAT_LE, o);
            s1 += q[qOff + i + 1] * seg.get(FLOAT_LE, o + 4);
            s2 += q[qOff + i + 2] * seg.get(FLOAT_LE, o + 8);
            s3 += q[qOff + i + 3] * seg.get(FLOAT_LE, o + 12);
        }
        if (i < n) s0 += q[qOff + i] * seg.get(FLOAT_LE, off + 4L * i);
        if (i + 1 < n) s1 += q[qOff + i + 1] * seg.get(FLOAT_LE, off + 4L * (i + 1));
        if (i + 2 < n) s2 += q[qOff + i + 2] * seg.get(FLOAT_LE, off + 4L * (i + 2));
        return (s0 + s1) + (s2 + s3);
    }

    private static float dotF16(MemorySegment seg, long off, float[] q, int qOff, int n) {
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
        int i = 0;
        for (; i + 3 < n; i += 4) {
            long o = off + 2L * i;
            s0 += q[qOff + i] * getF16(seg, o);
            s1 += q[qOff + i + 1] * getF16(seg, o + 2);
            s2 += q[qOff + i + 2] * getF16(seg, o + 4);
            s3 += q[qOff + i + 3] * getF16(seg, o + 6);
        }
        if (i < n) s0 += q[qOff + i] * getF16(seg, off + 2L * i);
        if (i + 1 < n) s1 += q[qOff + i + 1] * getF16(seg, off + 2L * (i + 1));
        if (i + 2 < n) s2 += q[qOff + i + 2] * getF16(seg, off + 2L * (i + 2));
        return (s0 + s1) + (s2 + s3);
    }

    private static float dotBf16(MemorySegment seg, long off, float[] q, int qOff, int n) {
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
        int i = 0;
        for (; i + 3 < n; i += 4) {
            long o = off + 2L * i;
            s0 += q[qOff + i] * bf16ToFloat(seg.get(SHORT_LE, o));
            s1 += q[qOff + i + 1] * bf16ToFloat(seg.get(SHORT_LE, o + 2));
            s2 += q[qOff + i + 2] * bf16ToFloat(seg.get(SHORT_LE, o + 4));
            s3 += q[qOff + i + 3] * bf16ToFloat(seg.get(SHORT_LE, o + 6));
        }
        if (i < n) s0 += q[qOff + i] * bf16ToFloat(seg.get(SHORT_LE, off + 2L * i));
        if (i + 1 < n) s1 += q[qOff + i + 1] * bf16ToFloat(seg.get(SHORT_LE, off + 2L * (i + 1)));
        if (i + 2 < n) s2 += q[qOff + i + 2] * bf16ToFloat(seg.get(SHORT_LE, off + 2L * (i + 2)));
        return (s0 + s1) + (s2 + s3);
    }

    // ---- shared by the integer codecs ----

    /**
     * Four consecutive codes {@code i .. i+3} ({@code i} a multiple of 4) of a packed code array at {@code codes},
     * one per byte of the result, code {@code i} lowest.
     */
    static int quad(MemorySegment seg, long codes, int i, int bits) {
        switch (bits) {
            case 2 -> {
                int v = seg.get(BYTE, codes + (i >>> 2)) & 0xFF;
                return (v & 0x3) | ((v & 0xC) << 6) | ((v & 0x30) << 12) | ((v & 0xC0) << 18);
            }
            case 4 -> {
                int v = seg.get(SHORT_LE, codes + (i >>> 1)) & 0xFFFF;
                return (v & 0xF) | ((v & 0xF0) << 4) | ((v & 0xF00) << 8) | ((v & 0xF000) << 12);
            }
            default -> {
                return seg.get(INT_LE, codes + i);
            }
        }
    }

    /** Code {@code i} of a packed code array at {@code codes}. */
    static int code(MemorySegment seg, long codes, int i, int bits) {
        return switch (bits) {
            case 2 -> (seg.get(BYTE, codes + (i >>> 2)) >>> ((i & 3) << 1)) & 0x3;
            case 4 -> (seg.get(BYTE, codes + (i >>> 1)) >>> ((i & 1) << 2)) & 0xF;
            default -> seg.get(BYTE, codes + i) & 0xFF;
        };
    }

    /**
     * The scale a reader multiplies codes by: a zero or non-finite scale (the whole group reads as its zero point,
     * codes are written 0) becomes {@code -0.0}, so that {@code zero + 0 * -0.0} is {@code zero} bit for bit (also for
     * a zero point of {@code -0.0}, infinite or NaN) and the inner loops need no branch.
     */
    public static float readScale(float scale) {
        return scale == 0f || !Float.isFinite(scale) ? -0.0f : scale;
    }

    /** Code of {@code x} under a group's zero point and (non-degenerate) scale, as the interpreter computes it. */
    static int quantise(float x, float zero, float scale, int levels) {
        int q = Math.round((x - zero) / scale);
        return Math.max(0, Math.min(levels, q));
    }

    private static void checkFloat(Precision p) {
        if (p.isInteger()) throw notFloat(p);
    }

    private static IllegalArgumentException notFloat(Precision p) {
        return new IllegalArgumentException(p + " is not a float precision (use a quantising codec)");
    }
}
