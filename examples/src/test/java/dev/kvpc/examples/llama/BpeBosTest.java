package dev.kvpc.examples.llama;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The byte-level BPE vocabulary's BOS: none unless the file asks for one ({@code tokenizer.ggml.add_bos_token}), then
 * {@code tokenizer.ggml.bos_token_id} starts every prompt and prints nothing; a request without a valid id is refused
 * with the file's name. The vocabulary is kvpc-tiny's, copied into files that differ only in those keys.
 */
class BpeBosTest {
    @TempDir
    Path tmp;

    private GgufFile vocabulary(String name, Map<String, Object> extra) throws Exception {
        GgufFile src = GgufFile.open(KvpcTinyTest.dir().resolve("kvpc-tiny.gguf"));
        GgufWriter w = new GgufWriter();
        for (String k : new String[] {"tokenizer.ggml.model", "tokenizer.ggml.pre", "kvpc.tokenizer.pattern"}) w.put(k, src.metadata().get(k));
        w.put("tokenizer.ggml.tokens", src.strings("tokenizer.ggml.tokens")).put("tokenizer.ggml.merges", src.strings("tokenizer.ggml.merges"));
        extra.forEach(w::put);
        Path file = tmp.resolve(name);
        w.write(file);
        return GgufFile.open(file);
    }

    @Test
    void bosOnlyWhereTheFileAsksForOne() throws Exception {
        BpeTokenizer plain = BpeTokenizer.fromGguf(vocabulary("plain.gguf", Map.of("tokenizer.ggml.bos_token_id", 2)), 512);
        assertEquals(-1, plain.bos(), "an id alone does not add a BOS: add_bos_token defaults to false for this vocabulary");
        int[] text = plain.encode(" The pass key is");
        assertArrayEquals(text, plain.start(" The pass key is"));

        Map<String, Object> m = new LinkedHashMap<>();
        m.put("tokenizer.ggml.add_bos_token", true);
        m.put("tokenizer.ggml.bos_token_id", 2);
        BpeTokenizer bos = BpeTokenizer.fromGguf(vocabulary("bos.gguf", m), 512);
        assertEquals(2, bos.bos());
        int[] start = bos.start(" The pass key is");
        assertEquals(2, start[0]);
        assertArrayEquals(text, java.util.Arrays.copyOfRange(start, 1, start.length), "the prompt's tokens follow the BOS");
        assertArrayEquals(new int[] {2}, bos.start(""), "an empty prompt is the BOS alone");
        assertEquals(0, bos.decode(-1, 2).length, "the BOS prints nothing");
        assertTrue(plain.decode(-1, 2).length == 1, "without a BOS token 2 is the byte it stands for");

        ModelFormatException e = assertThrows(ModelFormatException.class,
                () -> BpeTokenizer.fromGguf(vocabulary("nobos.gguf", Map.of("tokenizer.ggml.add_bos_token", true)), 512));
        assertTrue(e.getMessage().contains("nobos.gguf") && e.getMessage().contains("bos_token_id is missing"), e.getMessage());
        m.put("tokenizer.ggml.bos_token_id", 512);
        e = assertThrows(ModelFormatException.class, () -> BpeTokenizer.fromGguf(vocabulary("far.gguf", m), 512));
        assertTrue(e.getMessage().contains("512, not a token"), e.getMessage());
    }
}
