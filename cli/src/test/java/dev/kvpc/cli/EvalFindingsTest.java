package dev.kvpc.cli;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The findings kvpc eval computes, from made-up rows whose figures are known. */
class EvalFindingsTest {
    private static final int[] LENGTHS = {64, 128, 256, 512};

    /** One perplexity per bucket, {@code bytes} measured and {@code predicted} predicted. */
    private static Eval.Perplexity ppl(double[] perBucket, long bytes, long predicted) {
        double[] nll = new double[LENGTHS.length];
        long[] tokens = new long[LENGTHS.length];
        for (int i = 0; i < LENGTHS.length; i++) {
            tokens[i] = 10;
            nll[i] = 10 * Math.log(perBucket[i]);
        }
        return new Eval.Perplexity(LENGTHS, nll, tokens, 1.0, 100, bytes, predicted);
    }

    /** Pass keys in documents of 256 tokens at depths 0.1 and 0.9 (the key 230 and 26 tokens before the end). */
    private static Eval.Grid grid(int hitsFar, int hitsNear) {
        return new Eval.Grid(new int[] {256}, new double[] {0.1, 0.9}, new int[][] {{hitsFar, hitsNear}}, 4, 1, 1);
    }

    private static Eval.Row row(String name, double budget, Map<String, Object> params, Eval.Perplexity p, Eval.Grid g) {
        String label = name.equals("full") ? "full" : name.equals("kivi") ? "kivi 2-bit" : name + " " + Eval.pct(budget);
        return new Eval.Row("m", new Eval.Policy(label, name, params, budget), p, g);
    }

    @Test
    void rowsWithArgumentsAreNotTheOnesTheFindingsCompare() {
        // a streaming_llm row with 8 sinks comes first; the finding still reads the rule's row
        Eval.Policy eight = new Eval.Policy("streaming_llm(sinks = 8) 25%", "streaming_llm", Map.of("sinks", 8L, "window", 56L), 0.25, null, null,
                Map.of("sinks", 8L));
        List<Eval.Row> rows = List.of(
                row("full", 1.0, Map.of(), ppl(new double[] {10, 8, 8, 16}, 1000, 1000), null),
                new Eval.Row("m", eight, ppl(new double[] {10, 50, 50, 50}, 250, 250), null),
                row("window", 0.25, Map.of("size", 64L), ppl(new double[] {10, 20, 24, 30}, 250, 250), null),
                row("streaming_llm", 0.25, Map.of("sinks", 4L, "window", 60L), ppl(new double[] {10, 8.8, 8.4, 8.8}, 250, 250), null));
        String all = String.join("\n", EvalFindings.of(rows, 256));
        assertTrue(all.contains("streaming_llm 8.40, 1.05x."), all);
        assertFalse(all.contains("50.00"), all);
    }

    @Test
    void findingsStateTheRatiosAndAccuraciesOfTheRows() {
        // trained context 256; budget 25% = 64 entries
        List<Eval.Row> rows = List.of(
                row("full", 1.0, Map.of(), ppl(new double[] {10, 8, 8, 16}, 1000, 1000), grid(4, 4)),
                row("window", 0.25, Map.of("size", 64L), ppl(new double[] {10, 20, 24, 30}, 250, 250), grid(0, 4)),
                row("streaming_llm", 0.25, Map.of("sinks", 4L, "window", 60L), ppl(new double[] {10, 8.8, 8.4, 8.8}, 250, 250), grid(0, 4)),
                row("h2o", 0.25, Map.of("budget", 64L), ppl(new double[] {10, 9, 9, 10}, 260, 250), grid(3, 4)),
                row("kivi", Double.NaN, Map.of("bits", 2L), ppl(new double[] {10.1, 8.2, 8.1, 16.5}, 150, 150), null));
        List<String> f = EvalFindings.of(rows, 256);
        String all = String.join("\n", f);
        // past the window at the trained context (tokens 129-256): window 3x, streaming_llm 1.05x
        assertTrue(all.contains("Past the window (25% budget, 64 entries), tokens 129-256: window-only perplexity 24.00, 3.00x the full cache's 8.00; streaming_llm 8.40, 1.05x."), all);
        // past the trained context: the full cache doubles, streaming_llm stays
        assertTrue(all.contains("Past the trained context (256 tokens), tokens 257-512 against 129-256: the full cache 16.00 against 8.00 (2.00x); streaming_llm 25% (positions cache) 8.80 against 8.40 (1.05x)."), all);
        // window-only past the trained context, against streaming_llm on the same tokens
        assertTrue(all.contains("Past the trained context, tokens 257-512: window-only 25% 30.00, 3.41x streaming_llm 25%'s 8.80."), all);
        // one text window: no per-window range; no answers kept: no digit shares
        assertFalse(all.contains("per text window"), all);
        assertFalse(all.contains("Pass-key digits"), all);
        // pass keys: depth 0.1 is 230 tokens back (outside 64), 0.9 is 26 back (inside)
        assertTrue(all.contains(" full 100% of 4 / 100% of 4 (100%, 100%);"), all);
        assertTrue(all.contains(" window 25% 0% of 4 / 100% of 4 (0%, 100%);"), all);
        assertTrue(all.contains(" h2o 25% 75% of 4 / 100% of 4 (75%, 100%)."), all);
        // kivi: the worst bucket up to the trained context is tokens 65-128 (+2.5%)
        assertTrue(all.contains("kivi 2-bit: perplexity at most +2.5% from the full cache's at every length up to the trained context (tokens 65-128: 8.20 against 8.00)"), all);
        assertTrue(all.contains("KV bytes measured 150, 15.0% of the full cache's 1000, against the packed size kvpc memory predicts, 150 (+0.0%)."), all);
        // h2o's 260 against 250 is the largest difference, within 5%
        assertTrue(all.contains("Measured KV bytes are within 5% of kvpc memory's prediction on all 5 rows (largest difference +4.0%, h2o 25%)."), all);
        // the papers' findings: 2 and 3 hold on these rows; 1 has no question-aware row here and is left out
        assertTrue(all.contains("Paper finding 2 (StreamingLLM)") && all.contains("At 25% holds (window-only 3.00x, streaming_llm 1.05x)."), all);
        assertTrue(all.contains("Paper finding 3 (StreamingLLM)") && all.contains("full cache's perplexity goes 2.00x") && all.contains("At 25% holds (1.05x)."), all);
        assertFalse(all.contains("Paper finding 1"), all);
    }

    @Test
    void thePapersFindingsSayWhereTheyHoldAndWhereNot() {
        // budget 25% = 64 entries: the key at depth 0.1 lies outside; window-only only 1.2x past the window
        List<Eval.Row> rows = List.of(
                row("full", 1.0, Map.of(), ppl(new double[] {10, 8, 8, 16}, 1000, 1000), grid(4, 4)),
                row("window", 0.25, Map.of("size", 64L), ppl(new double[] {10, 9, 9.6, 30}, 250, 250), grid(0, 4)),
                row("streaming_llm", 0.25, Map.of("sinks", 4L, "window", 60L), ppl(new double[] {10, 8.8, 8.4, 12}, 250, 250), grid(0, 4)),
                row("h2o", 0.25, Map.of("budget", 64L), ppl(new double[] {10, 9, 9, 10}, 250, 250), grid(0, 4)),
                row("snapkv", 0.25, Map.of("budget", 64L), ppl(new double[] {10, 9, 9, 10}, 250, 250), grid(3, 4)),
                row("quest", 0.25, Map.of("page", 16L), ppl(new double[] {10, 9, 9, 10}, 1000, 1000), grid(1, 4)));
        String all = String.join("\n", EvalFindings.of(rows, 256));
        // quest answers 25% of the far keys, under half the full cache's 100%: the finding does not hold, and says who
        assertTrue(all.contains("At 25% does not hold (h2o 0%, streaming_llm 0%; snapkv 75%, quest 25%; full cache 100%; against it: quest)."), all);
        assertTrue(all.contains("At 25% does not hold (window-only 1.20x, streaming_llm 1.05x)."), all);
        // streaming_llm 12 past the trained context against 8.4 at it: 1.43x
        assertTrue(all.contains("At 25% does not hold (1.43x)."), all);
        List<Eval.Row> better = new java.util.ArrayList<>(rows);
        better.set(5, row("quest", 0.25, Map.of("page", 16L), ppl(new double[] {10, 9, 9, 10}, 1000, 1000), grid(4, 4)));
        all = String.join("\n", EvalFindings.of(better, 256));
        assertTrue(all.contains("At 25% holds (h2o 0%, streaming_llm 0%; snapkv 75%, quest 100%; full cache 100%)."), all);
    }

    /** Two text windows of 10 tokens per bucket, with these perplexities per bucket in each. */
    private static Eval.Perplexity twoWindows(double[] first, double[] second) {
        double[] nll = new double[LENGTHS.length];
        long[] tokens = new long[LENGTHS.length];
        double[][] each = new double[2][LENGTHS.length];
        for (int i = 0; i < LENGTHS.length; i++) {
            each[0][i] = 10 * Math.log(first[i]);
            each[1][i] = 10 * Math.log(second[i]);
            nll[i] = each[0][i] + each[1][i];
            tokens[i] = 20;
        }
        return new Eval.Perplexity(LENGTHS, nll, tokens, each, 1.0, 100, 250, 250);
    }

    @Test
    void theRatiosPastTheWindowComeWithTheirRangeOverTextWindows() {
        // window-only is 1.5x the full cache in the first text window and 4x in the second; streaming_llm 1x and 1.1x
        List<Eval.Row> rows = List.of(
                row("full", 1.0, Map.of(), twoWindows(new double[] {10, 8, 8, 16}, new double[] {10, 8, 2, 16}), null),
                row("window", 0.25, Map.of("size", 64L), twoWindows(new double[] {10, 8, 12, 12}, new double[] {10, 8, 8, 12}), null),
                row("streaming_llm", 0.25, Map.of("sinks", 4L, "window", 60L), twoWindows(new double[] {10, 8, 8, 6}, new double[] {10, 8, 2.2, 6}), null));
        String all = String.join("\n", EvalFindings.of(rows, 256));
        // the summed figures: full sqrt(8*2) = 4, window sqrt(12*8) = 9.80, streaming_llm sqrt(8*2.2) = 4.20
        assertTrue(all.contains("tokens 129-256: window-only perplexity 9.80, 2.45x the full cache's 4.00 (per text window 1.50x-4.00x over 2 windows); "
                + "streaming_llm 4.20, 1.05x (per text window 1.00x-1.10x over 2 windows)."), all);
        assertTrue(all.contains("tokens 257-512: window-only 25% 12.00, 2.00x streaming_llm 25%'s 6.00 (per text window 2.00x-2.00x over 2 windows)."), all);
    }

    /** Two documents per cell at depths 0.1 (outside a 64-entry window) and 0.9 (inside), with their answers. */
    private static Eval.Grid answered(String[] farAnswers, String[] nearAnswers) {
        String[][] keys = {{"12345", "67890"}, {"11111", "22222"}}, answers = {farAnswers, nearAnswers};
        Eval.Document[][][] docs = new Eval.Document[1][2][2];
        int[] hits = new int[2];
        for (int di = 0; di < 2; di++) {
            for (int s = 0; s < 2; s++) {
                boolean hit = answers[di][s].startsWith(keys[di][s]);
                if (hit) hits[di]++;
                docs[0][di][s] = new Eval.Document(keys[di][s], new Eval.Answer(hit, answers[di][s], 1, 1, new int[0], 10));
            }
        }
        return new Eval.Grid(new int[] {256}, new double[] {0.1, 0.9}, new int[][] {hits}, 2, 1, 1, docs, 0, new long[] {1});
    }

    @Test
    void digitsAnsweredInPlaceMeasurePartialRetrievalOutsideTheWindow() {
        List<Eval.Row> rows = List.of(
                row("full", 1.0, Map.of(), null, answered(new String[] {"12345.", "67890."}, new String[] {"11111.", "22222."})),
                // 3 of 5 digits in place, then none (a shorter answer); the inside documents do not count
                row("h2o", 0.25, Map.of("budget", 64L), null, answered(new String[] {"12399.", "7"}, new String[] {"99999", "99999"})),
                // no answers kept: left out of the digit shares
                row("window", 0.25, Map.of("size", 64L), null, grid(0, 2)));
        String all = String.join("\n", EvalFindings.of(rows, 256));
        assertTrue(all.contains("Pass-key digits at 25% budget, where the key lies more than 64 tokens before the question: the share of the key's digits "
                + "answered in their place (partial retrieval; a random answer gets 10%): full 100% of 10; h2o 25% 30% of 10."), all);
        assertTrue(all.contains(" h2o 25% 0% of 2 / 0% of 2 (0%, 0%)"), all);
    }

    /** Two documents per cell at depths 0.1 (outside a 64-entry window) and 0.9; 2 layers of 2 lanes, 10 key entries each. */
    private static Eval.Grid keyKept(int[][] far, int[][] near) {
        String[][] keys = {{"12345", "67890"}, {"11111", "22222"}};
        int[][][] kept = {far, near};
        Eval.Document[][][] docs = new Eval.Document[1][2][2];
        for (int di = 0; di < 2; di++) {
            for (int s = 0; s < 2; s++) docs[0][di][s] = new Eval.Document(keys[di][s], new Eval.Answer(true, keys[di][s], 1, 1, kept[di][s], 10));
        }
        return new Eval.Grid(new int[] {256}, new double[] {0.1, 0.9}, new int[][] {{2, 2}}, 2, 1, 1, docs, 2, new long[] {1});
    }

    @Test
    void theKeysEntriesKeptAreCountedLayerByLayerOutsideTheWindow() {
        int[][] all = {{10, 10, 10, 10}, {10, 10, 10, 10}}, none = {{0, 0, 0, 0}, {0, 0, 0, 0}};
        List<Eval.Row> rows = List.of(
                row("full", 1.0, Map.of(), null, keyKept(all, all)),
                // layer 0: 8 + 4 + 6 + 2 of 40; layer 1: 1 + 1 of 40; the documents inside the window do not count
                row("h2o", 0.25, Map.of("budget", 64L), null, keyKept(new int[][] {{8, 4, 1, 0}, {6, 2, 1, 0}}, none)));
        String f = String.join("\n", EvalFindings.of(rows, 256));
        assertTrue(f.contains("Key entries kept at 25% budget, where the key lies more than 64 tokens before the question: the share of the entries of the key's "
                + "digit tokens (both statements of it) still in the cache once the prompt is in, layer by layer: full 100%, 100%; h2o 25% 50%, 5%."), f);
    }

    @Test
    void aFindingWithoutItsRowsIsLeftOut() {
        List<Eval.Row> rows = List.of(row("h2o", 0.25, Map.of("budget", 64L), ppl(new double[] {10, 9, 9, 10}, 300, 250), null));
        List<String> f = EvalFindings.of(rows, 256);
        assertEquals(List.of("Measured KV bytes differ from kvpc memory's prediction by more than 5% on 1 of 1 rows: h2o 25% (+20.0%)."), f);
    }
}
