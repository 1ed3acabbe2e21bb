package dev.kvpc.examples.llama;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The tokenizer's merge loop (pair ids kept between steps) gives the ids of llama2.c's loop as it is written (every
 * pair looked up as a string on every step), here restated as the oracle, on the held-out text of the embedded model.
 */
class Llama2cMergeTest {
    @Test
    void mergesAsLlama2cDoes() throws Exception {
        Path dir = Stories260KTest.models();
        Llama2cModel model = Llama2cModel.load(dir.resolve("stories260K.bin"));
        Llama2cTokenizer tok = Llama2cTokenizer.load(dir.resolve("tok512.bin"), model.vocab);
        String text = Files.readString(Path.of("..", "models", "kvpc-tiny", "heldout.txt"));
        int checked = 0;
        for (String para : text.split("\n\n")) {
            if (para.isBlank()) continue;
            String s = para.length() > 1500 ? para.substring(0, 1500) : para;
            assertArrayEquals(naive(tok, s, checked % 2 == 0), tok.encode(s, checked % 2 == 0), s);
            if (++checked == 40) break;
        }
        assertArrayEquals(naive(tok, "", true), tok.encode("", true));
        assertArrayEquals(naive(tok, "é ü 字 \u0001", false), tok.encode("é ü 字 \u0001", false));
        assertTrue(checked == 40, "paragraphs checked: " + checked);
    }

    /**
     * A vocabulary without llama2.c's byte tokens (ids 3..258): a character it lacks is <unk>, not an id past its end
     * (found by the reliability run: kvpc run failed with ArrayIndexOutOfBoundsException, exit 70).
     */
    @Test
    void aCharacterOutsideASmallVocabularyIsUnknown(@org.junit.jupiter.api.io.TempDir Path tmp) throws Exception {
        String[] pieces = {"<unk>", "<s>", "</s>", "a", "b", " a", "ab", " "};
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(256).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(8);
        for (int i = 0; i < pieces.length; i++) {
            byte[] p = pieces[i].getBytes(java.nio.charset.StandardCharsets.UTF_8);
            b.putFloat(-i).putInt(p.length).put(p);
        }
        Path file = tmp.resolve("tok8.bin");
        Files.write(file, java.util.Arrays.copyOf(b.array(), b.position()));
        Llama2cTokenizer tok = Llama2cTokenizer.load(file, 8);
        assertArrayEquals(new int[] {1, 5, 4}, tok.encode("ab", true), "' a' and 'b' (the dummy prefix, then merges by score)");
        assertArrayEquals(new int[] {1, 5, 0, 4}, tok.encode("axb", true), "x is not in the vocabulary");
    }

    private static int[] naive(Llama2cTokenizer tok, String text, boolean bos) {
        Map<String, Integer> index = new HashMap<>();
        for (int i = tok.size() - 1; i >= 0; i--) index.put(new String(tok.piece(i), StandardCharsets.ISO_8859_1), i);
        List<Integer> t = new ArrayList<>();
        if (bos) t.add(1);
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        if (bytes.length > 0 && index.get(" ") != null) t.add(index.get(" "));
        for (int i = 0; i < bytes.length; ) {
            int j = i + 1;
            while (j < bytes.length && j - i < 4 && (bytes[j] & 0xC0) == 0x80) j++;
            Integer id = index.get(new String(bytes, i, j - i, StandardCharsets.ISO_8859_1));
            if (id != null) t.add(id);
            else for (int b = i; b < j; b++) t.add((bytes[b] & 0xff) + 3);
            i = j;
        }
        while (true) {
            float best = -1e10f;
            int bestId = -1, bestAt = -1;
            for (int i = 0; i + 1 < t.size(); i++) {
                Integer id = index.get(new String(tok.piece(t.get(i)), StandardCharsets.ISO_8859_1) + new String(tok.piece(t.get(i + 1)), StandardCharsets.ISO_8859_1));
                if (id != null && tok.score(id) > best) {
                    best = tok.score(id);
                    bestId = id;
                    bestAt = i;
                }
            }
            if (bestAt < 0) break;
            t.set(bestAt, bestId);
            t.remove(bestAt + 1);
        }
        return t.stream().mapToInt(Integer::intValue).toArray();
    }
}
