package dev.kvpc.cli;

import dev.kvpc.examples.llama.LlamaEngine;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The embedded model's quality bar (issue: the engine and the trained model): with the full cache, through the Java
 * engine and the kvpc runtime, it answers at least 90 of 100 pass-key prompts at its trained context, the key at
 * depths spread evenly over the document, filler from the held-out text (kvpc eval's documents).
 */
class EmbeddedModelQualityTest {
    @Test
    void passKeysAtTheTrainedContextWithTheFullCache() throws Exception {
        Path root = CliRunner.root();
        Eval.Model m = EvalCommand.load(root.resolve("models/kvpc-tiny/kvpc-tiny.gguf"), root, new LinkedHashMap<>());
        int ctx = m.trainedContext();
        List<String> fillers = Eval.fillers(m.text());
        Eval.Compiled full = new Eval.Compiled(LlamaEngine.fullCache(), null);
        Random rnd = new Random(2026);
        int hits = 0;
        int[] bandHits = new int[4], bandN = new int[4];
        StringBuilder misses = new StringBuilder();
        for (int i = 0; i < 100; i++) {
            double depth = (i + 0.5) / 100;
            Eval.Passkey p = Eval.passkey(m.encode(), m.tokenizer().bos(), rnd, fillers, ctx, depth);
            boolean hit = Eval.answer(m, full, p).hit();
            int band = Math.min(3, (int) (depth * 4));
            bandN[band]++;
            if (hit) {
                hits++;
                bandHits[band]++;
            } else {
                misses.append(String.format(Locale.ROOT, " %.3f", depth));
            }
        }
        System.out.printf(Locale.ROOT, "kvpc-tiny, full cache, %d-token documents: %d of 100 pass keys (by depth quarter: %d/%d %d/%d %d/%d %d/%d); missed at depths%s%n",
                ctx, hits, bandHits[0], bandN[0], bandHits[1], bandN[1], bandHits[2], bandN[2], bandHits[3], bandN[3], misses);
        assertTrue(hits >= 90, hits + " of 100 pass keys at " + ctx + " tokens; missed at depths" + misses);
    }
}
