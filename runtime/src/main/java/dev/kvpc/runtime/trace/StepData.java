package dev.kvpc.runtime.trace;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Objects;

/**
 * The tensors of one trace step, immutable: for every layer, the new keys and values of the step's tokens per
 * KV head, and their queries per query head. All values are finite.
 *
 * <p>Layout: one flat, row-major {@code float[]} per layer and tensor, {@code token} being the index within
 * the step (its sequence position is the step's start plus {@code token}):
 * <pre>
 *   keys(layer)   [(token * kvHeads + kvHead) * headDim + channel]   tokens x kvHeads x headDim
 *   values(layer) [(token * kvHeads + kvHead) * headDim + channel]   tokens x kvHeads x headDim
 *   queries(layer)[(token * heads   + head)   * headDim + channel]   tokens x heads   x headDim
 * </pre>
 * Arrays given to the constructor are copied, and arrays handed out are copies or read-only views, so no
 * caller can change a step after it is built.
 */
public final class StepData {
    private final TraceShape shape;
    private final int tokens;
    private final float[][] k;
    private final float[][] v;
    private final float[][] q;

    /**
     * Copies {@code k}, {@code v} and {@code q} (each indexed {@code [layer][flat index]} in the layout above).
     *
     * @throws IllegalArgumentException if a size does not match the shape, or a value is NaN or infinite
     */
    public StepData(TraceShape shape, int tokens, float[][] k, float[][] v, float[][] q) {
        this(shape, tokens, copy(k, "k"), copy(v, "v"), copy(q, "q"), Ownership.ADOPTED);
    }

    /** Distinguishes the adopting constructor from the copying one. */
    private enum Ownership { ADOPTED }

    private StepData(TraceShape shape, int tokens, float[][] k, float[][] v, float[][] q, Ownership ownership) {
        this.shape = Objects.requireNonNull(shape, "shape");
        if (tokens <= 0) {
            throw new IllegalArgumentException("a step needs at least one token, got " + tokens);
        }
        this.tokens = tokens;
        int kvFloats = floats(tokens, shape.kvWidth());
        int qFloats = floats(tokens, shape.qWidth());
        check(shape, k, kvFloats, "k", "kv_heads");
        check(shape, v, kvFloats, "v", "kv_heads");
        check(shape, q, qFloats, "q", "heads");
        this.k = k;
        this.v = v;
        this.q = q;
    }

    /** Takes the arrays without copying; for builders in this package that never touch them again. */
    static StepData adopt(TraceShape shape, int tokens, float[][] k, float[][] v, float[][] q) {
        return new StepData(shape, tokens, k, v, q, Ownership.ADOPTED);
    }

    /**
     * Floats in one layer's tensor of {@code tokens} tokens and {@code width} floats per token.
     *
     * @throws IllegalArgumentException if that is more than a Java array holds
     */
    static int floats(long tokens, long width) {
        long n = tokens * width; // both at most Integer.MAX_VALUE: no long overflow
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("a step of " + tokens + " tokens x " + width
                    + " floats per token does not fit one Java array");
        }
        return (int) n;
    }

    private static float[][] copy(float[][] layers, String name) {
        Objects.requireNonNull(layers, name);
        float[][] c = new float[layers.length][];
        for (int i = 0; i < layers.length; i++) {
            if (layers[i] == null) {
                throw new NullPointerException(name + "[" + i + "]");
            }
            c[i] = layers[i].clone();
        }
        return c;
    }

    private static void check(TraceShape shape, float[][] layers, int expected, String name, String headWord) {
        Objects.requireNonNull(layers, name);
        if (layers.length != shape.layers()) {
            throw new IllegalArgumentException(name + " has " + layers.length + " layers, the shape has " + shape.layers());
        }
        for (int layer = 0; layer < layers.length; layer++) {
            float[] a = Objects.requireNonNull(layers[layer], name + "[" + layer + "]");
            if (a.length != expected) {
                throw new IllegalArgumentException(name + " of layer " + layer + " has " + a.length + " floats, expected "
                        + expected + " (tokens x " + headWord + " x head_dim)");
            }
            for (int i = 0; i < a.length; i++) {
                if (!Float.isFinite(a[i])) {
                    throw new IllegalArgumentException(name + " of layer " + layer + " holds " + a[i] + " at index " + i
                            + "; trace values must be finite");
                }
            }
        }
    }

    public TraceShape shape() {
        return shape;
    }

    /** Tokens in this step (1 for a decode step). */
    public int tokens() {
        return tokens;
    }

    /** Key channel {@code channel} of KV head {@code kvHead} for the step's token {@code token} in {@code layer}. */
    public float k(int layer, int token, int kvHead, int channel) {
        return k[checkLayer(layer)][kvIndex(token, kvHead, channel)];
    }

    /** Value channel, indexed as {@link #k}. */
    public float v(int layer, int token, int kvHead, int channel) {
        return v[checkLayer(layer)][kvIndex(token, kvHead, channel)];
    }

    /** Query channel {@code channel} of query head {@code head} for the step's token {@code token} in {@code layer}. */
    public float q(int layer, int token, int head, int channel) {
        return q[checkLayer(layer)][qIndex(token, head, channel)];
    }

    /** A copy of one key vector ({@code headDim} floats). */
    public float[] key(int layer, int token, int kvHead) {
        int at = kvIndex(token, kvHead, 0);
        return Arrays.copyOfRange(k[checkLayer(layer)], at, at + shape.headDim());
    }

    /** A copy of one value vector ({@code headDim} floats). */
    public float[] value(int layer, int token, int kvHead) {
        int at = kvIndex(token, kvHead, 0);
        return Arrays.copyOfRange(v[checkLayer(layer)], at, at + shape.headDim());
    }

    /** A copy of one query vector ({@code headDim} floats). */
    public float[] query(int layer, int token, int head) {
        int at = qIndex(token, head, 0);
        return Arrays.copyOfRange(q[checkLayer(layer)], at, at + shape.headDim());
    }

    /** A copy of the keys of one layer, in the documented layout. */
    public float[] keys(int layer) {
        return k[checkLayer(layer)].clone();
    }

    /** A copy of the values of one layer, in the documented layout. */
    public float[] values(int layer) {
        return v[checkLayer(layer)].clone();
    }

    /** A copy of the queries of one layer, in the documented layout. */
    public float[] queries(int layer) {
        return q[checkLayer(layer)].clone();
    }

    /** A read-only view of the keys of one layer (no copy), for bulk copies into a cache. */
    public MemorySegment keySegment(int layer) {
        return MemorySegment.ofArray(k[checkLayer(layer)]).asReadOnly();
    }

    /** A read-only view of the values of one layer (no copy). */
    public MemorySegment valueSegment(int layer) {
        return MemorySegment.ofArray(v[checkLayer(layer)]).asReadOnly();
    }

    /** A read-only view of the queries of one layer (no copy). */
    public MemorySegment querySegment(int layer) {
        return MemorySegment.ofArray(q[checkLayer(layer)]).asReadOnly();
    }

    /** Flat index of (token, kvHead, channel) in {@link #keys} and {@link #values}. */
    public int kvIndex(int token, int kvHead, int channel) {
        Objects.checkIndex(token, tokens);
        Objects.checkIndex(kvHead, shape.kvHeads());
        Objects.checkIndex(channel, shape.headDim());
        return (token * shape.kvHeads() + kvHead) * shape.headDim() + channel;
    }

    /** Flat index of (token, head, channel) in {@link #queries}. */
    public int qIndex(int token, int head, int channel) {
        Objects.checkIndex(token, tokens);
        Objects.checkIndex(head, shape.heads());
        Objects.checkIndex(channel, shape.headDim());
        return (token * shape.heads() + head) * shape.headDim() + channel;
    }

    private int checkLayer(int layer) {
        return Objects.checkIndex(layer, shape.layers());
    }

    // Package-private direct access for the writers of this package, which only read.
    float[] rawK(int layer) {
        return k[layer];
    }

    float[] rawV(int layer) {
        return v[layer];
    }

    float[] rawQ(int layer) {
        return q[layer];
    }

    /** Equal when shape, token count and every float (bit for bit) are equal. */
    @Override
    public boolean equals(Object o) {
        return o instanceof StepData s && shape.equals(s.shape) && tokens == s.tokens
                && Arrays.deepEquals(k, s.k) && Arrays.deepEquals(v, s.v) && Arrays.deepEquals(q, s.q);
    }

    @Override
    public int hashCode() {
        return Objects.hash(shape, tokens, Arrays.deepHashCode(k), Arrays.deepHashCode(v), Arrays.deepHashCode(q));
    }

    @Override
    public String toString() {
        return "StepData[" + tokens + " tokens, " + shape + "]";
    }
}
