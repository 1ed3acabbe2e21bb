package dev.kvpc.examples.llama;

import dev.kvpc.runtime.pool.PagePool;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * RoPE scaling read from GGUF: the embedded model re-exported with {@code llama.rope.scaling.type = linear} and with a
 * {@code rope_freqs.weight} tensor. Linear factor 2 and frequency factors of 2 are the same rotation (both halve every
 * angle), so they give the same logits; factors of 1 change nothing; scaling does change the logits; other scaling
 * types and a frequency tensor of the wrong length are refused with the file's name.
 */
class RopeScalingTest {
    @TempDir
    Path tmp;

    /** kvpc-tiny as F32 GGUF with {@code meta} added and, if not null, a rope_freqs tensor. */
    private Path export(String name, Map<String, Object> meta, float[] ropeFreqs) throws Exception {
        GgufFile src = GgufFile.open(KvpcTinyTest.dir().resolve("kvpc-tiny.gguf"));
        Llama2cModel m = Llama2cModel.fromGguf(src);
        int dim = m.dim, kvDim = m.kvDim, hidden = m.hidden;
        GgufWriter w = new GgufWriter().put("general.architecture", "llama")
                .put("llama.embedding_length", dim).put("llama.feed_forward_length", hidden).put("llama.block_count", m.layers)
                .put("llama.attention.head_count", m.heads).put("llama.attention.head_count_kv", m.kvHeads)
                .put("llama.context_length", m.seqLen).put("llama.rope.freq_base", (float) m.ropeTheta)
                .put("llama.attention.layer_norm_rms_epsilon", m.rmsEps).put("llama.vocab_size", m.vocab);
        meta.forEach(w::put);
        GgufFile.TensorType f32 = GgufFile.TensorType.F32;
        w.tensor("token_embd.weight", f32, src.floats("token_embd.weight", dim, m.vocab), dim, m.vocab);
        for (int l = 0; l < m.layers; l++) {
            String b = "blk." + l + ".";
            for (String n : new String[] {"attn_norm", "ffn_norm"}) w.tensor(b + n + ".weight", f32, src.floats(b + n + ".weight", dim), dim);
            for (String n : new String[] {"attn_q", "attn_output"}) w.tensor(b + n + ".weight", f32, src.floats(b + n + ".weight", dim, dim), dim, dim);
            for (String n : new String[] {"attn_k", "attn_v"}) w.tensor(b + n + ".weight", f32, src.floats(b + n + ".weight", dim, kvDim), dim, kvDim);
            for (String n : new String[] {"ffn_gate", "ffn_up"}) w.tensor(b + n + ".weight", f32, src.floats(b + n + ".weight", dim, hidden), dim, hidden);
            w.tensor(b + "ffn_down.weight", f32, src.floats(b + "ffn_down.weight", hidden, dim), hidden, dim);
        }
        w.tensor("output_norm.weight", f32, src.floats("output_norm.weight", dim), dim);
        if (ropeFreqs != null) w.tensor("rope_freqs.weight", f32, ropeFreqs, ropeFreqs.length);
        Path file = tmp.resolve(name);
        w.write(file);
        return file;
    }

    /** Every position's logits for the reference prompt. */
    private static float[][] logits(Llama2cModel m) throws Exception {
        int[] ids = KvpcTinyTest.reference(KvpcTinyTest.dir().resolve("reference.txt"), m.vocab).getFirst().ids();
        try (PagePool pool = new PagePool(); LlamaEngine e = new LlamaEngine(m, LlamaEngine.fullCache(), pool, Matmul.scalar())) {
            return e.prefillAll(ids, 0, ids.length);
        }
    }

    private static float[] filled(int n, float v) {
        float[] f = new float[n];
        java.util.Arrays.fill(f, v);
        return f;
    }

    @Test
    void linearAndFrequencyScalingAreReadAndApplied() throws Exception {
        Llama2cModel plain = Llama2cModel.fromGguf(GgufFile.open(export("plain.gguf", Map.of(), null)));
        int pairs = plain.headSize / 2;
        Llama2cModel linear = Llama2cModel.fromGguf(GgufFile.open(export("linear.gguf", Map.of("llama.rope.scaling.type", "linear", "llama.rope.scaling.factor", 2.0f), null)));
        Llama2cModel freqs2 = Llama2cModel.fromGguf(GgufFile.open(export("freqs2.gguf", Map.of(), filled(pairs, 2f))));
        Llama2cModel freqs1 = Llama2cModel.fromGguf(GgufFile.open(export("freqs1.gguf", Map.of("llama.rope.scaling.type", "none"), filled(pairs, 1f))));
        assertEquals(1.0, plain.spec().rope().factor());
        assertNull(plain.spec().rope().freqFactors());
        assertEquals(2.0, linear.spec().rope().factor());
        assertArrayEquals(filled(pairs, 2f), freqs2.spec().rope().freqFactors());

        float[][] a = logits(plain), b = logits(linear), c = logits(freqs2), d = logits(freqs1);
        assertArrayEquals(a[0], b[0], "position 0 is not rotated");
        assertFalse(java.util.Arrays.equals(a[a.length - 1], b[b.length - 1]), "halved angles change the logits");
        for (int t = 0; t < a.length; t++) {
            assertArrayEquals(b[t], c[t], "linear factor 2 and frequency factors of 2 halve the same angles, position " + t);
            assertArrayEquals(a[t], d[t], "frequency factors of 1 change nothing, position " + t);
        }
    }

    @Test
    void otherScalingIsRefusedWithTheFile() throws Exception {
        Path yarn = export("yarn.gguf", Map.of("llama.rope.scaling.type", "yarn", "llama.rope.scaling.factor", 4.0f), null);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> Llama2cModel.fromGguf(GgufFile.open(yarn)));
        assertTrue(e.getMessage().contains("yarn.gguf") && e.getMessage().contains("llama.rope.scaling.type is 'yarn'"), e.getMessage());
        Path noFactor = export("nofactor.gguf", Map.of("llama.rope.scaling.type", "linear"), null);
        e = assertThrows(ModelFormatException.class, () -> Llama2cModel.fromGguf(GgufFile.open(noFactor)));
        assertTrue(e.getMessage().contains("nofactor.gguf") && e.getMessage().contains("llama.rope.scaling.factor is missing"), e.getMessage());
        Path wrong = export("freqs.gguf", Map.of(), filled(3, 1f));
        e = assertThrows(ModelFormatException.class, () -> Llama2cModel.fromGguf(GgufFile.open(wrong)));
        assertTrue(e.getMessage().contains("freqs.gguf") && e.getMessage().contains("rope_freqs.weight"), e.getMessage());
    }
}
