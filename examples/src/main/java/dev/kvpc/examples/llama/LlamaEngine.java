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
 * are handed over unrotated and the runtime applies RoPE.
 */
public final class LlamaEngine implements AutoCloseable {
    private final Llama2cModel m;
    private final Sequence seq;
    private final float[] x, xb, xb2, q, k, v, att, hb, hb2, logits;
    private int pos;

    public LlamaEngine(Llama2cModel model, PolicyRunner policy, PagePool pool) {
        this.m = model;
        this.seq = new KvRuntime(m.spec(), policy, pool).newSequence();
        x = new float[m.dim];
        xb = new float[m.dim];
        xb2 = new float[m.dim];
        q = new float[m.dim];
        k = new float[m.kvDim];
        v = new float[m.kvDim];
        att = new float[m.dim];
        hb = new float[m.hidden];
        hb2 = new float[m.hidden];
        logits = new float[m.vocab];
    }

    /** A policy that keeps the full cache on every lane. */
    public static PolicyRunner fullCache() {
        return new PolicyRunner() {
            public int laneClass(int layer, int kvHead) {
                return -1;
            }

            public boolean perLayer(int laneClass) {
                return false;
            }

            public Event open(int laneClass, Step step, int layer, int[] kvHeads, java.util.List<dev.kvpc.runtime.lane.Lane> lanes) {
                throw new IllegalStateException("the full cache runs no policy");
            }
        };
    }

    /** Positions run so far. */
    public int positions() {
        return pos;
    }

    public Sequence sequence() {
        return seq;
    }

    /** Runs one token at the next position; returns the logits (valid until the next call). */
    public float[] forward(int token) {
        System.arraycopy(m.embedding, token * m.dim, x, 0, m.dim);
        if (pos == 0) seq.beginPrefill(1);
        else seq.beginDecode();
        for (int l = 0; l < m.layers; l++) {
            rmsnorm(xb, x, m.rmsAtt[l], m.dim, m.rmsEps);
            matmul(q, xb, m.wq[l], m.dim, m.dim);
            matmul(k, xb, m.wk[l], m.dim, m.kvDim);
            matmul(v, xb, m.wv[l], m.dim, m.kvDim);
            seq.append(l, k, v);
            seq.attend(l, q, att);
            matmul(xb2, att, m.wo[l], m.dim, m.dim);
            for (int i = 0; i < m.dim; i++) x[i] += xb2[i];
            rmsnorm(xb, x, m.rmsFfn[l], m.dim, m.rmsEps);
            matmul(hb, xb, m.w1[l], m.dim, m.hidden);
            matmul(hb2, xb, m.w3[l], m.dim, m.hidden);
            for (int i = 0; i < m.hidden; i++) {
                float val = hb[i];
                val *= (float) (1.0f / (1.0f + Math.exp(-val)));
                hb[i] = val * hb2[i];
            }
            matmul(xb, hb, m.w2[l], m.hidden, m.dim);
            for (int i = 0; i < m.dim; i++) x[i] += xb[i];
        }
        rmsnorm(x, x, m.rmsFinal, m.dim, m.rmsEps);
        matmul(logits, x, m.classifier, m.dim, m.vocab);
        pos++;
        return logits;
    }

    static void rmsnorm(float[] o, float[] x, float[] w, int n, float eps) {
        float ss = 0;
        for (int j = 0; j < n; j++) ss += x[j] * x[j];
        ss /= n;
        ss += eps;
        ss = (float) (1.0 / Math.sqrt(ss));
        for (int j = 0; j < n; j++) o[j] = w[j] * (ss * x[j]);
    }

    /** out[i] = sum_j w[i * n + j] * x[j], w row-major [d][n]. */
    static void matmul(float[] out, float[] x, float[] w, int n, int d) {
        for (int i = 0; i < d; i++) {
            float val = 0;
            int row = i * n;
            for (int j = 0; j < n; j++) val += w[row + j] * x[j];
            out[i] = val;
        }
    }

    static int argmax(float[] p) {
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
     */
    public static void generate(LlamaEngine engine, Tokenizer tok, Sampler sampler, String prompt, int steps,
                                java.util.function.Consumer<byte[]> sink) {
        int[] p = tok.start(prompt);
        int token = p[0];
        byte[] first = tok.decode(-1, token);
        if (first.length > 0) sink.accept(first);
        for (int pos = 0; pos < steps; pos++) {
            float[] logits = engine.forward(token);
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
