package dev.kvpc.examples.llama;

import de.kherud.llama.InferenceParameters;
import de.kherud.llama.LlamaModel;
import de.kherud.llama.ModelParameters;
import dev.kvpc.runtime.pool.PagePool;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * llama.cpp and kvpc's engine on one GGUF per weight type and architecture, written by the project ({@link GgufWriter}):
 * a llama of random weights in rows of 256 (K-quant blocks), with stories260K's SentencePiece vocabulary, or a qwen2
 * with kvpc-tiny's byte-level BPE vocabulary; every matrix in the type under test (norms F32; the output matrix writes only plain pieces). Greedy decoding of {@value #STEPS} tokens
 * must give the same text. llama.cpp rounds activations to 8 bits for its quantised products (to 16 for F16 and BF16),
 * so its logits differ from kvpc's in the last digits: where llama.cpp takes kvpc's second choice, kvpc's two best
 * logits must be within {@link #tie} of each other (a near-tie), and both go on from that token; at most a quarter of
 * the steps may be near-ties. (The binding's per-token probabilities crash it in b4916, so llama.cpp's logits are not
 * read directly.)
 */
class LlamaCppWeightTypesTest {
    static final int DIM = 256, HIDDEN = 512, LAYERS = 2, HEADS = 4, KV_HEADS = 2, STEPS = 24;

    @ParameterizedTest
    @ValueSource(strings = {"F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"})
    void llamaCppAndKvpcAgree(String typeName, @TempDir Path tmp) throws Exception {
        agree("llama", typeName, tmp);
    }

    /**
     * The qwen2 architecture: Q, K and V biases, RoPE over halves of a head, and a byte-level BPE vocabulary with
     * Qwen2's pre-tokenizer (kvpc-tiny's merges).
     */
    @ParameterizedTest
    @ValueSource(strings = {"F32", "Q8_0", "Q4_K"})
    void qwen2AgreesWithLlamaCpp(String typeName, @TempDir Path tmp) throws Exception {
        agree("qwen2", typeName, tmp);
    }

    private void agree(String arch, String typeName, Path tmp) throws Exception {
        GgufFile.TensorType type = GgufFile.TensorType.valueOf(typeName);
        Path file = tmp.resolve("random-" + arch + "-" + typeName + ".gguf");
        write(arch, type, file);

        GgufFile g = GgufFile.open(file);
        Llama2cModel model = Llama2cModel.fromGguf(g);
        // in their stored type; BF16 widened to F32, exactly
        assertEquals(type == GgufFile.TensorType.BF16 ? GgufFile.TensorType.F32 : type, model.wq[0].type(), "the engine holds the matrices in their stored type");
        Tokenizer tok = Tokenizer.fromGguf(g, model.vocab);
        String prompt = "Once upon a time";
        String theirs;
        try (LlamaModel peer = new LlamaModel(new ModelParameters().setModel(file.toString()).setThreads(1).setThreadsBatch(1).setCtxSize(256).disableLog())) {
            theirs = peer.complete(new InferenceParameters(prompt).setNPredict(STEPS).setTemperature(0f).setIgnoreEos(true).setSeed(1));
            theirs = printable(theirs);
        }
        try (PagePool pool = new PagePool(); LlamaEngine e = new LlamaEngine(model, LlamaEngine.fullCache(), pool, Matmul.vector())) {
            int[] p = tok.start(prompt);
            int prev = p[p.length - 1];
            float[] logits = e.prefill(p, 0, p.length);
            java.io.ByteArrayOutputStream ours = new java.io.ByteArrayOutputStream();
            java.util.Set<Integer> seen = new java.util.HashSet<>();
            int ties = 0;
            double worst = 0;
            for (int i = 0; i < STEPS; i++) {
                int token = LlamaEngine.argmax(logits), second = secondBest(logits, token);
                if (!theirs.startsWith(text(ours, tok.decode(prev, token)))) {
                    // llama.cpp took kvpc's second choice: a near-tie, within the type's tolerance; both go on with it
                    double gap = logits[token] - logits[second];
                    assertTrue(gap <= tie(type) && theirs.startsWith(text(ours, tok.decode(prev, second))), typeName + " step " + i + ": kvpc chose token "
                            + token + " (logit " + logits[token] + ", next " + second + " at " + logits[second] + "); llama.cpp wrote \"" + theirs + "\" after \""
                            + text(ours, new byte[0]) + "\"");
                    token = second;
                    ties++;
                    worst = Math.max(worst, gap);
                }
                ours.writeBytes(tok.decode(prev, token));
                seen.add(token);
                prev = token;
                logits = e.forward(token);
            }
            assertEquals(theirs, text(ours, new byte[0]), typeName + ": the whole text");
            assertTrue(ties <= STEPS / 4, typeName + ": " + ties + " near-ties in " + STEPS + " steps");
            assertTrue(seen.size() >= 4, typeName + ": the greedy text should not be one token repeated: " + text(ours, new byte[0]));
            System.out.printf(java.util.Locale.ROOT, "%s: %d steps, %d near-ties (largest logit gap %.3f, tolerance %.2f)%n", typeName, STEPS, ties, worst, tie(type));
        }
    }

    /**
     * How far apart kvpc's two best logits may be where llama.cpp takes the second: its quantised products round the
     * activations to 8 bits (Q8_0, Q8_K), its F16 and BF16 products to 16.
     */
    static double tie(GgufFile.TensorType type) {
        return switch (type) {
            case F32 -> 0.01;
            case F16, BF16 -> 0.05;
            default -> 0.5;
        };
    }

    /**
     * The text of {@code bytes} then {@code more} as UTF-8, without U+FFFD: random weights choose stray byte tokens and
     * control tokens, which llama.cpp's binding writes as U+FFFD and kvpc's decoding as bytes or nothing; the rest
     * of the text is compared.
     */
    static String text(java.io.ByteArrayOutputStream bytes, byte[] more) {
        java.io.ByteArrayOutputStream all = new java.io.ByteArrayOutputStream();
        all.writeBytes(bytes.toByteArray());
        all.writeBytes(more);
        return printable(all.toString(StandardCharsets.UTF_8));
    }

    /** Without U+FFFD and control characters (kvpc's decoding drops a lone control byte, as llama2.c prints). */
    static String printable(String s) {
        return s.codePoints().filter(c -> c != 0xFFFD && (c >= 32 || c == '\n')).collect(StringBuilder::new, StringBuilder::appendCodePoint, StringBuilder::append)
                .toString();
    }

    static int secondBest(float[] logits, int best) {
        int s = best == 0 ? 1 : 0;
        for (int i = 0; i < logits.length; i++) if (i != best && logits[i] > logits[s]) s = i;
        return s;
    }

    /** The random llama in {@code type}, with stories260K's vocabulary. */
    /**
     * The random model of {@code arch}: a llama with stories260K's SentencePiece vocabulary, or a qwen2 (biases) with
     * kvpc-tiny's byte-level BPE vocabulary under Qwen2's pre-tokenizer.
     */
    static void write(String arch, GgufFile.TensorType type, Path file) throws Exception {
        boolean qwen2 = arch.equals("qwen2");
        GgufFile voc = GgufFile.open(qwen2 ? KvpcTinyTest.dir().resolve("kvpc-tiny.gguf") : Stories260KTest.models().resolve("stories260K.gguf"));
        int vocab = Llama2cModel.fromGguf(voc).vocab, kvDim = DIM / HEADS * KV_HEADS;
        String p = arch + ".";
        GgufWriter w = new GgufWriter().put("general.architecture", arch).put("general.name", "kvpc random " + arch + " " + type)
                .put(p + "embedding_length", DIM).put(p + "feed_forward_length", HIDDEN).put(p + "block_count", LAYERS)
                .put(p + "attention.head_count", HEADS).put(p + "attention.head_count_kv", KV_HEADS)
                .put(p + "context_length", 256).put(p + "rope.dimension_count", DIM / HEADS)
                .put(p + "attention.layer_norm_rms_epsilon", 1e-5f).put(p + "vocab_size", vocab);
        for (Map.Entry<String, Object> m : voc.metadata().entrySet()) {
            if (m.getKey().startsWith("tokenizer.")) w.put(m.getKey(), writable(m.getValue()));
        }
        if (qwen2) w.put("tokenizer.ggml.pre", "qwen2");
        SplittableRandom r = new SplittableRandom(20);
        // a wide embedding, so the logits spread and greedy choices are clear
        w.tensor("token_embd.weight", type, gaussian(r, DIM * vocab, 0.4), DIM, vocab);
        for (int l = 0; l < LAYERS; l++) {
            String b = "blk." + l + ".";
            w.tensor(b + "attn_norm.weight", GgufFile.TensorType.F32, constant(DIM, 1f), DIM);
            w.tensor(b + "ffn_norm.weight", GgufFile.TensorType.F32, constant(DIM, 1f), DIM);
            w.tensor(b + "attn_q.weight", type, gaussian(r, DIM * DIM, 0.08), DIM, DIM);
            w.tensor(b + "attn_k.weight", type, gaussian(r, DIM * kvDim, 0.08), DIM, kvDim);
            w.tensor(b + "attn_v.weight", type, gaussian(r, DIM * kvDim, 0.05), DIM, kvDim);
            w.tensor(b + "attn_output.weight", type, gaussian(r, DIM * DIM, 0.05), DIM, DIM);
            w.tensor(b + "ffn_gate.weight", type, gaussian(r, DIM * HIDDEN, 0.05), DIM, HIDDEN);
            w.tensor(b + "ffn_up.weight", type, gaussian(r, DIM * HIDDEN, 0.05), DIM, HIDDEN);
            w.tensor(b + "ffn_down.weight", type, gaussian(r, HIDDEN * DIM, 0.05), HIDDEN, DIM);
            if (qwen2) {
                w.tensor(b + "attn_q.bias", GgufFile.TensorType.F32, gaussian(r, DIM, 0.5), DIM);
                w.tensor(b + "attn_k.bias", GgufFile.TensorType.F32, gaussian(r, kvDim, 0.5), kvDim);
                w.tensor(b + "attn_v.bias", GgufFile.TensorType.F32, gaussian(r, kvDim, 0.5), kvDim);
            }
        }
        w.tensor("output_norm.weight", GgufFile.TensorType.F32, constant(DIM, 1f), DIM);
        // an output matrix of its own: tied to the embedding, greedy decoding of random weights repeats the last token.
        // Rows of zeros for every token that is not a plain piece (control and byte tokens, token_type != 1), so
        // greedy decoding writes text both engines spell alike and the texts compare token for token
        float[] out = gaussian(r, DIM * vocab, 0.4);
        List<?> kinds = (List<?>) voc.metadata().get("tokenizer.ggml.token_type");
        for (int t = 0; kinds != null && t < vocab; t++) if (((Number) kinds.get(t)).intValue() != 1) java.util.Arrays.fill(out, t * DIM, (t + 1) * DIM, 0f);
        w.tensor("output.weight", type, out, DIM, vocab);
        w.write(file);
    }

    /** A metadata value as the writer writes it: arrays of the reader's longs and doubles as int32 and float32. */
    static Object writable(Object v) {
        if (v instanceof List<?> l && !l.isEmpty() && l.getFirst() instanceof Double) return l.stream().map(x -> ((Double) x).floatValue()).toList();
        if (v instanceof List<?> l && !l.isEmpty() && l.getFirst() instanceof Long) return l.stream().map(x -> ((Long) x).intValue()).toList();
        if (v instanceof Long n) return n.intValue();
        if (v instanceof Double d) return d.floatValue();
        return v;
    }

    static float[] gaussian(SplittableRandom r, int n, double std) {
        float[] w = new float[n];
        for (int i = 0; i < n; i++) w[i] = (float) (r.nextGaussian() * std);
        return w;
    }

    static float[] constant(int n, float v) {
        float[] w = new float[n];
        java.util.Arrays.fill(w, v);
        return w;
    }
}
