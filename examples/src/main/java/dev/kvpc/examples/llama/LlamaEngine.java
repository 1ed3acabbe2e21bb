package dev.kvpc.examples.llama;

import dev.kvpc.runtime.KvRuntime;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.Sequence;
import dev.kvpc.runtime.pool.PagePool;

import java.io.ByteArrayOutputStream;

/**
 * A llama-family decoder in plain Java whose KV cache is the kvpc runtime: each layer appends its keys and values
 * to a {@link Sequence} and attends through it, so whatever policy the runtime runs decides what the model sees.
 * The arithmetic follows llama2.c's reference forward pass (float32, the same operation order), keys and queries
 * are handed over unrotated and the runtime applies RoPE. Matrix products go through a {@link Matmul}:
 * {@link Matmul#scalar()} is llama2.c's summation order; {@link Matmul#vector()}, the Vector API, sums in another
 * order (on stories260K it still gives llama2.c's text byte for byte, greedy and sampled; Stories260KTest checks
 * both). A prompt runs as one step ({@link #prefill}): every token's projections as one matrix-matrix product per
 * weight, one runtime prefill step; generation continues with decode steps.
 */
public final class LlamaEngine implements AutoCloseable {
    private final Llama2cModel m;
    private final Matmul mm;
    private final Sequence seq;
    /** Per-token activations, {@code capacity} tokens of each (row-major). */
    private float[] x, xb, xb2, q, k, v, att, hb, hb2;
    private final float[] last, logits;
    private int capacity, pos;

    /** An engine on {@link Matmul#best()}: the Vector API kernels when the JVM has the module, else the scalar ones. */
    public LlamaEngine(Llama2cModel model, PolicyRunner policy, PagePool pool) {
        this(model, policy, pool, Matmul.best());
    }

    public LlamaEngine(Llama2cModel model, PolicyRunner policy, PagePool pool, Matmul matmul) {
        this(model, policy, pool, matmul, dev.kvpc.runtime.engine.DecodeKernelProvider.installed());
    }

    /** As above, with decode attention from {@code decodeKernels} (an OpenCL device's, say) instead of the installed ones. */
    public LlamaEngine(Llama2cModel model, PolicyRunner policy, PagePool pool, Matmul matmul, dev.kvpc.runtime.engine.DecodeKernelProvider decodeKernels) {
        this.m = model;
        this.mm = java.util.Objects.requireNonNull(matmul, "matmul");
        this.seq = new KvRuntime(m.spec(), policy, pool).withDecodeKernels(decodeKernels).withThreads(mm.threads()).newSequence();
        last = new float[m.dim];
        logits = new float[m.vocab];
        ensure(1);
    }

    private void ensure(int n) {
        if (n == capacity) return; // exact sizes: the runtime takes tokens x width arrays
        capacity = n;
        x = new float[n * m.dim];
        xb = new float[n * m.dim];
        xb2 = new float[n * m.dim];
        q = new float[n * m.dim];
        k = new float[n * m.kvDim];
        v = new float[n * m.kvDim];
        att = new float[n * m.dim];
        hb = new float[n * m.hidden];
        hb2 = new float[n * m.hidden];
    }

    public Matmul matmul() {
        return mm;
    }

    /** A policy that keeps the full cache on every lane ({@link PolicyRunner#fullCache()}). */
    public static PolicyRunner fullCache() {
        return PolicyRunner.fullCache();
    }

    /** Positions run so far. */
    public int positions() {
        return pos;
    }

    public Sequence sequence() {
        return seq;
    }

    private TraceRecorder recorder;

    /** Records every following step's keys, values and queries into {@code r} (null: stops recording). */
    public void record(TraceRecorder r) {
        this.recorder = r;
    }

    /**
     * Runs one token at the next position (a prefill step of one token at position 0, else a decode step); returns
     * the logits (valid until the next call).
     */
    public float[] forward(int token) {
        return run(new int[]{token}, 0, 1);
    }

    /**
     * Runs {@code n} tokens as one step (the runtime's prefill step at position 0, else a chunk step): per layer,
     * every token's Q, K and V come from one matrix-matrix product each, the keys and values are appended and the
     * queries attend together (causally), then the output projection and the feed-forward block run over all
     * tokens. Returns the last token's logits (valid until the next call); the others are not computed.
     */
    public float[] prefill(int[] tokens, int from, int n) {
        java.util.Objects.checkFromIndexSize(from, n, tokens.length);
        if (n < 1) throw new IllegalArgumentException("a prefill has at least one token");
        return run(tokens, from, n);
    }

    /**
     * As {@link #prefill}, returning every token's logits ({@code n x vocab}, fresh arrays): what a perplexity over a
     * prompt needs.
     */
    public float[][] prefillAll(int[] tokens, int from, int n) {
        java.util.Objects.checkFromIndexSize(from, n, tokens.length);
        if (n < 1) throw new IllegalArgumentException("a prefill has at least one token");
        float[][] all = new float[n][];
        run(tokens, from, n, all);
        return all;
    }

    /**
     * Opens the context with {@code n} positions whose keys and values were not computed by this model:
     * {@code rows.apply(layer)} gives a layer's {@code {keys, values}}, {@code n x kvDim} each, unrotated (the
     * runtime rotates them, as it does the model's own). One runtime prefill step appends them and attends nothing, so
     * the policy sees no prefill event; its first decode step meets the whole context. Generation continues from
     * position {@code n} with {@link #forward}. What it is for: a benchmark that needs a long context without running
     * the model over it (8k positions of a 7B-sized layer would take minutes).
     */
    public void appendContext(int n, java.util.function.IntFunction<float[][]> rows) {
        if (pos != 0) throw new IllegalStateException("a context opens a sequence; this one is at position " + pos);
        if (n < 1) throw new IllegalArgumentException("a context has at least one position");
        seq.beginPrefill(n);
        for (int l = 0; l < m.layers; l++) {
            float[][] kv = rows.apply(l);
            seq.append(l, kv[0], kv[1]);
        }
        pos = n;
    }

    private float[] run(int[] tokens, int from, int n) {
        return run(tokens, from, n, null);
    }

    private float[] run(int[] tokens, int from, int n, float[][] all) {
        ensure(n);
        int dim = m.dim, hidden = m.hidden;
        for (int t = 0; t < n; t++) {
            int token = tokens[from + t];
            if (token < 0 || token >= m.vocab) throw new IllegalArgumentException("token " + token + " is outside the vocabulary of " + m.vocab);
            m.embedding.row(token, x, t * dim);
        }
        mm.fromHost(x);
        if (pos == 0) seq.beginPrefill(n);
        else if (n == 1) seq.beginDecode();
        else seq.beginChunk(n);
        if (recorder != null) recorder.begin(n);
        for (int l = 0; l < m.layers; l++) {
            mm.rmsnorm(xb, x, m.rmsAtt[l], n, dim, m.rmsEps);
            mm.matmul(q, m.wq[l], xb, n);
            mm.matmul(k, m.wk[l], xb, n);
            mm.matmul(v, m.wv[l], xb, n);
            if (m.bq != null) {
                mm.addBias(q, m.bq[l], n, dim);
                mm.addBias(k, m.bk[l], n, m.kvDim);
                mm.addBias(v, m.bv[l], n, m.kvDim);
            }
            if (recorder != null) {
                mm.toHost(q);
                mm.toHost(k);
                mm.toHost(v);
                recorder.layer(l, q, k, v);
            }
            // keys, values and queries go to the runtime where they are: where its kernels keep the lanes on the
            // device that computed them, they are appended and attended there, and the output stays there
            seq.append(l, k, v, mm);
            seq.attend(l, q, att, mm);
            if (recorder != null) {
                mm.toHost(att);
                recorder.attention(l, att);
            }
            mm.matmul(xb2, m.wo[l], att, n);
            mm.add(x, xb2, n * dim);
            mm.rmsnorm(xb, x, m.rmsFfn[l], n, dim, m.rmsEps);
            mm.matmul(hb, m.w1[l], xb, n);
            mm.matmul(hb2, m.w3[l], xb, n);
            mm.swiglu(hb, hb2, n * hidden);
            mm.matmul(xb, m.w2[l], hb, n);
            mm.add(x, xb, n * dim);
        }
        if (recorder != null) recorder.end(pos == 0);
        if (all != null) {
            for (int t = 0; t < n - 1; t++) {
                mm.rmsnormRow(last, x, t, m.rmsFinal, dim, m.rmsEps);
                mm.matmul(logits, m.classifier, last, 1);
                mm.toHost(logits);
                all[t] = logits.clone();
            }
        }
        mm.rmsnormRow(last, x, n - 1, m.rmsFinal, dim, m.rmsEps);
        mm.matmul(logits, m.classifier, last, 1);
        mm.toHost(logits);
        if (all != null) all[n - 1] = logits.clone();
        pos += n;
        return logits;
    }

    /** SwiGLU's gate: {@code h[i] = h[i] * sigmoid(h[i]) * g[i]}, the sigmoid in double as llama2.c computes it. */
    static void swiglu(float[] h, float[] g, int count) {
        for (int i = 0; i < count; i++) {
            float val = h[i];
            val *= (float) (1.0f / (1.0f + Math.exp(-val)));
            h[i] = val * g[i];
        }
    }

    static void rmsnorm(float[] o, int oo, float[] x, int xo, float[] w, int n, float eps) {
        float ss = 0;
        for (int j = 0; j < n; j++) ss += x[xo + j] * x[xo + j];
        ss /= n;
        ss += eps;
        ss = (float) (1.0 / Math.sqrt(ss));
        for (int j = 0; j < n; j++) o[oo + j] = w[j] * (ss * x[xo + j]);
    }

    /** The index of the largest logit (the first of equals): greedy sampling's choice. */
    public static int argmax(float[] p) {
        int best = 0;
        for (int i = 1; i < p.length; i++) if (p[i] > p[best]) best = i;
        return best;
    }

    /**
     * llama2.c's generation from BOS (or the tokenizer's start) with greedy sampling, {@code steps} positions:
     * returns the bytes it prints.
     */
    public static byte[] generateGreedy(LlamaEngine engine, Tokenizer tok, int steps) {
        return generate(engine, tok, new Sampler(0f, 1f, 0), "", steps);
    }

    /**
     * llama2.c's generate loop: the prompt's tokens ({@link Tokenizer#start}) are forced, then each next token comes
     * from {@code sampler} until one {@link Tokenizer#ends ends} it; {@code steps} counts positions including the
     * prompt's. Each printed piece (the first token's too, unless it is a BOS) goes to {@code sink} as it is made.
     * The prompt's positions run as one {@link #prefill} step (the positions llama2.c's loop would run for them:
     * at most {@code steps}, and none past a prompt token that ends the text), then one decode step per token.
     */
    public static void generate(LlamaEngine engine, Tokenizer tok, Sampler sampler, String prompt, int steps,
                                java.util.function.Consumer<byte[]> sink) {
        int[] p = tok.start(prompt);
        int token = p[0];
        byte[] first = tok.decode(-1, token);
        if (first.length > 0) sink.accept(first);
        if (steps < 1) return;
        // llama2.c forwards p[0..n) as forced positions: up to steps, stopping after the position whose forced successor ends the text
        int n = 1;
        while (n < Math.min(steps, p.length) && !tok.ends(p[n])) n++;
        float[] logits = engine.prefill(p, 0, n);
        for (int i = 1; i < n; i++) {
            byte[] piece = tok.decode(p[i - 1], p[i]);
            if (piece.length > 0) sink.accept(piece);
        }
        token = p[n - 1];
        for (int pos = n - 1; pos < steps; pos++) {
            if (pos > n - 1) logits = engine.forward(token);
            int next = pos < p.length - 1 ? p[pos + 1] : sampler.sample(logits);
            if (tok.ends(next)) break;
            byte[] piece = tok.decode(token, next);
            if (piece.length > 0) sink.accept(piece);
            token = next;
        }
    }

    public static byte[] generate(LlamaEngine engine, Tokenizer tok, Sampler sampler, String prompt, int steps) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        generate(engine, tok, sampler, prompt, steps, out::writeBytes);
        return out.toByteArray();
    }

    @Override
    public void close() {
        seq.close();
    }
}
