package dev.kvpc.examples.llama;

import java.util.Arrays;

/**
 * Greedy, temperature and top-p sampling with llama2.c's xorshift generator and its arithmetic (float softmax,
 * the top-p cutoff that drops tokens below (1 - p) / (n - 1) before sorting), so a seed gives llama2.c's tokens.
 */
public final class Sampler {
    private final float temperature, topp;
    private long state;
    private Integer[] order = new Integer[0];

    /** {@code temperature} 0: greedy; {@code topp} outside (0, 1): plain multinomial sampling. */
    public Sampler(float temperature, float topp, long seed) {
        if (!(temperature >= 0) || Float.isInfinite(temperature)) throw new IllegalArgumentException("temperature must be a finite number >= 0, got " + temperature);
        if (Float.isNaN(topp)) throw new IllegalArgumentException("top-p must be a number");
        this.temperature = temperature;
        this.topp = topp;
        this.state = seed;
    }

    private int nextU32() {
        state ^= state >>> 12;
        state ^= state << 25;
        state ^= state >>> 27;
        return (int) ((state * 0x2545F4914F6CDD1DL) >>> 32);
    }

    private float nextF32() {
        return (nextU32() >>> 8) / 16777216.0f;
    }

    /** The next token; {@code logits} is overwritten with probabilities when sampling. */
    public int sample(float[] logits) {
        if (temperature == 0) return LlamaEngine.argmax(logits);
        for (int i = 0; i < logits.length; i++) logits[i] /= temperature;
        softmax(logits);
        float coin = nextF32();
        if (topp <= 0 || topp >= 1) {
            float cdf = 0;
            for (int i = 0; i < logits.length; i++) {
                cdf += logits[i];
                if (coin < cdf) return i;
            }
            return logits.length - 1;
        }
        return topP(logits, coin);
    }

    private int topP(float[] p, float coin) {
        int n = p.length, n0 = 0;
        float cutoff = (1.0f - topp) / (n - 1);
        if (order.length < n) order = new Integer[n];
        for (int i = 0; i < n; i++) if (p[i] >= cutoff) order[n0++] = i;
        Arrays.sort(order, 0, n0, (a, b) -> Float.compare(p[b], p[a]));
        float cumulative = 0;
        int last = n0 - 1;
        for (int i = 0; i < n0; i++) {
            cumulative += p[order[i]];
            if (cumulative > topp) {
                last = i;
                break;
            }
        }
        float r = coin * cumulative, cdf = 0;
        for (int i = 0; i <= last; i++) {
            cdf += p[order[i]];
            if (r < cdf) return order[i];
        }
        return order[last];
    }

    static void softmax(float[] x) {
        float max = x[0];
        for (int i = 1; i < x.length; i++) if (x[i] > max) max = x[i];
        float sum = 0;
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) Math.exp(x[i] - max);
            sum += x[i];
        }
        for (int i = 0; i < x.length; i++) x[i] /= sum;
    }
}
