package dev.kvpc.runtime;

import java.util.Arrays;

/**
 * Rotary position embedding as llama-family models apply it: channel pairs (2i, 2i+1) rotated by angle
 * {@code (position / factor) * theta^(-2i/d) / freqFactors[i]}. {@code factor} is linear position scaling (GGUF
 * {@code llama.rope.scaling.type = linear}, 1 for none); {@code freqFactors}, when not null, divides each pair's
 * frequency (the {@code rope_freqs} tensor of Llama 3.1-style long-context scaling), one per pair of a head. Given to
 * the runtime (in {@link ModelSpec}) when the host hands over keys and queries before rotation, so that policies with
 * {@code positions cache} can rotate by cache slot instead of text position.
 */
public record Rope(double theta, double factor, float[] freqFactors) {
    public Rope {
        if (!(theta > 1) || !Double.isFinite(theta)) throw new IllegalArgumentException("RoPE theta must be a finite number above 1, got " + theta);
        if (!(factor > 0) || !Double.isFinite(factor)) throw new IllegalArgumentException("RoPE scaling factor must be a finite number above 0, got " + factor);
        if (freqFactors != null) {
            freqFactors = freqFactors.clone();
            for (float f : freqFactors) {
                if (!(f > 0) || !Float.isFinite(f)) throw new IllegalArgumentException("RoPE frequency factors must be finite numbers above 0, got " + f);
            }
        }
    }

    /** Unscaled RoPE with base {@code theta}. */
    public Rope(double theta) {
        this(theta, 1.0, null);
    }

    /**
     * The channel order that takes {@code heads} heads of {@code hd} channels from the halves layout (channel
     * {@code i} rotated with {@code i + hd/2}, as Hugging Face's llama and Qwen2 weights are) to the interleaved pairs
     * this class rotates: {@code pairs[n] = halves[order[n]]}. A host whose queries and keys come in halves order
     * permutes them (or the rows of its Q and K weights) by it before handing them over; dot products are unchanged.
     */
    public static int[] halvesToPairs(int heads, int hd) {
        if (hd % 2 != 0) throw new IllegalArgumentException("RoPE needs an even head dimension, got " + hd);
        int[] order = new int[heads * hd];
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < hd / 2; i++) {
                order[h * hd + 2 * i] = h * hd + i;
                order[h * hd + 2 * i + 1] = h * hd + i + hd / 2;
            }
        }
        return order;
    }

    /** Rotates {@code x[off .. off+d)} in place by {@code position}. */
    public void rotate(float[] x, int off, int d, int position) {
        if (freqFactors != null && freqFactors.length != d / 2) {
            throw new IllegalArgumentException("RoPE has " + freqFactors.length + " frequency factors, heads of " + d + " channels need " + d / 2);
        }
        double[] cs = Table.of(this, d).cosSin(position);
        for (int i = 0; i < d / 2; i++) {
            double c, s;
            if (cs != null) {
                c = cs[position * d + 2 * i];
                s = cs[position * d + 2 * i + 1];
            } else {
                double a = angle(position, i, d);
                c = Math.cos(a);
                s = Math.sin(a);
            }
            float x0 = x[off + 2 * i], x1 = x[off + 2 * i + 1];
            x[off + 2 * i] = (float) (x0 * c - x1 * s);
            x[off + 2 * i + 1] = (float) (x0 * s + x1 * c);
        }
    }

    /**
     * The cosines and sines {@link #rotate} multiplies by, for heads of {@code d} channels at positions
     * {@code 0 .. positions - 1}: pair {@code i} at position {@code p} has its cosine at {@code p * d + 2 * i} and its
     * sine right after. A kernel that rotates rows a vector at a time reads them here, so that its rotation is
     * {@link #rotate}'s bit for bit (the same doubles, {@code x0 * c - x1 * s} and {@code x0 * s + x1 * c} in double,
     * rounded to float). Null where the positions are past the kept table: rotate with {@link #rotate} then.
     */
    public double[] cosSinTable(int d, int positions) {
        if (freqFactors != null && freqFactors.length != d / 2) {
            throw new IllegalArgumentException("RoPE has " + freqFactors.length + " frequency factors, heads of " + d + " channels need " + d / 2);
        }
        return Table.of(this, d).cosSin(Math.max(0, positions - 1));
    }

    /** The angle of pair {@code i} of a head of {@code d} channels at {@code position}. */
    private double angle(int position, int i, int d) {
        double p = factor == 1.0 ? position : position / factor;
        double freq = Math.pow(theta, -2.0 * i / d);
        return p * (freqFactors != null ? freq / freqFactors[i] : freq);
    }

    /**
     * The cosines and sines of one RoPE and head size by position, computed as {@link #rotate} computes them (the same
     * double arithmetic, so a rotation is bit for bit the same either way) and kept: a policy with {@code positions
     * cache} rotates every key it reads by its slot at every step. Grown by doubling up to {@link #LIMIT} values; a
     * position past that is computed when asked. Shared between threads: a grown table replaces the old one whole.
     */
    private static final class Table {
        static final int LIMIT = 1 << 21;
        private static final java.util.concurrent.ConcurrentHashMap<Rope, Table[]> TABLES = new java.util.concurrent.ConcurrentHashMap<>();

        private final Rope rope;
        private final int d;
        private volatile double[] cosSin = new double[0];

        private Table(Rope rope, int d) {
            this.rope = rope;
            this.d = d;
        }

        /**
         * What each thread last asked for, by the instance it asked with: a thread rotates with one RoPE and head
         * size, so most lookups end here. The instance, not the table's own: tables are shared by value, and a RoPE
         * equal to the one that made a table (another model's, another row's of an eval) must find it here too. Per
         * thread, since threads running models of their own would otherwise take turns replacing one shared entry.
         */
        private record Recent(Rope rope, int d, Table table) {}

        private static final ThreadLocal<Recent> RECENT = new ThreadLocal<>();

        static Table of(Rope rope, int d) {
            Recent last = RECENT.get();
            if (last != null && last.rope == rope && last.d == d) return last.table;
            // else by value: the record's hash reads its frequency factors, too much to pay for every key rotated
            Table[] byD = TABLES.computeIfAbsent(rope, r -> new Table[1025]);
            if (d <= 0 || d >= byD.length) return new Table(rope, d);
            Table t = byD[d];
            if (t == null) {
                synchronized (byD) {
                    if (byD[d] == null) byD[d] = new Table(rope, d);
                    t = byD[d];
                }
            }
            RECENT.set(new Recent(rope, d, t));
            return t;
        }

        /** c, s for each pair at {@code position}, from index {@code position * d}; null past the limit. */
        double[] cosSin(int position) {
            if (position < 0) return null;
            double[] cs = cosSin;
            if ((long) (position + 1) * d <= cs.length) return cs;
            if ((long) (position + 1) * d > LIMIT) return null;
            synchronized (this) {
                cs = cosSin;
                if ((long) (position + 1) * d <= cs.length) return cs;
                // a power of two above the position, within the limit (which holds the position: checked above)
                int n = (int) Math.min(Math.max(64L, Long.highestOneBit(position) << 1), LIMIT / d);
                double[] grown = java.util.Arrays.copyOf(cs, n * d);
                for (int pos = cs.length / d; pos < n; pos++) {
                    for (int i = 0; i < d / 2; i++) {
                        double a = rope.angle(pos, i, d);
                        grown[pos * d + 2 * i] = Math.cos(a);
                        grown[pos * d + 2 * i + 1] = Math.sin(a);
                    }
                }
                cosSin = grown;
                return grown;
            }
        }
    }

    @Override
    public float[] freqFactors() {
        return freqFactors == null ? null : freqFactors.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Rope r && Double.compare(theta, r.theta) == 0 && Double.compare(factor, r.factor) == 0 && Arrays.equals(freqFactors, r.freqFactors);
    }

    @Override
    public int hashCode() {
        return Double.hashCode(theta) * 31 * 31 + Double.hashCode(factor) * 31 + Arrays.hashCode(freqFactors);
    }

    @Override
    public String toString() {
        return "Rope[theta=" + theta + (factor == 1.0 ? "" : ", linear factor " + factor) + (freqFactors == null ? "" : ", " + freqFactors.length + " frequency factors") + "]";
    }
}
