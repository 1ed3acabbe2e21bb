package dev.kvpc.examples.llama;

import dev.kvpc.runtime.pool.PagePool;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The project's model re-exported by test code ({@link GgufWriter}) with every matrix in F16, Q8_0 or Q4_0 (norms
 * F32): the engine loads the matrices in that type holding exactly the dequantised weights of the file, and runs
 * them: the vector kernels' logits are within {@value #KERNELS} of the scalar kernels' (the same weights, another
 * summation order), and the prompt's next-token choices mostly agree with the F32 model's.
 */
class QuantisedModelTest {
    static final double KERNELS = 1e-4;

    static final String[] SQUARE = {"attn_q", "attn_output"}, KV = {"attn_k", "attn_v"}, UP = {"ffn_gate", "ffn_up"};

    @ParameterizedTest
    @ValueSource(strings = {"F16", "Q8_0", "Q4_0"})
    void aQuantisedExportLoadsInItsTypeAndRuns(String typeName, @TempDir Path tmp) throws Exception {
        GgufFile.TensorType type = GgufFile.TensorType.valueOf(typeName);
        GgufFile src = GgufFile.open(KvpcTinyTest.dir().resolve("kvpc-tiny.gguf"));
        Llama2cModel f32 = Llama2cModel.fromGguf(src);
        int dim = f32.dim, kvDim = f32.kvDim, hidden = f32.hidden, vocab = f32.vocab;
        GgufWriter w = new GgufWriter().put("general.architecture", "llama")
                .put("llama.embedding_length", dim).put("llama.feed_forward_length", hidden).put("llama.block_count", f32.layers)
                .put("llama.attention.head_count", f32.heads).put("llama.attention.head_count_kv", f32.kvHeads)
                .put("llama.context_length", f32.seqLen).put("llama.rope.freq_base", (float) f32.ropeTheta)
                .put("llama.attention.layer_norm_rms_epsilon", f32.rmsEps).put("llama.vocab_size", vocab);
        java.util.Map<String, byte[]> written = new java.util.LinkedHashMap<>();
        java.util.function.BiConsumer<String, long[]> matrix = (name, dims) -> {
            try {
                byte[] bytes = GgufWriter.encode(type, src.floats(name, dims));
                written.put(name, bytes);
                w.tensor(name, type, bytes, dims);
            } catch (ModelFormatException e) {
                throw new AssertionError(e);
            }
        };
        matrix.accept("token_embd.weight", new long[]{dim, vocab});
        for (int l = 0; l < f32.layers; l++) {
            String b = "blk." + l + ".";
            w.tensor(b + "attn_norm.weight", GgufFile.TensorType.F32, src.floats(b + "attn_norm.weight", dim), dim);
            w.tensor(b + "ffn_norm.weight", GgufFile.TensorType.F32, src.floats(b + "ffn_norm.weight", dim), dim);
            for (String s : SQUARE) matrix.accept(b + s + ".weight", new long[]{dim, dim});
            for (String s : KV) matrix.accept(b + s + ".weight", new long[]{dim, kvDim});
            for (String s : UP) matrix.accept(b + s + ".weight", new long[]{dim, hidden});
            matrix.accept(b + "ffn_down.weight", new long[]{hidden, dim});
        }
        w.tensor("output_norm.weight", GgufFile.TensorType.F32, src.floats("output_norm.weight", dim), dim);
        Path file = tmp.resolve("kvpc-tiny-" + typeName + ".gguf");
        w.write(file);

        Llama2cModel m = Llama2cModel.fromGguf(GgufFile.open(file));
        assertSame(m.embedding, m.classifier);
        check(type, m.embedding, written.get("token_embd.weight"), "token_embd");
        for (int l = 0; l < m.layers; l++) {
            String b = "blk." + l + ".";
            check(type, m.wq[l], written.get(b + "attn_q.weight"), b + "attn_q");
            check(type, m.wk[l], written.get(b + "attn_k.weight"), b + "attn_k");
            check(type, m.wv[l], written.get(b + "attn_v.weight"), b + "attn_v");
            check(type, m.wo[l], written.get(b + "attn_output.weight"), b + "attn_output");
            check(type, m.w1[l], written.get(b + "ffn_gate.weight"), b + "ffn_gate");
            check(type, m.w2[l], written.get(b + "ffn_down.weight"), b + "ffn_down");
            check(type, m.w3[l], written.get(b + "ffn_up.weight"), b + "ffn_up");
            assertArrayEquals(f32.rmsAtt[l], m.rmsAtt[l]);
        }

        int[] ids = KvpcTinyTest.reference(KvpcTinyTest.dir().resolve("reference.txt"), vocab).getFirst().ids();
        double kernels = 0, toF32 = 0;
        int agree = 0;
        try (PagePool pool = new PagePool();
             LlamaEngine sc = new LlamaEngine(m, LlamaEngine.fullCache(), pool, Matmul.scalar());
             LlamaEngine vec = new LlamaEngine(m, LlamaEngine.fullCache(), pool, Matmul.vector());
             LlamaEngine ref = new LlamaEngine(f32, LlamaEngine.fullCache(), pool, Matmul.scalar())) {
            for (int id : ids) {
                float[] a = sc.forward(id).clone(), b = vec.forward(id), r = ref.forward(id);
                for (int i = 0; i < vocab; i++) {
                    kernels = Math.max(kernels, Math.abs(a[i] - b[i]));
                    toF32 = Math.max(toF32, Math.abs(a[i] - r[i]));
                }
                if (LlamaEngine.argmax(a) == LlamaEngine.argmax(r)) agree++;
            }
        }
        System.out.printf(Locale.ROOT, "%s: %d positions, vector vs scalar max abs %.3g; vs the F32 model max abs %.3g, top token agrees at %d%n",
                type, ids.length, kernels, toF32, agree);
        assertTrue(kernels <= KERNELS, type + ": vector and scalar logits differ by " + kernels);
        assertTrue(agree >= ids.length * 3 / 4, type + ": the top token agrees with the F32 model's at only " + agree + " of " + ids.length + " positions");
    }

    private static void check(GgufFile.TensorType type, Matrix m, byte[] bytes, String what) {
        assertEquals(type, m.type(), what);
        assertArrayEquals(GgufWriter.dequantise(type, bytes, m.rows * m.cols), m.toFloats(), what);
    }
}
