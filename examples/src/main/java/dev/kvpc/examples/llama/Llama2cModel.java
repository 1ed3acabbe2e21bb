package dev.kvpc.examples.llama;

import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.Rope;
import dev.kvpc.runtime.store.Precision;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A llama2.c checkpoint (the legacy "v0" layout: seven int32 header fields, then float32 weights in a fixed order),
 * or a llama GGUF file's weights. Matrices are row-major [out][in], as llama2.c's matmul reads them.
 */
public final class Llama2cModel {
    public final int dim, hidden, layers, heads, kvHeads, vocab, seqLen, headSize, kvDim;
    public final boolean sharedClassifier;
    /** RoPE base and RMSNorm epsilon: llama2.c's fixed 10000 and 1e-5, or a GGUF file's metadata. */
    public final double ropeTheta;
    /** RoPE scaling: linear position factor (1: none) and per-pair frequency factors (null: none); see {@link Rope}. */
    public final double ropeFactor;
    public final float[] ropeFreqFactors;
    public final float rmsEps;
    /** The embedding ({@code vocab x dim}) and classifier (the same object when tied), in their stored type. */
    public final Matrix embedding, classifier;
    public final float[] rmsFinal;
    public final float[][] rmsAtt, rmsFfn;
    /** Per layer, {@code [out x in]}: wq, wo {@code dim x dim}; wk, wv {@code kvDim x dim}; w1, w3 {@code hidden x dim}; w2 {@code dim x hidden}. */
    public final Matrix[] wq, wk, wv, wo, w1, w2, w3;
    /** The Q, K and V projections' biases per layer (Qwen2); null where the model has none (llama). */
    public final float[][] bq, bk, bv;

    private Llama2cModel(int[] h, FloatBuffer f, Path file) throws ModelFormatException {
        dim = h[0];
        hidden = h[1];
        layers = h[2];
        heads = h[3];
        kvHeads = h[4];
        sharedClassifier = h[5] > 0;
        vocab = Math.abs(h[5]);
        seqLen = h[6];
        // each field bounded (far above any checkpoint this engine runs) before anything is sized from it
        if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || vocab <= 0 || seqLen <= 0 || dim % heads != 0 || heads % kvHeads != 0
                || dim > MAX_DIM || hidden > MAX_DIM * 8 || layers > MAX_LAYERS || vocab > MAX_VOCAB || seqLen > MAX_SEQ) {
            throw new ModelFormatException(file + ": not a llama2.c checkpoint (header dim=" + dim + " hidden=" + hidden + " layers=" + layers
                    + " heads=" + heads + " kv_heads=" + kvHeads + " vocab=" + h[5] + " seq_len=" + seqLen + ")");
        }
        headSize = dim / heads;
        kvDim = kvHeads * headSize;
        ropeTheta = 10000.0;
        ropeFactor = 1.0;
        ropeFreqFactors = null;
        rmsEps = 1e-5f;
        long need = (long) vocab * dim + (long) layers * (2L * dim + (long) dim * dim * 2 + 2L * dim * kvDim + 3L * dim * hidden) + dim
                + (long) seqLen * headSize + (sharedClassifier ? 0 : (long) vocab * dim);
        if (need > Integer.MAX_VALUE || f.remaining() < need) {
            throw new ModelFormatException(file + ": truncated: the header asks for " + need + " weights, the file holds " + f.remaining());
        }
        // more than the header asks for: the header is not this file's (vocab = -1 would read a 512-token model as 1)
        if (f.remaining() > need) {
            throw new ModelFormatException(file + ": the header (dim=" + dim + " hidden=" + hidden + " layers=" + layers + " heads=" + heads + " kv_heads=" + kvHeads
                    + " vocab=" + h[5] + " seq_len=" + seqLen + ") asks for " + need + " weights, the file holds " + f.remaining() + ": not this file's header");
        }
        embedding = Matrix.f32(vocab, dim, take(f, (long) vocab * dim));
        rmsAtt = take(f, layers, dim);
        wq = take(f, layers, dim, dim);
        wk = take(f, layers, kvDim, dim);
        wv = take(f, layers, kvDim, dim);
        wo = take(f, layers, dim, dim);
        rmsFfn = take(f, layers, dim);
        w1 = take(f, layers, hidden, dim);
        w2 = take(f, layers, dim, hidden);
        w3 = take(f, layers, hidden, dim);
        rmsFinal = take(f, dim);
        f.position(f.position() + seqLen * headSize); // freq_cis_real and _imag (seq_len x head_size/2 each): unused
        classifier = sharedClassifier ? embedding : Matrix.f32(vocab, dim, take(f, (long) vocab * dim));
        bq = bk = bv = null;
    }

    private Llama2cModel(int dim, int hidden, int layers, int heads, int kvHeads, int vocab, int seqLen, double ropeTheta, double ropeFactor, float[] ropeFreqFactors, float rmsEps,
                         Matrix embedding, float[] rmsFinal, Matrix classifier, float[][] rmsAtt, float[][] rmsFfn, Matrix[][] w) {
        this(dim, hidden, layers, heads, kvHeads, vocab, seqLen, ropeTheta, ropeFactor, ropeFreqFactors, rmsEps, embedding, rmsFinal, classifier, rmsAtt, rmsFfn, w,
                null);
    }

    private Llama2cModel(int dim, int hidden, int layers, int heads, int kvHeads, int vocab, int seqLen, double ropeTheta, double ropeFactor, float[] ropeFreqFactors, float rmsEps,
                         Matrix embedding, float[] rmsFinal, Matrix classifier, float[][] rmsAtt, float[][] rmsFfn, Matrix[][] w, float[][][] biases) {
        this.bq = biases == null ? null : biases[0];
        this.bk = biases == null ? null : biases[1];
        this.bv = biases == null ? null : biases[2];
        this.ropeTheta = ropeTheta;
        this.ropeFactor = ropeFactor;
        this.ropeFreqFactors = ropeFreqFactors;
        this.rmsEps = rmsEps;
        this.dim = dim;
        this.hidden = hidden;
        this.layers = layers;
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.vocab = vocab;
        this.seqLen = seqLen;
        this.headSize = dim / heads;
        this.kvDim = kvHeads * headSize;
        this.embedding = embedding;
        this.rmsFinal = rmsFinal;
        this.sharedClassifier = classifier == embedding;
        this.classifier = classifier;
        this.rmsAtt = rmsAtt;
        this.rmsFfn = rmsFfn;
        wq = w[0];
        wk = w[1];
        wv = w[2];
        wo = w[3];
        w1 = w[4];
        w2 = w[5];
        w3 = w[6];
    }

    /**
     * A model of random weights ({@link Matrix#random}) in {@code type}, of the given shape, for benchmarks: it computes
     * what a real model of that shape computes, at the same cost, and means nothing. The classifier is the embedding
     * (tied); norm weights are 1; RoPE base 10000, epsilon 1e-5; {@link #seqLen} (a trained context, which such a
     * model has not) 2^20; seed {@code seed}.
     */
    public static Llama2cModel random(int dim, int hidden, int layers, int heads, int kvHeads, int vocab, GgufFile.TensorType type, long seed) {
        if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || vocab <= 0 || dim % heads != 0 || heads % kvHeads != 0) {
            throw new IllegalArgumentException("not a model shape: dim=" + dim + " hidden=" + hidden + " layers=" + layers + " heads=" + heads + " kv_heads=" + kvHeads + " vocab=" + vocab);
        }
        java.util.random.RandomGenerator r = new java.util.SplittableRandom(seed);
        int kvDim = dim / heads * kvHeads;
        Matrix[][] w = new Matrix[7][layers];
        float[][] rmsAtt = new float[layers][], rmsFfn = new float[layers][];
        for (int l = 0; l < layers; l++) {
            w[0][l] = Matrix.random(type, dim, dim, r);
            w[1][l] = Matrix.random(type, kvDim, dim, r);
            w[2][l] = Matrix.random(type, kvDim, dim, r);
            w[3][l] = Matrix.random(type, dim, dim, r);
            w[4][l] = Matrix.random(type, hidden, dim, r);
            w[5][l] = Matrix.random(type, dim, hidden, r);
            w[6][l] = Matrix.random(type, hidden, dim, r);
            rmsAtt[l] = ones(dim);
            rmsFfn[l] = ones(dim);
        }
        Matrix embedding = Matrix.random(type, vocab, dim, r);
        return new Llama2cModel(dim, hidden, layers, heads, kvHeads, vocab, 1 << 20, 10000.0, 1.0, null, 1e-5f, embedding, ones(dim), embedding, rmsAtt, rmsFfn, w);
    }

    private static float[] ones(int n) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, 1f);
        return a;
    }

    /** The shape the kvpc runtime's cache is built for: f32 keys and values handed over unrotated, RoPE at {@link #ropeTheta}, scaled as the file says. */
    public ModelSpec spec() {
        return new ModelSpec(layers, heads, kvHeads, headSize, Precision.F32, new Rope(ropeTheta, ropeFactor, ropeFreqFactors));
    }

    /**
     * A llama- or qwen2-architecture GGUF file, its matrices kept in their stored type (norm weights as floats). A llama's Q and K weights are
     * taken as stored: GGUF's rotary layout is the interleaved-pair one this engine uses (the converters permute Hugging Face weights into it). A
     * qwen2's rotate halves of a head and carry biases: their rows are permuted into interleaved pairs at load, and the Q, K and V biases added.
     * Head counts, RoPE base ({@code llama.rope.freq_base}, default 10000) and RMSNorm epsilon (default 1e-5) come from
     * the metadata, and RoPE scaling: linear ({@code llama.rope.scaling.type = linear} with {@code llama.rope.scaling.factor})
     * and per-pair frequency factors (tensor {@code rope_freqs.weight}, as Llama 3.1 files carry); other scaling types (YaRN)
     * and RoPE over part of a head are refused, as is a {@code llama.vocab_size} that
     * differs from the embedding's rows. Without {@code output.weight} the classifier is the embedding (tied).
     */
    public static Llama2cModel fromGguf(GgufFile g) throws ModelFormatException {
        Path file = g.file();
        Object arch = g.metadata().get("general.architecture");
        if (!"llama".equals(arch) && !"qwen2".equals(arch))
            throw new ModelFormatException(file + ": general.architecture is " + arch + "; this engine runs llama and qwen2");
        String p = arch + ".";
        boolean qwen2 = "qwen2".equals(arch);
        int dim = dim(g, p + "embedding_length"), hidden = dim(g, p + "feed_forward_length"), layers = dim(g, p + "block_count"),
                heads = dim(g, p + "attention.head_count");
        int kvHeads = g.metadata().containsKey(p + "attention.head_count_kv") ? dim(g, p + "attention.head_count_kv") : heads;
        int seqLen = dim(g, p + "context_length");
        if (dim % heads != 0 || heads % kvHeads != 0)
            throw new ModelFormatException(file + ": shape mismatch: " + heads + " heads do not divide dim " + dim + " or are not a multiple of " + kvHeads + " KV heads");
        GgufFile.Tensor emb = g.tensors().get("token_embd.weight");
        if (emb == null) throw new ModelFormatException(file + ": tensor 'token_embd.weight' is missing");
        if (emb.dims().length != 2) throw new ModelFormatException(file + ": shape mismatch: token_embd.weight has " + emb.dims().length + " dimensions, not 2");
        int vocab = Math.toIntExact(emb.dims()[1]);
        if (g.metadata().containsKey(p + "vocab_size") && g.integer(p + "vocab_size") != vocab)
            throw new ModelFormatException(file + ": shape mismatch: " + p + "vocab_size is " + g.integer(p + "vocab_size") + ", token_embd.weight has " + vocab + " rows");
        int kvDim = kvHeads * (dim / heads);
        Matrix embedding = g.matrix("token_embd.weight", dim, vocab);
        float[][] rmsAtt = new float[layers][], rmsFfn = new float[layers][];
        Matrix[][] w = new Matrix[7][layers];
        for (int l = 0; l < layers; l++) {
            String b = "blk." + l + ".";
            rmsAtt[l] = g.floats(b + "attn_norm.weight", dim);
            w[0][l] = g.matrix(b + "attn_q.weight", dim, dim);
            w[1][l] = g.matrix(b + "attn_k.weight", dim, kvDim);
            w[2][l] = g.matrix(b + "attn_v.weight", dim, kvDim);
            w[3][l] = g.matrix(b + "attn_output.weight", dim, dim);
            rmsFfn[l] = g.floats(b + "ffn_norm.weight", dim);
            w[4][l] = g.matrix(b + "ffn_gate.weight", dim, hidden);
            w[5][l] = g.matrix(b + "ffn_down.weight", hidden, dim);
            w[6][l] = g.matrix(b + "ffn_up.weight", dim, hidden);
        }
        float[] rmsFinal = g.floats("output_norm.weight", dim);
        float[][][] biases = null;
        if (qwen2) {
            // Qwen2 rotates halves of a head (pairs i, i + d/2); this engine and the runtime rotate interleaved pairs
            // (2i, 2i + 1). Q's and K's rows (and biases) are permuted per head into that order: the same rotation of
            // the same channels, so every dot product of a query and a key is the model's
            int hd = dim / heads;
            int[] qOrder = dev.kvpc.runtime.Rope.halvesToPairs(heads, hd), kOrder = dev.kvpc.runtime.Rope.halvesToPairs(kvHeads, hd);
            biases = new float[3][layers][];
            for (int l = 0; l < layers; l++) {
                String b = "blk." + l + ".";
                w[0][l] = w[0][l].permuteRows(qOrder);
                w[1][l] = w[1][l].permuteRows(kOrder);
                biases[0][l] = permute(g.floats(b + "attn_q.bias", dim), qOrder);
                biases[1][l] = permute(g.floats(b + "attn_k.bias", kvDim), kOrder);
                biases[2][l] = g.floats(b + "attn_v.bias", kvDim);
            }
        }
        // The rest of the metadata once the tensors agree with the shape (a wrong width is a shape mismatch first).
        if (g.metadata().containsKey(p + "rope.dimension_count") && g.integer(p + "rope.dimension_count") != dim / heads)
            throw new ModelFormatException(file + ": " + p + "rope.dimension_count is " + g.integer(p + "rope.dimension_count") + " but heads are "
                    + dim / heads + " wide; this engine rotates whole heads");
        Object scaling = g.metadata().get(p + "rope.scaling.type");
        double factor = 1.0;
        if ("linear".equals(scaling)) {
            if (!g.metadata().containsKey(p + "rope.scaling.factor"))
                throw new ModelFormatException(file + ": " + p + "rope.scaling.type is 'linear' but " + p + "rope.scaling.factor is missing");
            factor = g.real(p + "rope.scaling.factor", 1.0);
            if (!(factor > 0) || !Double.isFinite(factor))
                throw new ModelFormatException(file + ": " + p + "rope.scaling.factor is " + factor + ", not a scaling factor (a finite number above 0)");
        } else if (scaling != null && !"none".equals(scaling)) {
            throw new ModelFormatException(file + ": " + p + "rope.scaling.type is '" + scaling + "'; this engine scales RoPE linearly or by rope_freqs factors only");
        }
        float[] freqFactors = null;
        if (g.has("rope_freqs.weight")) {
            freqFactors = g.floats("rope_freqs.weight", dim / heads / 2);
            for (float f : freqFactors) {
                if (!(f > 0) || !Float.isFinite(f)) throw new ModelFormatException(file + ": rope_freqs.weight holds " + f + ", not a frequency factor (a finite number above 0)");
            }
        }
        double theta = g.real(p + "rope.freq_base", 10000.0);
        if (!(theta > 1) || !Double.isFinite(theta))
            throw new ModelFormatException(file + ": " + p + "rope.freq_base is " + theta + ", not a RoPE base (a finite number above 1)");
        double eps = g.real(p + "attention.layer_norm_rms_epsilon", 1e-5);
        if (!(eps > 0 && eps < 1))
            throw new ModelFormatException(file + ": " + p + "attention.layer_norm_rms_epsilon is " + eps + ", not an epsilon (between 0 and 1)");
        Matrix classifier = g.has("output.weight") ? g.matrix("output.weight", dim, vocab) : embedding;
        return new Llama2cModel(dim, hidden, layers, heads, kvHeads, vocab, seqLen, theta, factor, freqFactors, (float) eps, embedding, rmsFinal, classifier, rmsAtt, rmsFfn, w,
                biases);
    }

    private static float[] permute(float[] v, int[] order) {
        float[] out = new float[order.length];
        for (int i = 0; i < order.length; i++) out[i] = v[order[i]];
        return out;
    }

    private static int dim(GgufFile g, String key) throws ModelFormatException {
        long v = g.integer(key);
        if (v <= 0 || v > 1 << 24) throw new ModelFormatException(g.file() + ": metadata '" + key + "' is " + v + ", not a plausible size");
        return (int) v;
    }

    /**
     * The first weight tensor holding a NaN or an infinity, with how many of its values are not finite; null when every
     * weight is finite. Such a model computes NaN logits wherever the value is read.
     */
    public String nonFinite() {
        String found = finite("token embedding", embedding);
        if (found == null) found = finite("final norm", rmsFinal);
        if (found == null && classifier != embedding) found = finite("classifier", classifier);
        for (int l = 0; l < layers && found == null; l++) {
            String at = " of layer " + l;
            found = finite("attention norm" + at, rmsAtt[l]);
            if (found == null) found = finite("feed-forward norm" + at, rmsFfn[l]);
            Matrix[][] all = {wq, wk, wv, wo, w1, w2, w3};
            String[] names = {"wq", "wk", "wv", "wo", "w1", "w2", "w3"};
            for (int i = 0; i < all.length && found == null; i++) found = finite(names[i] + at, all[i][l]);
        }
        return found;
    }

    private static String finite(String name, float[] w) {
        long bad = 0;
        for (float x : w) if (!Float.isFinite(x)) bad++;
        return bad == 0 ? null : name + " holds " + bad + " non-finite value" + (bad == 1 ? "" : "s") + " (NaN or infinite)";
    }

    private static String finite(String name, Matrix m) {
        float[] row = new float[m.cols];
        long bad = 0;
        for (int r = 0; r < m.rows; r++) {
            m.row(r, row, 0);
            for (float x : row) if (!Float.isFinite(x)) bad++;
        }
        return bad == 0 ? null : name + " holds " + bad + " non-finite value" + (bad == 1 ? "" : "s") + " (NaN or infinite)";
    }

    /** The largest header fields a checkpoint may give (the bounds keep every size computed from them in range). */
    static final int MAX_DIM = 1 << 16, MAX_LAYERS = 1 << 10, MAX_VOCAB = 1 << 22, MAX_SEQ = 1 << 24;

    /**
     * Refuses what is not a regular file before it is opened: a FIFO would block the read for ever, a device such
     * as /dev/zero never end, a folder has no bytes.
     */
    static void regularFile(Path file) throws ModelFormatException {
        if (!Files.exists(file)) throw new ModelFormatException(file + ": no such file");
        if (!Files.isRegularFile(file)) {
            throw new ModelFormatException(file + ": not a regular file (a device, FIFO or folder cannot be a model file)");
        }
    }

    public static Llama2cModel load(Path file) throws ModelFormatException {
        regularFile(file);
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot read: " + e.getMessage());
        }
        if (bytes.length < 28) throw new ModelFormatException(file + ": truncated: " + bytes.length + " bytes, less than the 28-byte header");
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int[] h = new int[7];
        for (int i = 0; i < 7; i++) h[i] = b.getInt();
        return new Llama2cModel(h, b.slice().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer(), file);
    }

    private static float[] take(FloatBuffer f, long n) {
        float[] a = new float[Math.toIntExact(n)];
        f.get(a);
        return a;
    }

    private static float[][] take(FloatBuffer f, int layers, int n) {
        float[][] a = new float[layers][];
        for (int l = 0; l < layers; l++) a[l] = take(f, n);
        return a;
    }

    private static Matrix[] take(FloatBuffer f, int layers, int rows, int cols) {
        Matrix[] a = new Matrix[layers];
        for (int l = 0; l < layers; l++) a[l] = Matrix.f32(rows, cols, take(f, (long) rows * cols));
        return a;
    }
}
