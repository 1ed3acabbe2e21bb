package dev.kvpc.examples.llama;

import de.kherud.llama.LlamaModel;
import de.kherud.llama.ModelParameters;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The byte-level BPE pre-tokenizers other models use (llama.cpp's GPT-2, Llama 3 and Qwen2 rules), held to llama.cpp
 * b4916: kvpc-tiny re-exported with {@code tokenizer.ggml.pre} set to each (its vocabulary and merges unchanged)
 * loads in llama.cpp, and both tokenize texts of contractions, digit runs, runs of spaces and line breaks, accented
 * and non-Latin letters and symbols to the same ids.
 */
class LlamaCppPreTokenizerTest {
    static final String[] TEXTS = {
        "Once upon a time, there was a little girl named Lily.",
        "I'm sure they'll say it's 12345 or 3.14159! DON'T we've?",
        "  multiple   spaces\n\nnew lines\r\nand\ttabs\t\tend  ",
        "naïve café Ünïcödé, Ελληνικά, русский",
        "日本語のテキスト 2024年",
        "emoji 🙂🙂 done... (a) [b] {c} $1,000.50 #tag @user",
    };

    @ParameterizedTest
    @ValueSource(strings = {"gpt-2", "llama-bpe", "qwen2"})
    void llamaCppAndKvpcTokenizeAlike(String pre, @TempDir Path tmp) throws Exception {
        Path file = export(pre, tmp);
        GgufFile g = GgufFile.open(file);
        BpeTokenizer ours = BpeTokenizer.fromGguf(g, Llama2cModel.fromGguf(g).vocab);
        try (LlamaModel peer = new LlamaModel(new ModelParameters().setModel(file.toString()).setThreads(1).setCtxSize(256).disableLog())) {
            for (String text : TEXTS) {
                int[] theirs = peer.encode(text), mine = ours.encode(text);
                // llama.cpp's encode adds the file's BOS where it asks for one; kvpc's encode is the text alone
                if (ours.bos() >= 0 && theirs.length > 0 && theirs[0] == ours.bos()) theirs = Arrays.copyOfRange(theirs, 1, theirs.length);
                assertArrayEquals(theirs, mine, pre + ": tokens of \"" + text + "\"");
            }
        }
    }

    /** The rules differ where the comparison above looks: digit runs, contractions, line breaks, letters. */
    @org.junit.jupiter.api.Test
    void thePreTokenizersSplitDifferently(@TempDir Path tmp) throws Exception {
        java.util.Map<String, java.util.List<Integer>> ids = new java.util.LinkedHashMap<>();
        for (String pre : new String[] {"kvpc", "gpt-2", "llama-bpe", "qwen2"}) {
            GgufFile g = GgufFile.open(pre.equals("kvpc") ? KvpcTinyTest.dir().resolve("kvpc-tiny.gguf") : export(pre, tmp));
            BpeTokenizer t = BpeTokenizer.fromGguf(g, Llama2cModel.fromGguf(g).vocab);
            java.util.List<Integer> all = new java.util.ArrayList<>();
            for (String text : TEXTS) for (int id : t.encode(text)) all.add(id);
            ids.put(pre, all);
        }
        java.util.List<String> same = new java.util.ArrayList<>();
        for (String a : ids.keySet()) for (String b : ids.keySet()) if (a.compareTo(b) < 0 && ids.get(a).equals(ids.get(b))) same.add(a + " = " + b);
        // kvpc-tiny's vocabulary has no token of two digits or more, so Llama 3's runs of up to three digits and
        // Qwen2's single digits give the same ids here; their pieces differ
        assertEquals(java.util.List.of("llama-bpe = qwen2"), same, "rules that give the same ids for the texts");
        assertNotEquals(BpeTokenizer.Pre.LLAMA3.split(TEXTS[1]), BpeTokenizer.Pre.QWEN2.split(TEXTS[1]), "Llama 3 and Qwen2 split digit runs apart");
    }

    /** kvpc-tiny with {@code tokenizer.ggml.pre} set to {@code pre}. */
    static Path export(String pre, Path tmp) throws Exception {
        GgufFile src = GgufFile.open(KvpcTinyTest.dir().resolve("kvpc-tiny.gguf"));
        GgufWriter w = new GgufWriter();
        for (Map.Entry<String, Object> e : src.metadata().entrySet()) {
            if (e.getKey().equals("kvpc.tokenizer.pattern") || e.getKey().equals("general.alignment")) continue;
            w.put(e.getKey(), LlamaCppWeightTypesTest.writable(e.getValue()));
        }
        w.put("tokenizer.ggml.pre", pre);
        for (GgufFile.Tensor t : src.tensors().values()) w.tensor(t.name(), GgufFile.TensorType.F32, src.floats(t.name(), t.dims()), t.dims());
        Path file = tmp.resolve("kvpc-tiny-" + pre + ".gguf");
        w.write(file);
        return file;
    }

    @ParameterizedTest
    @ValueSource(strings = {"deepseek-llm", "kvpx"})
    void anotherPreTokenizerIsRefusedByName(String pre, @TempDir Path tmp) throws Exception {
        GgufFile src = GgufFile.open(KvpcTinyTest.dir().resolve("kvpc-tiny.gguf"));
        GgufWriter w = new GgufWriter();
        w.put("tokenizer.ggml.model", "gpt2").put("tokenizer.ggml.pre", pre);
        w.put("tokenizer.ggml.tokens", src.strings("tokenizer.ggml.tokens")).put("tokenizer.ggml.merges", src.strings("tokenizer.ggml.merges"));
        Path file = tmp.resolve("pre.gguf");
        w.write(file);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> BpeTokenizer.fromGguf(GgufFile.open(file), 512));
        assertTrue(e.getMessage().contains("pre.gguf") && e.getMessage().contains("'" + pre + "'") && e.getMessage().contains("llama-bpe"), e.getMessage());
    }
}
