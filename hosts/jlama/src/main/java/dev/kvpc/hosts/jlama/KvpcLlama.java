package dev.kvpc.hosts.jlama;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.github.tjake.jlama.model.CausalSelfAttention;
import com.github.tjake.jlama.model.MLPBlock;
import com.github.tjake.jlama.model.ModelSupport;
import com.github.tjake.jlama.model.RMSNorm;
import com.github.tjake.jlama.model.TransformerBlock;
import com.github.tjake.jlama.model.llama.LlamaConfig;
import com.github.tjake.jlama.model.llama.LlamaModel;
import com.github.tjake.jlama.model.llama.LlamaTokenizer;
import com.github.tjake.jlama.safetensors.Config;
import com.github.tjake.jlama.safetensors.DType;
import com.github.tjake.jlama.safetensors.SafeTensorSupport;
import com.github.tjake.jlama.safetensors.WeightLoader;
import com.github.tjake.jlama.safetensors.tokenizer.Tokenizer;
import com.github.tjake.jlama.tensor.AbstractTensor;
import com.github.tjake.jlama.tensor.KvBufferCache;
import dev.kvpc.runtime.KvRuntime;
import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.Rope;
import dev.kvpc.runtime.Sequence;
import dev.kvpc.runtime.load.ModelShapeSpec;
import dev.kvpc.runtime.load.PolicyJarLoader;
import dev.kvpc.runtime.load.PolicyLoadException;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.stream.IntStream;

/**
 * Jlama's llama model with its KV cache replaced by kvpc's: each layer's attention hands its queries, keys and values
 * to a kvpc {@link Sequence}, whose lanes hold the cache and whose policy (a compiled policy jar, or the full cache)
 * decides what is kept, at what precision, and what each query attends. Jlama computes everything else (embeddings,
 * norms, projections, the MLP, the logits) as it always does; its own KV pages are never allocated.
 *
 * <p>One kvpc sequence per Jlama {@link KvBufferCache.KvBuffer} (a session): a forward pass from position 0 starts a
 * new one (the prompt is the prefill step), later passes continue it (one token: a decode step; several: a chunk).
 * Queries and keys leave Jlama's projections unrotated, in Hugging Face's halves order; they are put in the pairs order
 * kvpc's RoPE rotates ({@link Rope#halvesToPairs}) and the runtime rotates them, by text position or, for policies with
 * {@code positions cache}, by cache slot. Single-node Jlama only (no distributed context), llama models without
 * attention biases.
 */
public final class KvpcLlama extends LlamaModel {
    /** Set by {@link #load} once Jlama's constructor (which builds the blocks) has returned. */
    private KvRuntime runtime;
    private PagePool pool;
    private int[] qOrder, kOrder;
    private final Map<KvBufferCache.KvBuffer, Session> sessions = new IdentityHashMap<>();

    /** A kvpc sequence and how many positions it holds. */
    private static final class Session {
        final Sequence seq;
        int length;

        Session(Sequence seq) {
            this.seq = seq;
        }
    }

    /** Jlama's constructor, called reflectively by nothing but {@link #load}; public because Jlama's is. */
    public KvpcLlama(InferenceType type, Config c, WeightLoader w, Tokenizer t, DType workingDType, DType workingQType, Optional<DType> modelQType) {
        super(type, c, w, t, workingDType, workingQType, modelQType);
    }

    /**
     * Loads the model in {@code dir} (Hugging Face's form: {@code config.json}, safetensors weights,
     * {@code tokenizer.json}) with F32 working memory, its KV cache run by {@code policyJar} (a jar {@code kvpc compile}
     * wrote for this model's shape), or by the full cache when {@code policyJar} is null.
     */
    public static KvpcLlama load(Path dir, Path policyJar) throws IOException, PolicyLoadException {
        Path configFile = dir.resolve("config.json");
        if (!Files.isRegularFile(configFile)) throw new IOException(dir + ": no config.json (a model folder in Hugging Face's form has one)");
        if (SafeTensorSupport.detectModel(configFile.toFile()) != ModelSupport.ModelType.LLAMA)
            throw new IOException(configFile + ": model_type is not llama; this adapter runs Jlama's llama models");
        // Jlama's own reader (lenient: unknown keys ignored, enums in any case), as its ModelSupport reads config.json
        ObjectMapper om = com.github.tjake.jlama.util.JsonSupport.om;
        JsonNode json = om.readTree(configFile.toFile());
        LlamaConfig c = om.readValue(configFile.toFile(), LlamaConfig.class);
        for (String bias : List.of("attention_bias", "mlp_bias")) {
            if (json.path(bias).asBoolean(false)) throw new IOException(configFile + ": " + bias + " is true; this adapter runs llama models without biases");
        }
        c.setWorkingDirectory(null);
        KvpcLlama m = new KvpcLlama(InferenceType.FULL_GENERATION, c, SafeTensorSupport.loadWeights(dir.toFile()), new LlamaTokenizer(dir), DType.F32, DType.F32,
                Optional.empty());
        double theta = json.path("rope_theta").asDouble(10000.0), factor = 1.0;
        JsonNode scaling = json.path("rope_scaling");
        if (!scaling.isMissingNode() && !scaling.isNull()) {
            String type = scaling.path("rope_type").asText(scaling.path("type").asText(""));
            if (!type.equals("linear")) {
                m.close();
                throw new IOException(configFile + ": rope_scaling of type '" + type + "'; this adapter scales RoPE linearly only");
            }
            factor = scaling.path("factor").asDouble(1.0);
        }
        ModelSpec spec = new ModelSpec(c.numberOfLayers, c.numberOfHeads, c.numberOfKeyValueHeads, c.headSize, Precision.F32, new Rope(theta, factor, null));
        PolicyRunner runner;
        try {
            runner = policyJar == null ? PolicyRunner.fullCache()
                    : PolicyJarLoader.runner(policyJar, new ModelShapeSpec(spec.layers(), spec.heads(), spec.kvHeads(), spec.headDim()));
        } catch (PolicyLoadException | RuntimeException e) {
            m.close();
            throw e;
        }
        m.pool = new PagePool();
        m.runtime = new KvRuntime(spec, runner, m.pool);
        m.qOrder = Rope.halvesToPairs(spec.heads(), spec.headDim());
        m.kOrder = Rope.halvesToPairs(spec.kvHeads(), spec.headDim());
        return m;
    }

    /** The model's shape as the KV cache sees it. */
    public ModelSpec spec() {
        return runtimeOrFail().model();
    }

    /** The kvpc sequence of a Jlama session's buffer (its lanes, their bytes), or null before its first forward pass. */
    public synchronized Sequence sequence(KvBufferCache.KvBuffer buffer) {
        Session s = sessions.get(buffer);
        return s == null ? null : s.seq;
    }

    /** A buffer for a session of this model's own (for hosts that call {@link #batchForward} and {@link #forward} themselves). */
    public KvBufferCache.KvBuffer newSession() {
        return kvBufferCache.getEphemeralKvBuffer();
    }

    /** Ends a session's kvpc sequence: its pages go back to the pool. */
    public synchronized void endSession(KvBufferCache.KvBuffer buffer) {
        Session s = sessions.remove(buffer);
        if (s != null) s.seq.close();
    }

    @Override
    public synchronized void close() {
        for (Session s : sessions.values()) s.seq.close();
        sessions.clear();
        if (pool != null) pool.close();
        super.close();
    }

    private KvRuntime runtimeOrFail() {
        if (runtime == null) throw new IllegalStateException("KvpcLlama is made by KvpcLlama.load");
        return runtime;
    }

    /**
     * The session's sequence for a layer's part of a forward pass of {@code n} tokens from {@code start}: at layer 0
     * the step begins (a new sequence at position 0).
     */
    private synchronized Session step(KvBufferCache.KvBuffer buffer, int layer, int start, int n) {
        Session s = sessions.get(buffer);
        if (layer != 0) {
            if (s == null) throw new IllegalStateException("layer " + layer + " ran before layer 0 in this session");
            return s;
        }
        if (start == 0) {
            if (s != null) s.seq.close();
            s = new Session(runtimeOrFail().newSequence());
            sessions.put(buffer, s);
            s.seq.beginPrefill(n);
        } else {
            if (s == null || s.length != start)
                throw new IllegalStateException("a forward pass from position " + start + ", but this session's KV cache holds "
                        + (s == null ? 0 : s.length) + " positions (kvpc's lanes continue a sequence; they do not rewind)");
            if (n == 1) s.seq.beginDecode();
            else s.seq.beginChunk(n);
        }
        s.length = start + n;
        return s;
    }

    @Override
    protected TransformerBlock[] loadTransformerBlockWeights() {
        // LlamaModel's blocks, with kvpc's attention in place of Jlama's
        DType qType = modelQType.orElse(this.modelDType);
        if (c.dctx().numberOfLayers != c.numberOfLayers) throw new IllegalStateException("KvpcLlama runs on one node: no distributed context");
        TransformerBlock[] blocks = new TransformerBlock[c.numberOfLayers];
        IntStream.range(0, c.numberOfLayers).parallel().forEach(i -> {
            String base = "model.layers." + i + ".", attn = base + "self_attn.", mlp = base + "mlp.";
            Attention attention = new Attention(this, i,
                    weights.load(attn + "q_proj.weight", c.dctx(), true, false).quantize(qType),
                    weights.load(attn + "k_proj.weight", c.dctx(), true, false).quantize(qType),
                    weights.load(attn + "v_proj.weight", c.dctx(), true, false).quantize(qType),
                    weights.load(attn + "o_proj.weight", c.dctx(), false, true).quantize(qType));
            MLPBlock ffn = new MLPBlock(this, c.activationFunction,
                    weights.load(mlp + "gate_proj.weight", c.dctx(), true, false).quantize(qType),
                    weights.load(mlp + "down_proj.weight", c.dctx(), false, true).quantize(qType),
                    weights.load(mlp + "up_proj.weight", c.dctx(), true, false).quantize(qType));
            blocks[i] = new TransformerBlock(this, i, new RMSNorm(this, weights.load(base + "input_layernorm.weight").quantize(qType)), attention,
                    new RMSNorm(this, weights.load(base + "post_attention_layernorm.weight").quantize(qType)), ffn);
        });
        return blocks;
    }

    /** A layer's attention: Jlama's projections, kvpc's cache and attention. */
    private static final class Attention extends CausalSelfAttention {
        private final KvpcLlama m;
        private final int layer;
        private final AbstractTensor wq, wk, wv, wo;

        Attention(KvpcLlama m, int layer, AbstractTensor wq, AbstractTensor wk, AbstractTensor wv, AbstractTensor wo) {
            super(m, layer, wq, wk, wv, wo);
            this.m = m;
            this.layer = layer;
            this.wq = wq;
            this.wk = wk;
            this.wv = wv;
            this.wo = wo;
        }

        @Override
        public AbstractTensor forward(AbstractTensor input, int start, KvBufferCache.KvBuffer buffer, Optional<Consumer<List<AbstractTensor>>> reducer) {
            Config c = m.getConfig();
            int n = input.shape().first(), dim = c.embeddingLength, hd = c.headSize;
            int qLen = c.numberOfHeads * hd, kvLen = c.numberOfKeyValueHeads * hd;
            Session s = m.step(buffer, layer, start, n);
            var ops = com.github.tjake.jlama.tensor.operations.TensorOperationsProvider.get();
            float[] q = new float[n * qLen], k = new float[n * kvLen], v = new float[n * kvLen], out = new float[n * qLen];
            try (AbstractTensor tq = m.makeDenseTensor(n, qLen); AbstractTensor tk = m.makeDenseTensor(n, kvLen);
                 AbstractTensor tv = m.makeDenseTensor(n, kvLen); AbstractTensor to = m.makeDenseTensor(n, qLen)) {
                com.github.tjake.jlama.math.VectorMath.pchunk(0, qLen, (from, len) -> ops.dotProductChunk(tq, input, wq, 0, dim, from, len));
                com.github.tjake.jlama.math.VectorMath.pchunk(0, kvLen, (from, len) -> {
                    ops.dotProductChunk(tk, input, wk, 0, dim, from, len);
                    ops.dotProductChunk(tv, input, wv, 0, dim, from, len);
                });
                for (int t = 0; t < n; t++) {
                    // queries and keys into kvpc's pairs order; values as they are
                    for (int j = 0; j < qLen; j++) q[t * qLen + j] = tq.get(t, m.qOrder[j]);
                    for (int j = 0; j < kvLen; j++) {
                        k[t * kvLen + j] = tk.get(t, m.kOrder[j]);
                        v[t * kvLen + j] = tv.get(t, j);
                    }
                }
                s.seq.append(layer, k, v);
                s.seq.attend(layer, q, out);
                // the attention output is a mix of values: channel order as Jlama's
                for (int t = 0; t < n; t++) {
                    for (int j = 0; j < qLen; j++) to.set(out[t * qLen + j], t, j);
                }
                AbstractTensor result = m.makeDenseTensor(n, dim);
                com.github.tjake.jlama.math.VectorMath.pchunk(0, dim, (from, len) -> ops.dotProductChunk(result, to, wo, 0, qLen, from, len));
                reducer.ifPresent(f -> f.accept(List.of(result)));
                return result;
            }
        }
    }
}
