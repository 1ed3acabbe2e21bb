package dev.kvpc.backend.interp;

/**
 * Storage precisions as the reference semantics sees them: a value stored at a precision is replaced by what
 * reading it back gives. Integer formats are asymmetric min/max quantisation per group (scale and zero point);
 * f16 and bf16 round to nearest.
 */
final class Quant {
    private Quant() {}

    static float f16(float x) {
        return Float.float16ToFloat(Float.floatToFloat16(x));
    }

    static float bf16(float x) {
        if (Float.isNaN(x)) return x;
        int bits = Float.floatToRawIntBits(x);
        int rounding = 0x7FFF + ((bits >>> 16) & 1);
        return Float.intBitsToFloat((bits + rounding) & 0xFFFF0000);
    }

    /** Quantises {@code xs[from..to)} in place to {@code bits} with one scale and zero point (stored as f16). */
    static void group(float[] xs, int from, int to, int bits) {
        float min = Float.POSITIVE_INFINITY, max = Float.NEGATIVE_INFINITY;
        for (int i = from; i < to; i++) {
            min = Math.min(min, xs[i]);
            max = Math.max(max, xs[i]);
        }
        if (from >= to) return;
        int levels = (1 << bits) - 1;
        float zero = f16(min);
        float scale = f16((max - zero) / levels);
        for (int i = from; i < to; i++) {
            if (scale == 0f || !Float.isFinite(scale)) {
                xs[i] = zero;
                continue;
            }
            long q = Math.round((xs[i] - zero) / scale);
            q = Math.max(0, Math.min(levels, q));
            xs[i] = zero + q * scale;
        }
    }
}
