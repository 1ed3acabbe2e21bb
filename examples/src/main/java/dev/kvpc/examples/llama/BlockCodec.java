package dev.kvpc.examples.llama;

/**
 * GGML's block formats that the engine reads by decoding a row at a time: the K-quants Q4_K, Q5_K and Q6_K (blocks of
 * 256 weights) and BF16. Each is decoded exactly as llama.cpp's {@code dequantize_row_*} does it, in float, in the
 * same order of operations, so a weight here is the weight llama.cpp computes with. {@link #encode} writes valid
 * blocks from floats (a plain min/max fit per sub-block, not llama.cpp's search): for the project's own files and
 * tests, and for {@code synth-model}.
 *
 * <p>Layouts (bytes, little-endian):
 * <ul>
 *   <li>Q4_K, 144 a block: f16 {@code d}, f16 {@code dmin}, 12 bytes of eight 6-bit scales and eight 6-bit mins,
 *       128 bytes of nibbles. Weight = {@code d*sc * q - dmin*m}, q in 0..15; sub-blocks of 32.</li>
 *   <li>Q5_K, 176: as Q4_K, then 32 bytes of fifth bits before the nibbles; q in 0..31.</li>
 *   <li>Q6_K, 210: 128 bytes of low nibbles, 64 of high 2-bit pairs, 16 signed 8-bit scales (sub-blocks of 16), f16
 *       {@code d}. Weight = {@code d*sc * (q - 32)}, q in 0..63.</li>
 *   <li>BF16, 2 a weight: the high half of the float.</li>
 * </ul>
 */
public enum BlockCodec {
    Q4_K(256, 144), Q5_K(256, 176), Q6_K(256, 210), BF16(1, 2);

    /** Weights a block, bytes a block. */
    public final int block, bytes;

    BlockCodec(int block, int bytes) {
        this.block = block;
        this.bytes = bytes;
    }

    /** Decodes {@code count} weights (whole blocks) from {@code src} at byte {@code at} into {@code dst} at {@code off}. */
    public void decode(byte[] src, int at, float[] dst, int off, int count) {
        switch (this) {
            case Q4_K -> {
                for (int b = 0; b < count / 256; b++) q4k(src, at + b * bytes, dst, off + b * 256, false);
            }
            case Q5_K -> {
                for (int b = 0; b < count / 256; b++) q4k(src, at + b * bytes, dst, off + b * 256, true);
            }
            case Q6_K -> {
                for (int b = 0; b < count / 256; b++) q6k(src, at + b * bytes, dst, off + b * 256);
            }
            case BF16 -> {
                for (int j = 0; j < count; j++) dst[off + j] = Float.intBitsToFloat((u8(src, at + 2 * j) | u8(src, at + 2 * j + 1) << 8) << 16);
            }
        }
    }

    private static int u8(byte[] s, int i) {
        return s[i] & 0xff;
    }

    static float half(byte[] s, int i) {
        return Float.float16ToFloat((short) (u8(s, i) | u8(s, i + 1) << 8));
    }

    /** Sub-block {@code j}'s 6-bit scale (0) or min (1) from the 12 packed bytes at {@code p}. */
    static int scaleMin(byte[] s, int p, int j, int which) {
        if (j < 4) return u8(s, p + j + 4 * which) & 63;
        return which == 0 ? (u8(s, p + j + 4) & 0xF) | ((u8(s, p + j - 4) >> 6) << 4) : (u8(s, p + j + 4) >> 4) | ((u8(s, p + j) >> 6) << 4);
    }

    private static void q4k(byte[] s, int p, float[] y, int o, boolean fifth) {
        float d = half(s, p), min = half(s, p + 2);
        int sc = p + 4, qh = p + 16, ql = fifth ? p + 48 : p + 16;
        for (int j = 0, is = 0; j < 256; j += 64, is += 2) {
            float d1 = d * scaleMin(s, sc, is, 0), m1 = min * scaleMin(s, sc, is, 1);
            float d2 = d * scaleMin(s, sc, is + 1, 0), m2 = min * scaleMin(s, sc, is + 1, 1);
            int u1 = 1 << (j / 32), u2 = u1 << 1, q = ql + j / 2;
            for (int l = 0; l < 32; l++) {
                int lo = u8(s, q + l) & 0xF, hi = u8(s, q + l) >> 4;
                if (fifth) {
                    lo += (u8(s, qh + l) & u1) != 0 ? 16 : 0;
                    hi += (u8(s, qh + l) & u2) != 0 ? 16 : 0;
                }
                y[o + j + l] = d1 * lo - m1;
                y[o + j + 32 + l] = d2 * hi - m2;
            }
        }
    }

    private static void q6k(byte[] s, int p, float[] y, int o) {
        float d = half(s, p + 208);
        for (int n = 0; n < 2; n++) {
            int ql = p + 64 * n, qh = p + 128 + 32 * n, sc = p + 192 + 8 * n, yo = o + 128 * n;
            for (int l = 0; l < 32; l++) {
                int is = l / 16, h = u8(s, qh + l);
                int q1 = ((u8(s, ql + l) & 0xF) | ((h & 3) << 4)) - 32;
                int q2 = ((u8(s, ql + l + 32) & 0xF) | (((h >> 2) & 3) << 4)) - 32;
                int q3 = ((u8(s, ql + l) >> 4) | (((h >> 4) & 3) << 4)) - 32;
                int q4 = ((u8(s, ql + l + 32) >> 4) | (((h >> 6) & 3) << 4)) - 32;
                y[yo + l] = d * s[sc + is] * q1;
                y[yo + l + 32] = d * s[sc + is + 2] * q2;
                y[yo + l + 64] = d * s[sc + is + 4] * q3;
                y[yo + l + 96] = d * s[sc + is + 6] * q4;
            }
        }
    }

    /** Encodes {@code w} (a whole number of blocks) in this format. */
    public byte[] encode(float[] w) {
        if (w.length % block != 0) throw new IllegalArgumentException(w.length + " weights are not whole " + this + " blocks of " + block);
        byte[] out = new byte[w.length / block * bytes];
        for (int b = 0; b < w.length / block; b++) {
            int p = b * bytes, o = b * block;
            switch (this) {
                case Q4_K -> encodeQ4k(w, o, out, p, false);
                case Q5_K -> encodeQ4k(w, o, out, p, true);
                case Q6_K -> encodeQ6k(w, o, out, p);
                case BF16 -> {
                    int bits = Float.floatToRawIntBits(w[o]);
                    // round to nearest even, NaN kept quiet
                    int h = Float.isNaN(w[o]) ? (bits >>> 16) | 0x40 : (bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16;
                    out[p] = (byte) h;
                    out[p + 1] = (byte) (h >>> 8);
                }
            }
        }
        return out;
    }

    private static void putHalf(byte[] out, int p, float v) {
        short h = Float.floatToFloat16(v);
        out[p] = (byte) h;
        out[p + 1] = (byte) (h >> 8);
    }

    private static void encodeQ4k(float[] w, int o, byte[] out, int p, boolean fifth) {
        int levels = fifth ? 31 : 15;
        float[] scale = new float[8], min = new float[8];
        float maxScale = 0, maxMin = 0;
        for (int sb = 0; sb < 8; sb++) {
            float lo = 0, hi = 0;
            for (int i = 0; i < 32; i++) {
                lo = Math.min(lo, w[o + 32 * sb + i]);
                hi = Math.max(hi, w[o + 32 * sb + i]);
            }
            scale[sb] = (hi - lo) / levels;
            min[sb] = -lo;
            maxScale = Math.max(maxScale, scale[sb]);
            maxMin = Math.max(maxMin, min[sb]);
        }
        putHalf(out, p, maxScale / 63);
        putHalf(out, p + 2, maxMin / 63);
        float d = half(out, p), dmin = half(out, p + 2);
        int[] sc = new int[8], m = new int[8];
        for (int sb = 0; sb < 8; sb++) {
            sc[sb] = d == 0 ? 0 : Math.min(63, Math.round(scale[sb] / d));
            m[sb] = dmin == 0 ? 0 : Math.min(63, Math.round(min[sb] / dmin));
        }
        int s = p + 4;
        for (int j = 0; j < 8; j++) {
            if (j < 4) {
                out[s + j] |= (byte) sc[j];
                out[s + j + 4] |= (byte) m[j];
            } else {
                out[s + j + 4] = (byte) ((sc[j] & 0xF) | ((m[j] & 0xF) << 4));
                out[s + j - 4] |= (byte) ((sc[j] >> 4) << 6);
                out[s + j] |= (byte) ((m[j] >> 4) << 6);
            }
        }
        int qh = p + 16, ql = fifth ? p + 48 : p + 16;
        for (int i = 0; i < 256; i++) {
            int sb = i / 32;
            float step = d * sc[sb], off = dmin * m[sb];
            int q = step == 0 ? 0 : Math.max(0, Math.min(levels, Math.round((w[o + i] + off) / step)));
            int chunk = i / 64, l = i % 32;
            boolean high = (i % 64) >= 32;
            out[ql + 32 * chunk + l] |= (byte) (high ? (q & 0xF) << 4 : q & 0xF);
            if (fifth && q > 15) out[qh + l] |= (byte) (1 << (2 * chunk + (high ? 1 : 0)));
        }
    }

    private static void encodeQ6k(float[] w, int o, byte[] out, int p) {
        float[] scale = new float[16];
        float maxScale = 0;
        for (int sb = 0; sb < 16; sb++) {
            float amax = 0;
            for (int i = 0; i < 16; i++) amax = Math.max(amax, Math.abs(w[o + 16 * sb + i]));
            scale[sb] = amax / 31;
            maxScale = Math.max(maxScale, scale[sb]);
        }
        putHalf(out, p + 208, maxScale / 127);
        float d = half(out, p + 208);
        int[] sc = new int[16];
        for (int sb = 0; sb < 16; sb++) {
            sc[sb] = d == 0 ? 0 : Math.min(127, Math.round(scale[sb] / d));
            out[p + 192 + sb] = (byte) sc[sb];
        }
        for (int i = 0; i < 256; i++) {
            float step = d * sc[i / 16];
            int q = (step == 0 ? 0 : Math.max(-32, Math.min(31, Math.round(w[o + i] / step)))) + 32;
            int n = i / 128, r = i % 128, part = r / 32, l = r % 32;
            int ql = p + 64 * n + l + (part % 2 == 1 ? 32 : 0), qh = p + 128 + 32 * n + l;
            out[ql] |= (byte) (part < 2 ? q & 0xF : (q & 0xF) << 4);
            out[qh] |= (byte) (((q >> 4) & 3) << (2 * part));
        }
    }
}
