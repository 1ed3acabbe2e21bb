package dev.kvpc.examples.llama;

import de.kherud.llama.InferenceParameters;
import de.kherud.llama.LlamaModel;
import de.kherud.llama.ModelParameters;
import dev.kvpc.runtime.pool.PagePool;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

/**
 * llama.cpp (the {@code de.kherud:llama} binding, llama.cpp b4916 with its native library) as the reference engine, in
 * the test JVM, on the same GGUF file as kvpc's engine (stories260K.gguf): the same tokens for the same texts, and the
 * same greedy continuation of 64 tokens on the full cache.
 */
class LlamaCppReferenceTest {
    static Path gguf;
    static LlamaModel peer;

    @BeforeAll
    static void open() {
        gguf = Stories260KTest.models().resolve("stories260K.gguf");
        peer = new LlamaModel(new ModelParameters().setModel(gguf.toString()).setThreads(1).setThreadsBatch(1).setCtxSize(512).disableLog());
    }

    @AfterAll
    static void close() {
        if (peer != null) peer.close();
    }

    @Test
    void theSameTokensForTheSameText() throws Exception {
        GgufFile g = GgufFile.open(gguf);
        Tokenizer tok = Tokenizer.fromGguf(g, Llama2cModel.fromGguf(g).vocab);
        for (String text : new String[] {"Once upon a time", "Lily and Ben went to the park. They saw a big dog!", "\"Hello,\" said Tom. 42 cats?"}) {
            int[] ours = tok.start(text), theirs = peer.encode(text);
            // ours opens with BOS (1), which llama.cpp's tokenize leaves to the caller
            assertEquals(1, ours[0], text);
            assertArrayEquals(theirs, Arrays.copyOfRange(ours, 1, ours.length), "tokens of \"" + text + "\"");
        }
    }

    @Test
    void theSameGreedyContinuation() throws Exception {
        GgufFile g = GgufFile.open(gguf);
        Llama2cModel model = Llama2cModel.fromGguf(g);
        Tokenizer tok = Tokenizer.fromGguf(g, model.vocab);
        String prompt = "Once upon a time";
        int n = 64;
        String theirs = peer.complete(new InferenceParameters(prompt).setNPredict(n).setTemperature(0f).setIgnoreEos(true).setSeed(1));
        ByteArrayOutputStream ours = new ByteArrayOutputStream();
        try (PagePool pool = new PagePool(); LlamaEngine e = new LlamaEngine(model, LlamaEngine.fullCache(), pool, Matmul.scalar())) {
            int[] p = tok.start(prompt);
            int prev = p[p.length - 1], token = LlamaEngine.argmax(e.prefill(p, 0, p.length));
            for (int i = 0; i < n; i++) {
                ours.writeBytes(tok.decode(prev, token));
                prev = token;
                if (i + 1 < n) token = LlamaEngine.argmax(e.forward(token));
            }
        }
        String mine = ours.toString(StandardCharsets.UTF_8);
        assertTrue(theirs.length() > 100, "llama.cpp wrote " + theirs);
        assertEquals(theirs, mine, "greedy continuations of \"" + prompt + "\"");
    }
}
