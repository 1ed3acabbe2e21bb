package dev.kvpc.examples.llama;

import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Batched prefill on the project's model: a prompt run as one step gives the logits the token-by-token path gives
 * (within {@value #TOLERANCE}), decoding after it continues them, greedy generation gives the same text, and a
 * policy sees one prefill event per layer with every prompt token, then decode events.
 */
class PrefillTest {
    static final double TOLERANCE = 1e-5;

    static Llama2cModel model() throws Exception {
        return Llama2cModel.fromGguf(GgufFile.open(KvpcTinyTest.dir().resolve("kvpc-tiny.gguf")));
    }

    @ParameterizedTest
    @ValueSource(strings = {"scalar", "vector"})
    void aPromptInOneStepGivesTheTokenByTokenLogits(String kernel) throws Exception {
        Llama2cModel m = model();
        int[] ids = KvpcTinyTest.reference(KvpcTinyTest.dir().resolve("reference.txt"), m.vocab).getFirst().ids();
        assertTrue(ids.length >= 30, "the held-out case has " + ids.length + " tokens");
        float[][] byToken = new float[ids.length][];
        try (PagePool pool = new PagePool(); LlamaEngine e = new LlamaEngine(m, LlamaEngine.fullCache(), pool, Stories260KTest.kernel(kernel))) {
            for (int p = 0; p < ids.length; p++) byToken[p] = e.forward(ids[p]).clone();
        }
        double max = 0;
        int compared = 0;
        for (int n : new int[]{1, 2, 3, 4, 5, 8, 13, 24, ids.length - 5}) {
            try (PagePool pool = new PagePool(); LlamaEngine e = new LlamaEngine(m, LlamaEngine.fullCache(), pool, Stories260KTest.kernel(kernel))) {
                float[] got = e.prefill(ids, 0, n);
                assertEquals(n, e.positions());
                max = Math.max(max, check(byToken[n - 1], got, kernel + ": prefill of " + n));
                for (int p = n; p < n + 5; p++) max = Math.max(max, check(byToken[p], e.forward(ids[p]), kernel + ": decode at " + p + " after a prefill of " + n));
                compared += 6;
            }
        }
        System.out.printf(Locale.ROOT, "prefill (%s kernel): %d positions, max abs difference to token by token %.3g%n", kernel, compared, max);
    }

    /** prefillAll gives every position's logits: the token-by-token ones, and its last row is prefill's result. */
    @ParameterizedTest
    @ValueSource(strings = {"scalar", "vector"})
    void aPromptGivesEveryPositionsLogits(String kernel) throws Exception {
        Llama2cModel m = model();
        int[] ids = KvpcTinyTest.reference(KvpcTinyTest.dir().resolve("reference.txt"), m.vocab).getFirst().ids();
        int n = 24;
        float[][] all;
        float[] last;
        try (PagePool pool = new PagePool(); LlamaEngine e = new LlamaEngine(m, LlamaEngine.fullCache(), pool, Stories260KTest.kernel(kernel))) {
            all = e.prefillAll(ids, 0, n);
            assertEquals(n, e.positions());
        }
        try (PagePool pool = new PagePool(); LlamaEngine e = new LlamaEngine(m, LlamaEngine.fullCache(), pool, Stories260KTest.kernel(kernel))) {
            last = e.prefill(ids, 0, n).clone();
        }
        assertArrayEquals(last, all[n - 1], kernel + ": the last row is what prefill returns");
        try (PagePool pool = new PagePool(); LlamaEngine e = new LlamaEngine(m, LlamaEngine.fullCache(), pool, Stories260KTest.kernel(kernel))) {
            for (int p = 0; p < n; p++) check(e.forward(ids[p]).clone(), all[p], kernel + ": position " + p + " of a prefill");
        }
    }

    private static double check(float[] want, float[] got, String what) {
        double d = 0;
        for (int i = 0; i < want.length; i++) d = Math.max(d, Math.abs(want[i] - got[i]));
        assertTrue(d <= TOLERANCE, what + ": logits differ by up to " + d);
        assertEquals(LlamaEngine.argmax(want), LlamaEngine.argmax(got), what + ": the top token");
        return d;
    }

    @ParameterizedTest
    @ValueSource(strings = {"scalar", "vector"})
    void greedyTextIsTheTokenByTokenText(String kernel) throws Exception {
        GgufFile g = GgufFile.open(KvpcTinyTest.dir().resolve("kvpc-tiny.gguf"));
        Llama2cModel m = Llama2cModel.fromGguf(g);
        Tokenizer tok = Tokenizer.fromGguf(g, m.vocab);
        String prompt = "The whale swam across the sea and";
        int steps = 60;
        String batched;
        try (PagePool pool = new PagePool(); LlamaEngine e = new LlamaEngine(m, LlamaEngine.fullCache(), pool, Stories260KTest.kernel(kernel))) {
            batched = new String(LlamaEngine.generate(e, tok, new Sampler(0f, 1f, 0), prompt, steps), StandardCharsets.UTF_8);
        }
        // llama2.c's loop, one forward per position
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (PagePool pool = new PagePool(); LlamaEngine e = new LlamaEngine(m, LlamaEngine.fullCache(), pool, Stories260KTest.kernel(kernel))) {
            int[] p = tok.start(prompt);
            assertTrue(p.length > 4, "the prompt is several tokens");
            int token = p[0];
            out.writeBytes(tok.decode(-1, token));
            for (int pos = 0; pos < steps; pos++) {
                float[] logits = e.forward(token);
                int next = pos < p.length - 1 ? p[pos + 1] : LlamaEngine.argmax(logits);
                if (tok.ends(next)) break;
                out.writeBytes(tok.decode(token, next));
                token = next;
            }
        }
        assertEquals(out.toString(StandardCharsets.UTF_8), batched);
        assertTrue(batched.startsWith(prompt) && batched.length() > prompt.length() + 20, batched);
    }

    @Test
    void aPolicySeesOnePrefillEventThenDecodeEvents() throws Exception {
        GgufFile g = GgufFile.open(KvpcTinyTest.dir().resolve("kvpc-tiny.gguf"));
        Llama2cModel m = Llama2cModel.fromGguf(g);
        Tokenizer tok = Tokenizer.fromGguf(g, m.vocab);
        List<String> events = new ArrayList<>();
        PolicyRunner recorder = new PolicyRunner() {
            public int laneClass(int layer, int kvHead) {
                return 0;
            }

            public boolean perLayer(int laneClass) {
                return true;
            }

            public Event open(int laneClass, Step step, int layer, int[] kvHeads, List<Lane> lanes) {
                events.add(step.kind() + " layer " + layer + " tokens " + step.positions().length + " from " + step.positions()[0]);
                return new Event() {
                    public BitSet[] attendSets() {
                        return null;
                    }

                    public void finish() {
                    }
                };
            }
        };
        String prompt = "The whale swam";
        int n = tok.start(prompt).length;
        try (PagePool pool = new PagePool(); LlamaEngine e = new LlamaEngine(m, recorder, pool)) {
            LlamaEngine.generate(e, tok, new Sampler(0f, 1f, 0), prompt, n + 3);
        }
        List<String> want = new ArrayList<>();
        for (int l = 0; l < m.layers; l++) want.add("PREFILL layer " + l + " tokens " + n + " from 0");
        for (int s = 0; s < 3; s++) for (int l = 0; l < m.layers; l++) want.add("DECODE layer " + l + " tokens 1 from " + (n + s));
        assertEquals(want, events);
    }
}
