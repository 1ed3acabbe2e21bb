package dev.kvpc.examples.llama;

import dev.kvpc.runtime.pool.PagePool;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The engine on Karpathy's stories260K (in ../shared/models beside the checkout), its KV cache the kvpc runtime
 * (full cache): greedy generation reproduces llama2.c's reference output byte for byte.
 */
class Stories260KTest {
    /**
     * The stories260K folder: $KVPC_MODELS/stories260K when set, else shared/models/stories260K beside the checkout
     * or beside any folder above it. Absent everywhere, the tests are skipped with that reason (a clone made far
     * from the shared folder has no model to test against).
     */
    static Path models() {
        String env = System.getenv("KVPC_MODELS");
        if (env != null && !env.isBlank()) {
            Path m = Path.of(env).resolve("stories260K");
            assertTrue(Files.isDirectory(m), "KVPC_MODELS is set but holds no stories260K folder: " + m);
            return m;
        }
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            Path m = p.resolveSibling("shared").resolve("models").resolve("stories260K");
            if (p.getParent() != null && Files.isDirectory(m)) return m;
        }
        // Skip, not fail: the model is not part of the project; a clone made away from the shared folder has nothing to check against.
        Assumptions.assumeTrue(false, "no shared/models/stories260K beside the checkout and KVPC_MODELS unset");
        return null;
    }

    /** A kernel by name: the scalar one (llama2.c's summation order, the default) or the Vector API's. */
    static Matmul kernel(String name) {
        return switch (name) {
            case "scalar" -> Matmul.scalar();
            case "vector" -> Matmul.vector();
            default -> throw new AssertionError(name);
        };
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"scalar", "vector"})
    void greedyGenerationMatchesLlama2c(String kernel) throws Exception {
        Path dir = models();
        Llama2cModel model = Llama2cModel.load(dir.resolve("stories260K.bin"));
        assertEquals(64, model.dim);
        assertEquals(5, model.layers);
        assertEquals(8, model.heads);
        assertEquals(4, model.kvHeads);
        Llama2cTokenizer tok = Llama2cTokenizer.load(dir.resolve("tok512.bin"), model.vocab);
        String expected = Files.readString(dir.resolve("expected_greedy_t0_n200.txt"), StandardCharsets.UTF_8);
        try (PagePool pool = new PagePool(); LlamaEngine engine = new LlamaEngine(model, LlamaEngine.fullCache(), pool, kernel(kernel))) {
            String got = new String(LlamaEngine.generateGreedy(engine, tok, 200), StandardCharsets.UTF_8);
            assertEquals(expected.strip(), got.strip());
        }
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"1.0, expected_t1_p1_s42_n200.txt, scalar", "0.95, expected_t1_p0.95_s42_n200.txt, scalar",
            "1.0, expected_t1_p1_s42_n200.txt, vector", "0.95, expected_t1_p0.95_s42_n200.txt, vector"})
    void sampledGenerationMatchesLlama2cForTheSameSeed(float topp, String reference, String kernel) throws Exception {
        Path dir = models();
        Llama2cModel model = Llama2cModel.load(dir.resolve("stories260K.bin"));
        Llama2cTokenizer tok = Llama2cTokenizer.load(dir.resolve("tok512.bin"), model.vocab);
        String expected = Files.readString(dir.resolve(reference), StandardCharsets.UTF_8);
        try (PagePool pool = new PagePool(); LlamaEngine engine = new LlamaEngine(model, LlamaEngine.fullCache(), pool, kernel(kernel))) {
            String got = new String(LlamaEngine.generate(engine, tok, new Sampler(1.0f, topp, 42), "", 200), StandardCharsets.UTF_8);
            assertEquals(expected.strip(), got.strip());
        }
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"scalar", "vector"})
    void aPromptIsEncodedAndContinuedAsLlama2cDoes(String kernel) throws Exception {
        Path dir = models();
        Llama2cModel model = Llama2cModel.load(dir.resolve("stories260K.bin"));
        Llama2cTokenizer tok = Llama2cTokenizer.load(dir.resolve("tok512.bin"), model.vocab);
        int[] ids = tok.encode("The cat", true);
        assertEquals(1, ids[0]);
        StringBuilder back = new StringBuilder();
        for (int i = 1; i < ids.length; i++) back.append(new String(tok.decode(ids[i - 1], ids[i]), StandardCharsets.UTF_8));
        assertEquals("The cat", back.toString(), "the tokens of the prompt decode back to it");
        try (PagePool pool = new PagePool(); LlamaEngine engine = new LlamaEngine(model, LlamaEngine.fullCache(), pool, kernel(kernel))) {
            String got = new String(LlamaEngine.generate(engine, tok, new Sampler(0f, 0.9f, 1), "The cat", 60), StandardCharsets.UTF_8);
            assertTrue(got.startsWith("The cat and a boy were playing in the park. They liked to play with their toys and run around the park."), got);
        }
    }

    @Test
    void malformedFilesAreRefusedWithTheirName(@org.junit.jupiter.api.io.TempDir Path tmp) throws Exception {
        Path bad = tmp.resolve("bad.bin");
        Files.write(bad, new byte[10]);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> Llama2cModel.load(bad));
        assertTrue(e.getMessage().contains("bad.bin") && e.getMessage().contains("truncated"), e.getMessage());
        byte[] real = Files.readAllBytes(models().resolve("stories260K.bin"));
        Path cut = tmp.resolve("cut.bin");
        Files.write(cut, java.util.Arrays.copyOf(real, real.length / 2));
        e = assertThrows(ModelFormatException.class, () -> Llama2cModel.load(cut));
        assertTrue(e.getMessage().contains("cut.bin") && e.getMessage().contains("truncated"), e.getMessage());
    }
}
