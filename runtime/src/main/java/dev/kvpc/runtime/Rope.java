package dev.kvpc.runtime;

/**
 * Rotary position embedding as llama-family models apply it: channel pairs (2i, 2i+1) rotated by angle
 * {@code position * theta^(-2i/d)}. Given to the runtime (in {@link ModelSpec}) when the host hands over keys and
 * queries before rotation, so that policies with {@code positions cache} can rotate by cache slot instead of text
 * position.
 */
public record Rope(double theta) {
    public Rope {
        if (!(theta > 1) || !Double.isFinite(theta)) throw new IllegalArgumentException("RoPE theta must be a finite number above 1, got " + theta);
    }

    /** Rotates {@code x[off .. off+d)} in place by {@code position}. */
    public void rotate(float[] x, int off, int d, int position) {
        for (int i = 0; i < d / 2; i++) {
            double freq = Math.pow(theta, -2.0 * i / d);
            double a = position * freq, c = Math.cos(a), s = Math.sin(a);
            float x0 = x[off + 2 * i], x1 = x[off + 2 * i + 1];
            x[off + 2 * i] = (float) (x0 * c - x1 * s);
            x[off + 2 * i + 1] = (float) (x0 * s + x1 * c);
        }
    }
}
