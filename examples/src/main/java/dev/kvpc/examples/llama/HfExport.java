package dev.kvpc.examples.llama;

import dev.kvpc.runtime.Rope;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a llama GGUF model with a byte-level BPE tokenizer in the form Hugging Face's {@code transformers} and the
 * JVM engines that follow it (Jlama) read: {@code config.json}, {@code model.safetensors} (every tensor F32,
 * dequantised from its GGUF type) and {@code tokenizer.json}. The model is the same function: GGUF's llama Q and K
 * rows (rotated as interleaved pairs) are put back in the halves order Hugging Face's RoPE rotates (the inverse of
 * {@link Rope#halvesToPairs}), the tokens and merges keep their byte-level spelling, and the pre-tokenizer is the
 * GGUF's rule as a {@code Split} regex. Refused, with the reason: other architectures, SentencePiece vocabularies,
 * and RoPE with per-pair frequency factors ({@code rope_freqs}).
 */
public final class HfExport {
    private HfExport() {
    }

    /** The files written, in {@code dir}. */
    public static final List<String> FILES = List.of("config.json", "model.safetensors", "tokenizer.json");

    /** Writes the three files into {@code dir} (created if missing); each is written beside and then moved into place. */
    public static void write(Path gguf, Path dir) throws ModelFormatException, IOException {
        GgufFile g = GgufFile.open(gguf);
        String f = gguf + ": ";
        Object arch = g.metadata().get("general.architecture");
        if (!"llama".equals(arch)) throw new ModelFormatException(f + "general.architecture is " + arch + "; the Hugging Face export writes llama models only");
        Object tokModel = g.metadata().get("tokenizer.ggml.model");
        if (!"gpt2".equals(tokModel))
            throw new ModelFormatException(f + "tokenizer.ggml.model is " + tokModel + "; the Hugging Face export writes byte-level BPE vocabularies ('gpt2') only");
        if (g.has("rope_freqs.weight")) throw new ModelFormatException(f + "the model has rope_freqs.weight (per-pair RoPE factors), which the export does not write");
        String p = "llama.";
        int dim = (int) g.integer(p + "embedding_length"), layers = (int) g.integer(p + "block_count"), hidden = (int) g.integer(p + "feed_forward_length");
        int heads = (int) g.integer(p + "attention.head_count");
        int kvHeads = g.metadata().containsKey(p + "attention.head_count_kv") ? (int) g.integer(p + "attention.head_count_kv") : heads;
        int hd = dim / heads, kvDim = kvHeads * hd;
        List<String> tokens = g.strings("tokenizer.ggml.tokens");
        int vocab = tokens.size();
        BpeTokenizer.Pre pre = BpeTokenizer.Pre.named(g.metadata().get("tokenizer.ggml.pre"));
        if (pre == null)
            throw new ModelFormatException(f + "tokenizer.ggml.pre is " + g.metadata().get("tokenizer.ggml.pre") + "; the export knows " + String.join(", ", BpeTokenizer.Pre.allNames()));
        Object scaling = g.metadata().get(p + "rope.scaling.type");
        if (scaling != null && !"none".equals(scaling) && !"linear".equals(scaling))
            throw new ModelFormatException(f + p + "rope.scaling.type is '" + scaling + "', which the export does not write");
        // everything refused is refused above, before anything is written
        Files.createDirectories(dir);

        // tensors in Hugging Face's names and [out, in] shapes; GGUF's dims are [in, out], the same bytes row-major
        Map<String, Source> tensors = new LinkedHashMap<>();
        tensors.put("model.embed_tokens.weight", new Source("token_embd.weight", new long[] {dim, vocab}, null));
        for (int l = 0; l < layers; l++) {
            String b = "blk." + l + ".", h = "model.layers." + l + ".";
            tensors.put(h + "input_layernorm.weight", new Source(b + "attn_norm.weight", new long[] {dim}, null));
            tensors.put(h + "self_attn.q_proj.weight", new Source(b + "attn_q.weight", new long[] {dim, dim}, Rope.halvesToPairs(heads, hd)));
            tensors.put(h + "self_attn.k_proj.weight", new Source(b + "attn_k.weight", new long[] {dim, kvDim}, Rope.halvesToPairs(kvHeads, hd)));
            tensors.put(h + "self_attn.v_proj.weight", new Source(b + "attn_v.weight", new long[] {dim, kvDim}, null));
            tensors.put(h + "self_attn.o_proj.weight", new Source(b + "attn_output.weight", new long[] {dim, dim}, null));
            tensors.put(h + "post_attention_layernorm.weight", new Source(b + "ffn_norm.weight", new long[] {dim}, null));
            tensors.put(h + "mlp.gate_proj.weight", new Source(b + "ffn_gate.weight", new long[] {dim, hidden}, null));
            tensors.put(h + "mlp.up_proj.weight", new Source(b + "ffn_up.weight", new long[] {dim, hidden}, null));
            tensors.put(h + "mlp.down_proj.weight", new Source(b + "ffn_down.weight", new long[] {hidden, dim}, null));
        }
        tensors.put("model.norm.weight", new Source("output_norm.weight", new long[] {dim}, null));
        boolean tied = !g.has("output.weight");
        if (!tied) tensors.put("lm_head.weight", new Source("output.weight", new long[] {dim, vocab}, null));
        writeSafetensors(g, tensors, dir.resolve("model.safetensors"));

        Json c = new Json();
        c.open('{');
        c.key("architectures").open('[').str("LlamaForCausalLM").close(']');
        c.key("model_type").str("llama");
        c.key("hidden_size").num(dim);
        c.key("intermediate_size").num(hidden);
        c.key("num_hidden_layers").num(layers);
        c.key("num_attention_heads").num(heads);
        c.key("num_key_value_heads").num(kvHeads);
        c.key("head_dim").num(hd);
        c.key("hidden_act").str("silu");
        c.key("max_position_embeddings").num(g.integer(p + "context_length"));
        // GGUF stores these as F32: written as the floats they are (1.0E-5, not the double nearest that float)
        c.key("rms_norm_eps").raw(Float.toString((float) g.real(p + "attention.layer_norm_rms_epsilon", 1e-5)));
        c.key("rope_theta").raw(Float.toString((float) g.real(p + "rope.freq_base", 10000.0)));
        if ("linear".equals(scaling)) {
            c.key("rope_scaling").open('{').key("rope_type").str("linear").key("type").str("linear")
                    .key("factor").raw(Float.toString((float) g.real(p + "rope.scaling.factor", 1.0))).close('}');
        }
        c.key("vocab_size").num(vocab);
        Object bos = g.metadata().get("tokenizer.ggml.bos_token_id"), eos = g.metadata().get("tokenizer.ggml.eos_token_id");
        if (bos != null) c.key("bos_token_id").num(((Number) bos).longValue());
        c.key("eos_token_id");
        if (eos != null) c.num(((Number) eos).longValue());
        else c.open('[').close(']');
        c.key("tie_word_embeddings").raw(Boolean.toString(tied));
        c.key("torch_dtype").str("float32");
        c.close('}');
        writeText(dir.resolve("config.json"), c.toString());

        Json t = new Json();
        t.open('{');
        t.key("version").str("1.0");
        t.key("added_tokens").open('[');
        if (bos != null) {
            int id = (int) ((Number) bos).longValue();
            t.open('{').key("id").num(id).key("content").str(tokens.get(id)).key("single_word").raw("false").key("lstrip").raw("false")
                    .key("rstrip").raw("false").key("normalized").raw("false").key("special").raw("true").close('}');
        }
        t.close(']');
        t.key("normalizer").raw("null");
        t.key("pre_tokenizer").open('{').key("type").str("Sequence").key("pretokenizers").open('[');
        t.open('{').key("type").str("Split").key("pattern").open('{').key("Regex").str(pre.pattern()).close('}')
                .key("behavior").str("Isolated").key("invert").raw("false").close('}');
        t.open('{').key("type").str("ByteLevel").key("add_prefix_space").raw("false").key("trim_offsets").raw("true").key("use_regex").raw("false").close('}');
        t.close(']').close('}');
        t.key("post_processor").raw("null");
        t.key("decoder").open('{').key("type").str("ByteLevel").key("add_prefix_space").raw("true").key("trim_offsets").raw("true")
                .key("use_regex").raw("true").close('}');
        t.key("model").open('{').key("type").str("BPE").key("dropout").raw("null").key("unk_token").raw("null")
                .key("continuing_subword_prefix").raw("null").key("end_of_word_suffix").raw("null").key("fuse_unk").raw("false")
                .key("byte_fallback").raw("false").key("ignore_merges").raw(Boolean.toString(pre.wholeWords));
        t.key("vocab").open('{');
        for (int i = 0; i < vocab; i++) t.key(tokens.get(i)).num(i);
        t.close('}');
        t.key("merges").open('[');
        for (String m : g.strings("tokenizer.ggml.merges")) t.str(m);
        t.close(']').close('}');
        t.close('}');
        writeText(dir.resolve("tokenizer.json"), t.toString());
    }

    /** A tensor of the GGUF file, its GGUF dims, and the row order that undoes the pairs permutation (null: none). */
    private record Source(String name, long[] dims, int[] pairsOrder) {
        long rows() {
            return dims.length == 1 ? 1 : dims[1];
        }

        long cols() {
            return dims[0];
        }
    }

    private static void writeSafetensors(GgufFile g, Map<String, Source> tensors, Path file) throws ModelFormatException, IOException {
        Json h = new Json();
        h.open('{');
        h.key("__metadata__").open('{').key("format").str("pt").close('}');
        long offset = 0;
        for (Map.Entry<String, Source> e : tensors.entrySet()) {
            Source s = e.getValue();
            long bytes = 4 * s.rows() * s.cols();
            h.key(e.getKey()).open('{').key("dtype").str("F32").key("shape").open('[');
            if (s.dims.length == 1) h.num(s.cols());
            else h.num(s.rows()).num(s.cols());
            h.close(']').key("data_offsets").open('[').num(offset).num(offset + bytes).close(']').close('}');
            offset += bytes;
        }
        h.close('}');
        // the header is padded with spaces so that the data starts 8-byte aligned, as the format recommends
        byte[] json = h.toString().getBytes(StandardCharsets.UTF_8);
        byte[] head = java.util.Arrays.copyOf(json, (json.length + 7) / 8 * 8);
        java.util.Arrays.fill(head, json.length, head.length, (byte) ' ');
        Path part = file.resolveSibling(file.getFileName() + ".part");
        try (OutputStream out = new java.io.BufferedOutputStream(Files.newOutputStream(part), 1 << 20)) {
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(head.length).array());
            out.write(head);
            for (Source s : tensors.values()) {
                float[] w = g.floats(s.name, s.dims);
                if (s.pairsOrder != null) {
                    // GGUF row n is Hugging Face's row order[n] (pairs[n] = halves[order[n]])
                    int c = (int) s.cols();
                    float[] halves = new float[w.length];
                    for (int n = 0; n < s.pairsOrder.length; n++) System.arraycopy(w, n * c, halves, s.pairsOrder[n] * c, c);
                    w = halves;
                }
                ByteBuffer buf = ByteBuffer.allocate(4 * w.length).order(ByteOrder.LITTLE_ENDIAN);
                buf.asFloatBuffer().put(w);
                out.write(buf.array());
            }
        }
        Files.move(part, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private static void writeText(Path file, String text) throws IOException {
        Path part = file.resolveSibling(file.getFileName() + ".part");
        Files.writeString(part, text + "\n", StandardCharsets.UTF_8);
        Files.move(part, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** A JSON text built in order: commas go between the values of an object or array. */
    private static final class Json {
        private final StringBuilder sb = new StringBuilder();
        private final List<Boolean> first = new ArrayList<>();
        private boolean afterKey;

        private void comma() {
            if (afterKey) {
                afterKey = false;
                return;
            }
            if (!first.isEmpty()) {
                int top = first.size() - 1;
                if (!first.get(top)) sb.append(',');
                first.set(top, false);
            }
        }

        Json open(char c) {
            comma();
            sb.append(c);
            first.add(true);
            return this;
        }

        Json close(char c) {
            sb.append(c);
            first.remove(first.size() - 1);
            return this;
        }

        Json key(String k) {
            comma();
            quote(k);
            sb.append(':');
            afterKey = true;
            return this;
        }

        Json str(String v) {
            comma();
            quote(v);
            return this;
        }

        Json num(long v) {
            comma();
            sb.append(v);
            return this;
        }

        Json raw(String v) {
            comma();
            sb.append(v);
            return this;
        }

        private void quote(String s) {
            sb.append('"');
            for (int i = 0; i < s.length(); i++) {
                char ch = s.charAt(i);
                switch (ch) {
                    case '"' -> sb.append("\\\"");
                    case '\\' -> sb.append("\\\\");
                    case '\n' -> sb.append("\\n");
                    case '\r' -> sb.append("\\r");
                    case '\t' -> sb.append("\\t");
                    default -> {
                        if (ch < 0x20) sb.append(String.format("\\u%04x", (int) ch));
                        else sb.append(ch);
                    }
                }
            }
            sb.append('"');
        }

        @Override
        public String toString() {
            return sb.toString();
        }
    }
}
