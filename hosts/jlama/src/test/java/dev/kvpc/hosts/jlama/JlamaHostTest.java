package dev.kvpc.hosts.jlama;

import com.github.tjake.jlama.tensor.AbstractTensor;
import com.github.tjake.jlama.tensor.KvBufferCache;
import dev.kvpc.cli.Main;
import dev.kvpc.embed.Kvpc;
import dev.kvpc.examples.llama.GgufFile;
import dev.kvpc.examples.llama.HfExport;
import dev.kvpc.examples.llama.Llama2cModel;
import dev.kvpc.examples.llama.LlamaEngine;
import dev.kvpc.examples.llama.Tokenizer;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.Sequence;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * kvpc-tiny exported in Hugging Face's form ({@link HfExport}) runs in Jlama with its KV cache replaced by kvpc's lanes
 * ({@link KvpcLlama}): Jlama's tokenizer gives kvpc's tokens; with the full cache, Jlama's greedy continuation is kvpc
 * engine's and its logits agree within {@link #LOGIT_TOLERANCE}; one policy jar, compiled once by {@code kvpc compile},
 * runs unchanged in both hosts with the same greedy tokens and logits within the same tolerance, and Jlama's lanes
 * hold the engine's bytes, which {@code kvpc memory} predicts.
 */
class JlamaHostTest {
    /** Both hosts compute in F32 with different summation orders: logits agree this closely on this model. */
    static final float LOGIT_TOLERANCE = 1e-3f;
    static final String[] PROMPTS = {"The pass key is 71294. Remember it.", "Call me Ishmael. Some years ago", "Mr. Speaker, the state of the Union"};

    @TempDir
    static Path dir;
    static Path gguf, hf;
    static Llama2cModel model;
    static Tokenizer tok;

    static Path root() {
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !Files.isDirectory(p.resolve("stdlib-policies"))) p = p.getParent();
        if (p == null) throw new IllegalStateException("no repository root above " + Path.of("").toAbsolutePath());
        return p;
    }

    @BeforeAll
    static void export() throws Exception {
        gguf = root().resolve("models/kvpc-tiny/kvpc-tiny.gguf");
        hf = dir.resolve("kvpc-tiny-hf");
        HfExport.write(gguf, hf);
        GgufFile g = GgufFile.open(gguf);
        model = Llama2cModel.fromGguf(g);
        tok = Tokenizer.fromGguf(g, model.vocab);
    }

    /** Greedy tokens (and each step's logits) of the kvpc engine under {@code policy}: the prompt as one prefill, then decode steps. */
    static int[] engineGreedy(PolicyRunner policy, int[] prompt, int steps, List<float[]> logits, long[] bytesAfterPrompt) {
        try (PagePool pool = new PagePool(); LlamaEngine e = new LlamaEngine(model, policy, pool)) {
            int[] out = new int[steps];
            float[] l = e.prefill(prompt, 0, prompt.length);
            if (bytesAfterPrompt != null) bytesAfterPrompt[0] = kvBytes(e.sequence());
            for (int i = 0; i < steps; i++) {
                if (logits != null) logits.add(l.clone());
                out[i] = LlamaEngine.argmax(l);
                if (i + 1 < steps) l = e.forward(out[i]);
            }
            return out;
        }
    }

    /** The same in Jlama: batchForward of the prompt, then forward per token, the argmax of Jlama's own logits. */
    static int[] jlamaGreedy(KvpcLlama m, int[] prompt, int steps, List<float[]> logits, long[] bytesAfterPrompt) {
        KvBufferCache.KvBuffer buf = m.newSession();
        int vocab = m.getConfig().vocabularySize;
        try (AbstractTensor lt = m.makeDenseTensor(1, vocab)) {
            int[] out = new int[steps];
            AbstractTensor x = m.batchForward(prompt, 0, buf);
            if (bytesAfterPrompt != null) bytesAfterPrompt[0] = kvBytes(m.sequence(buf));
            for (int i = 0; i < steps; i++) {
                AbstractTensor last = x.slice(x.shape().first() - 1);
                out[i] = m.sample(last, 0f, 0f, lt);
                x.close();
                if (logits != null) {
                    float[] l = new float[vocab];
                    for (int j = 0; j < vocab; j++) l[j] = lt.get(0, j);
                    logits.add(l);
                }
                if (i + 1 < steps) x = m.forward(out[i], prompt.length + i, buf, java.util.Optional.empty());
            }
            m.endSession(buf);
            return out;
        }
    }

    static long kvBytes(Sequence s) {
        long b = 0;
        for (Lane.LaneBytes[] row : s.memory()) for (Lane.LaneBytes x : row) b += x.kv() + x.scales();
        return b;
    }

    @Test
    void jlamaTokenizesAsKvpc() throws Exception {
        try (KvpcLlama m = KvpcLlama.load(hf, null)) {
            for (String p : PROMPTS) {
                int[] ours = tok.start(p);
                long[] theirs = m.getTokenizer().encode(p);
                int[] withBos = new int[theirs.length + 1];
                withBos[0] = m.getConfig().bosToken;
                for (int i = 0; i < theirs.length; i++) withBos[i + 1] = (int) theirs[i];
                assertArrayEquals(ours, withBos, "tokens of \"" + p + "\"");
            }
        }
    }

    @Test
    void fullCacheGreedyAndLogitsMatchTheEngine() throws Exception {
        try (KvpcLlama m = KvpcLlama.load(hf, null)) {
            for (String p : PROMPTS) {
                int[] prompt = tok.start(p);
                List<float[]> ours = new ArrayList<>(), theirs = new ArrayList<>();
                int[] a = engineGreedy(LlamaEngine.fullCache(), prompt, 40, ours, null);
                int[] b = jlamaGreedy(m, prompt, 40, theirs, null);
                assertArrayEquals(a, b, "greedy tokens after \"" + p + "\"");
                float worst = 0;
                for (int i = 0; i < ours.size(); i++) {
                    for (int j = 0; j < ours.get(i).length; j++) worst = Math.max(worst, Math.abs(ours.get(i)[j] - theirs.get(i)[j]));
                }
                assertTrue(worst <= LOGIT_TOLERANCE, "logits after \"" + p + "\" differ by up to " + worst);
            }
        }
    }

    /** Through Jlama's own generate: the text of the engine's greedy continuation, under a policy jar too. */
    @Test
    void jlamasGenerateWritesTheEnginesText() throws Exception {
        Path jar = dir.resolve("gen-h2o.jar");
        StringWriter out = new StringWriter(), err = new StringWriter();
        assertEquals(0, Main.run(new String[] {"compile", root().resolve("stdlib-policies/h2o.kvp").toString(), "--model", gguf.toString(), "--param", "budget=16",
                "-o", jar.toString()}, new PrintWriter(out, true), new PrintWriter(err, true)), err.toString());
        for (Path policy : new Path[] {null, jar}) {
            String prompt = PROMPTS[1];
            int[] p = tok.start(prompt);
            int more = 30;
            int[] ours = engineGreedy(policy == null ? LlamaEngine.fullCache() : Kvpc.load(jar, model.spec()), p, more + 1, null, null);
            java.io.ByteArrayOutputStream text = new java.io.ByteArrayOutputStream();
            int prev = p[p.length - 1];
            for (int t : ours) {
                text.writeBytes(tok.decode(prev, t));
                prev = t;
            }
            try (KvpcLlama m = KvpcLlama.load(hf, policy)) {
                var r = m.generate(java.util.UUID.randomUUID(), com.github.tjake.jlama.safetensors.prompt.PromptContext.of(prompt), 0f, p.length + more,
                        (piece, ms) -> { });
                assertEquals(text.toString(java.nio.charset.StandardCharsets.UTF_8), r.responseText, (policy == null ? "full cache" : "h2o budget 16")
                        + ": Jlama's generate after \"" + prompt + "\"");
            }
        }
    }

    /**
     * One jar per policy, compiled once for kvpc-tiny: kvpc's engine and Jlama run it over the same prompt and decode
     * steps to the same greedy tokens; after the prompt, Jlama's lanes hold the engine's bytes, within 5% of what
     * {@code kvpc memory} predicts for a prompt of that length (at most 5% over, where the prediction is a bound).
     */
    @ParameterizedTest
    @CsvSource({"h2o.kvp, budget=64", "streaming_llm.kvp, window=60", "kivi.kvp, residual=32", "snapkv.kvp, budget=64"})
    void oneJarRunsUnchangedInBothHosts(String file, String param) throws Exception {
        int[] prompt = passkeyPrompt();
        Path jar = dir.resolve(file.replace(".kvp", "") + ".jar");
        StringWriter out = new StringWriter(), err = new StringWriter();
        int code = Main.run(new String[] {"compile", root().resolve("stdlib-policies").resolve(file).toString(), "--model", gguf.toString(), "--param", param,
                "--context", Integer.toString(prompt.length), "--dtype", "f32", "-o", jar.toString()}, new PrintWriter(out, true), new PrintWriter(err, true));
        assertEquals(0, code, err.toString());
        int steps = 24;
        List<float[]> ours = new ArrayList<>(), theirs = new ArrayList<>();
        long[] engineBytes = new long[1];
        int[] a = engineGreedy(Kvpc.load(jar, model.spec()), prompt, steps, ours, engineBytes);
        long[] bytes = new long[1];
        int[] b;
        try (KvpcLlama m = KvpcLlama.load(hf, jar)) {
            b = jlamaGreedy(m, prompt, steps, theirs, bytes);
        }
        float worst = 0;
        for (int i = 0; i < steps; i++) {
            for (int j = 0; j < ours.get(i).length; j++) worst = Math.max(worst, Math.abs(ours.get(i)[j] - theirs.get(i)[j]));
        }
        assertArrayEquals(a, b, file + " (" + param + "): greedy tokens, kvpc engine " + Arrays.toString(a) + ", Jlama " + Arrays.toString(b));
        assertTrue(worst <= LOGIT_TOLERANCE, file + ": logits differ by up to " + worst);
        assertEquals(engineBytes[0], bytes[0], file + ": Jlama's lanes hold the kvpc engine's KV bytes after the prompt");
        // kvpc memory's prediction for the scenario: the prompt as one prefill, the runtime's pages
        out.getBuffer().setLength(0);
        err.getBuffer().setLength(0);
        code = Main.run(new String[] {"memory", root().resolve("stdlib-policies").resolve(file).toString(), "--model", gguf.toString(), "--param", param,
                "--context", Integer.toString(prompt.length), "--prompt", Integer.toString(prompt.length), "--dtype", "f32", "--json"},
                new PrintWriter(out, true), new PrintWriter(err, true));
        assertEquals(0, code, err.toString());
        long predicted = 0;
        Matcher lm = Pattern.compile("\"kv_bytes\": ?(\\d+), ?\"scale_bytes\": ?(\\d+)").matcher(out.toString());
        while (lm.find()) predicted += Long.parseLong(lm.group(1)) + Long.parseLong(lm.group(2));
        assertTrue(predicted > 0, out.toString());
        String what = file + ": Jlama's KV bytes after a " + prompt.length + "-token prompt, " + bytes[0] + ", against kvpc memory's " + predicted;
        if (out.toString().contains("\n  \"exact\": true,")) assertEquals(predicted, bytes[0], 0.05 * predicted, what);
        else assertTrue(bytes[0] <= 1.05 * predicted, what);
    }

    /**
     * A pass-key style prompt of under 256 tokens (Jlama's largest batch: a longer prompt would reach the policy as a
     * prefill and a chunk), long enough for the policies' budgets to bite.
     */
    static int[] passkeyPrompt() {
        StringBuilder text = new StringBuilder();
        String[] filler = {" The grass is green.", " The sky is blue.", " The sun is yellow.", " Here we go.", " There and back again."};
        for (int i = 0; text.length() < 340; i++) {
            text.append(filler[i % filler.length]);
            if (i == 3) text.append(" The pass key is 68213. Remember it. 68213 is the pass key.");
        }
        text.append(" What is the pass key? The pass key is");
        return tok.start(text.toString());
    }
}
