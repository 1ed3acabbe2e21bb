package dev.kvpc.cli;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Pass-key documents: as long with a BOS as without (the BOS takes a filler token's place), the BOS first, the key
 * stated at the depth asked, the question last.
 */
class EvalPasskeyTest {
    /** One token per character: easy to read back. */
    static final Function<String, int[]> CHARS = s -> s.chars().toArray();

    static String text(int[] ids, int from) {
        StringBuilder b = new StringBuilder();
        for (int i = from; i < ids.length; i++) b.append((char) ids[i]);
        return b.toString();
    }

    @Test
    void documentsWithAndWithoutBos() {
        List<String> fillers = List.of("The sea was calm that day.", "A ship came into the harbour.", "Nobody spoke of it again.");
        Eval.Passkey plain = Eval.passkey(CHARS, -1, new Random(4), fillers, 600, 0.25);
        Eval.Passkey bos = Eval.passkey(CHARS, 2, new Random(4), fillers, 600, 0.25);
        assertEquals(plain.key(), bos.key(), "the same seed draws the same key");
        assertEquals(plain.prompt().length, bos.prompt().length, "a BOS takes a filler token's place");
        assertEquals(2, bos.prompt()[0]);
        String a = text(plain.prompt(), 0), b = text(bos.prompt(), 1);
        assertTrue(b.endsWith(" What is the pass key? The pass key is"), b);
        String needle = " The pass key is " + plain.key() + ". Remember it.";
        int at = a.indexOf(needle), filler = a.length() - (" The pass key is " + plain.key() + ". Remember it. " + plain.key() + " is the pass key.").length()
                - " What is the pass key? The pass key is".length();
        assertEquals((int) (0.25 * filler), at, "the key at a quarter of the filler: " + a);
        assertTrue(b.indexOf(needle) >= 0, b);
        // the answer's tokens fit after the prompt within the length asked
        assertEquals(600 - (" " + plain.key() + ".").length(), plain.prompt().length);
    }
}
