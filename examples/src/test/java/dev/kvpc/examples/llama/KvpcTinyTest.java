package dev.kvpc.examples.llama;

import dev.kvpc.runtime.pool.PagePool;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The project's own model, {@code models/kvpc-tiny/} (exported by {@code tools/train/export.py}): the engine reads
 * the GGUF file, its tokenizer gives the ids train.py's tokenizer gives, and its logits (full cache, the kvpc runtime
 * holding the KV cache) equal the torch model's in {@code reference.txt} at every position listed there.
 */
class KvpcTinyTest {
    static final double TOLERANCE = 1e-3;

    static Path dir() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            Path m = p.resolve("models").resolve("kvpc-tiny");
            if (Files.isRegularFile(m.resolve("kvpc-tiny.gguf"))) return m;
        }
        throw new AssertionError("no models/kvpc-tiny/kvpc-tiny.gguf above " + Path.of("").toAbsolutePath() + " (it is committed in the repository)");
    }

    /** A case of the reference file: the prompt, its ids, and logits by position. */
    record Case(String name, String text, int[] ids, TreeMap<Integer, float[]> logits) {
    }

    /** Reads reference.txt (format: tools/train/export.py); a malformed line fails with its file and number. */
    static List<Case> reference(Path file, int vocab) throws IOException {
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        assertEquals("kvpc-reference 1", lines.getFirst(), file + ":1: not a reference file of version 1");
        List<Case> cases = new ArrayList<>();
        String name = null, text = null;
        int[] ids = null;
        TreeMap<Integer, float[]> logits = null;
        for (int n = 1; n < lines.size(); n++) {
            String line = lines.get(n), where = file + ":" + (n + 1) + ": ";
            if (line.isEmpty() || line.startsWith("#")) continue;
            String[] f = line.split(" ");
            switch (f[0]) {
                case "model" -> assertEquals("kvpc-tiny.gguf", f[1], where + "reference for another model");
                case "vocab" -> assertEquals(vocab, Integer.parseInt(f[1]), where + "vocabulary size");
                case "case" -> {
                    assertNull(name, where + "case inside a case");
                    name = f[1];
                    logits = new TreeMap<>();
                }
                case "text" -> text = new String(HexFormat.of().parseHex(f.length > 1 ? f[1] : ""), StandardCharsets.UTF_8);
                case "ids" -> {
                    ids = new int[Integer.parseInt(f[1])];
                    assertEquals(ids.length + 2, f.length, where + "id count");
                    for (int i = 0; i < ids.length; i++) ids[i] = Integer.parseInt(f[i + 2]);
                }
                case "logits" -> {
                    assertNotNull(logits, where + "logits outside a case");
                    assertEquals(vocab + 2, f.length, where + "one logit per token");
                    float[] v = new float[vocab];
                    for (int i = 0; i < vocab; i++) v[i] = Float.parseFloat(f[i + 2]);
                    assertNull(logits.put(Integer.parseInt(f[1]), v), where + "position given twice");
                }
                case "end" -> {
                    assertTrue(name != null && text != null && ids != null, where + "case without name, text or ids");
                    cases.add(new Case(name, text, ids, logits));
                    name = text = null;
                    ids = null;
                    logits = null;
                }
                default -> fail(where + "unknown record " + f[0]);
            }
        }
        assertNull(name, file + ": the last case has no end");
        return cases;
    }

    @Test
    void theExportsMetadataIsReadBack() throws Exception {
        GgufFile g = GgufFile.open(dir().resolve("kvpc-tiny.gguf"));
        assertEquals(3, g.version());
        assertEquals(512, g.integer("llama.vocab_size"));
        assertEquals(8, g.integer("llama.attention.head_count"));
        assertEquals(2, g.integer("llama.attention.head_count_kv"));
        assertEquals(10000.0, g.real("llama.rope.freq_base", Double.NaN));
        assertEquals(1e-5f, (float) g.real("llama.attention.layer_norm_rms_epsilon", Double.NaN));
        assertEquals("gpt2", g.metadata().get("tokenizer.ggml.model"));
        assertFalse(g.has("output.weight"), "the classifier is tied to the embedding");
        Llama2cModel m = Llama2cModel.fromGguf(g);
        assertEquals(128, m.dim);
        assertEquals(4, m.layers);
        assertEquals(8, m.heads);
        assertEquals(2, m.kvHeads);
        assertEquals(16, m.headSize);
        assertEquals(384, m.hidden);
        assertEquals(512, m.vocab);
        assertEquals(1024, m.seqLen);
        assertEquals(10000.0, m.ropeTheta);
        assertEquals(1e-5f, m.rmsEps);
        assertTrue(m.sharedClassifier);
        assertSame(m.embedding, m.classifier);
        assertEquals(512, Tokenizer.fromGguf(g, m.vocab).size());
    }

    @Test
    void theTokenizerGivesTrainPysIds() throws Exception {
        BpeTokenizer tok = BpeTokenizer.fromGguf(GgufFile.open(dir().resolve("kvpc-tiny.gguf")), 512);
        List<Case> cases = reference(dir().resolve("reference.txt"), 512);
        assertEquals(List.of("heldout", "passkey", "tokenizer"), cases.stream().map(Case::name).toList());
        for (Case c : cases) {
            assertArrayEquals(c.ids(), tok.encode(c.text()), c.name());
            ByteArrayOutputStream back = new ByteArrayOutputStream();
            for (int id : c.ids()) back.writeBytes(tok.decode(-1, id));
            assertEquals(c.text(), back.toString(StandardCharsets.UTF_8), c.name() + ": the ids decode back to the text");
        }
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"scalar", "vector"})
    void theEnginesLogitsEqualTheTorchReference(String kernel) throws Exception {
        Path dir = dir();
        Llama2cModel m = Llama2cModel.fromGguf(GgufFile.open(dir.resolve("kvpc-tiny.gguf")));
        double max = 0;
        int compared = 0;
        for (Case c : reference(dir.resolve("reference.txt"), m.vocab)) {
            if (c.logits().isEmpty()) continue;
            assertTrue(c.logits().lastKey() < c.ids().length, c.name() + ": logits past the prompt");
            try (PagePool pool = new PagePool(); LlamaEngine engine = new LlamaEngine(m, LlamaEngine.fullCache(), pool, Stories260KTest.kernel(kernel))) {
                for (int p = 0; p <= c.logits().lastKey(); p++) {
                    float[] got = engine.forward(c.ids()[p]);
                    float[] want = c.logits().get(p);
                    if (want == null) continue;
                    double caseMax = 0;
                    for (int i = 0; i < m.vocab; i++) caseMax = Math.max(caseMax, Math.abs(got[i] - want[i]));
                    assertTrue(caseMax < TOLERANCE, c.name() + " position " + p + ": logits differ by up to " + caseMax);
                    assertEquals(LlamaEngine.argmax(want), LlamaEngine.argmax(got), c.name() + " position " + p + ": the top token");
                    max = Math.max(max, caseMax);
                    compared++;
                }
            }
        }
        assertTrue(compared >= 50, "only " + compared + " positions compared");
        System.out.printf(Locale.ROOT, "kvpc-tiny (%s kernel): logits at %d positions, max abs difference to torch %.3g%n", kernel, compared, max);
    }

    @Test
    void oneTokenizerEncodesOnSeveralThreadsAsOnOne() throws Exception {
        GgufFile g = GgufFile.open(dir().resolve("kvpc-tiny.gguf"));
        // distinct made-up words, so that every thread fills the tokenizer's cache of merged pieces at once
        java.util.Random rnd = new java.util.Random(7);
        String[] texts = new String[4];
        for (int t = 0; t < texts.length; t++) {
            StringBuilder b = new StringBuilder();
            for (int w = 0; w < 20_000; w++) {
                b.append(' ');
                for (int c = 2 + rnd.nextInt(8); c > 0; c--) b.append((char) ('a' + rnd.nextInt(26)));
            }
            texts[t] = b.toString();
        }
        BpeTokenizer alone = BpeTokenizer.fromGguf(g, 512);
        int[][] expected = new int[texts.length][];
        for (int t = 0; t < texts.length; t++) expected[t] = alone.encode(texts[t]);
        BpeTokenizer shared = BpeTokenizer.fromGguf(g, 512);
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(texts.length);
        try {
            List<java.util.concurrent.Future<int[]>> got = new ArrayList<>();
            for (String text : texts) got.add(pool.submit(() -> shared.encode(text)));
            for (int t = 0; t < texts.length; t++) assertArrayEquals(expected[t], got.get(t).get(), "text " + t);
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void aPromptIsPrintedAndContinued() throws Exception {
        GgufFile g = GgufFile.open(dir().resolve("kvpc-tiny.gguf"));
        Llama2cModel m = Llama2cModel.fromGguf(g);
        Tokenizer tok = Tokenizer.fromGguf(g, m.vocab);
        try (PagePool pool = new PagePool(); LlamaEngine engine = new LlamaEngine(m, LlamaEngine.fullCache(), pool)) {
            String got = new String(LlamaEngine.generate(engine, tok, new Sampler(0f, 0.9f, 1), "The whale", 20), StandardCharsets.UTF_8);
            assertTrue(got.startsWith("The whale") && got.length() > "The whale".length(), got);
            assertEquals(20, engine.positions());
        }
        try (PagePool pool = new PagePool(); LlamaEngine engine = new LlamaEngine(m, LlamaEngine.fullCache(), pool)) {
            // kvpc-tiny was trained with a BOS (byte 0x02) first: an empty prompt is the BOS alone, which prints nothing
            assertEquals(2, tok.bos(), "the GGUF declares the BOS it was trained with");
            assertArrayEquals(new int[] {2}, tok.start(""));
            String got = new String(LlamaEngine.generateGreedy(engine, tok, 20), StandardCharsets.UTF_8);
            assertTrue(!got.isBlank() && got.indexOf('\u0002') < 0, "an empty prompt starts from the BOS, which is not printed: " + got);
        }
    }

    @Test
    void brokenExportsAreRefusedWithTheFileAndTheReason(@TempDir Path tmp) throws Exception {
        byte[] real = Files.readAllBytes(dir().resolve("kvpc-tiny.gguf"));
        assertRefused(tmp, "pre.gguf", patchString(real, "tokenizer.ggml.pre", "kvpx"), "tokenizer.ggml.pre is 'kvpx'");
        assertRefused(tmp, "model.gguf", patchString(real, "tokenizer.ggml.model", "gpt3"), "tokenizer.ggml.model is 'gpt3'");
        String pattern = BpeTokenizer.PATTERN.replace("0-9]|", "0-8]|");
        assertRefused(tmp, "pattern.gguf", patchString(real, "kvpc.tokenizer.pattern", pattern), "kvpc.tokenizer.pattern is");
        assertRefused(tmp, "theta.gguf", patchValue(real, "llama.rope.freq_base", 6, 0.5f), "llama.rope.freq_base is 0.5");
        assertRefused(tmp, "vocab.gguf", patchValue(real, "llama.vocab_size", 4, 511), "llama.vocab_size is 511");
        assertRefused(tmp, "ropedim.gguf", patchValue(real, "llama.rope.dimension_count", 4, 8), "llama.rope.dimension_count is 8");
    }

    private static void assertRefused(Path tmp, String name, byte[] bytes, String reason) throws Exception {
        Path f = tmp.resolve(name);
        Files.write(f, bytes);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> {
            GgufFile g = GgufFile.open(f);
            Tokenizer.fromGguf(g, Llama2cModel.fromGguf(g).vocab);
        });
        assertTrue(e.getMessage().contains(name) && e.getMessage().contains(reason), e.getMessage());
    }

    /** A copy with a string value of the same length replaced. */
    private static byte[] patchString(byte[] file, String key, String value) {
        byte[] v = value.getBytes(StandardCharsets.UTF_8);
        int at = valueAt(file, key, 8);
        ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(v.length, b.getLong(at), key + ": the patch keeps the length");
        byte[] out = file.clone();
        System.arraycopy(v, 0, out, at + 8, v.length);
        return out;
    }

    /** A copy with a u32 (type 4) or f32 (type 6) value replaced. */
    private static byte[] patchValue(byte[] file, String key, int type, Number value) {
        int at = valueAt(file, key, type);
        byte[] out = file.clone();
        ByteBuffer b = ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
        if (type == 6) b.putFloat(at, value.floatValue());
        else b.putInt(at, value.intValue());
        return out;
    }

    /** Where a metadata value sits: after its key (u64 length + bytes) and its u32 type, which must be {@code type}. */
    private static int valueAt(byte[] file, String key, int type) {
        byte[] k = key.getBytes(StandardCharsets.UTF_8);
        outer:
        for (int i = 8; i + k.length + 4 <= file.length; i++) {
            for (int j = 0; j < k.length; j++) if (file[i + j] != k[j]) continue outer;
            ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
            if (b.getLong(i - 8) != k.length) continue;
            assertEquals(type, b.getInt(i + k.length), key + "'s value type");
            return i + k.length + 4;
        }
        throw new AssertionError("no metadata key " + key);
    }
}
