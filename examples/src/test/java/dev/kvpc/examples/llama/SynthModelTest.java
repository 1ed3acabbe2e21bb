package dev.kvpc.examples.llama;

import de.kherud.llama.InferenceParameters;
import de.kherud.llama.LlamaModel;
import de.kherud.llama.ModelParameters;
import dev.kvpc.runtime.pool.PagePool;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@link SynthModel}: smollm-135m's shape with one block of Q4_0 weights loads in kvpc's engine with the shape's
 * dimensions and vocabulary, decodes, and loads and decodes in llama.cpp; its size is the one predicted; a weight type
 * whose blocks do not divide the shape's rows is refused.
 */
class SynthModelTest {
    @Test
    void aSynthesisedModelLoadsInBothEngines(@TempDir Path tmp) throws Exception {
        SynthModel.Shape s = SynthModel.SHAPES.get("smollm-135m");
        Path file = tmp.resolve("smollm.gguf");
        long[] progress = {0};
        SynthModel.write(s, 1, GgufFile.TensorType.Q4_0, 7, file, done -> progress[0] = done);
        long data = SynthModel.dataBytes(s, 1, GgufFile.TensorType.Q4_0);
        assertEquals(data, progress[0], "progress ends at the predicted tensor bytes");
        long size = Files.size(file);
        assertTrue(size > data && size < data + (4 << 20), "file of " + size + " bytes for " + data + " bytes of tensors and a header");

        GgufFile g = GgufFile.open(file);
        Llama2cModel m = Llama2cModel.fromGguf(g);
        assertEquals(576, m.dim);
        assertEquals(1536, m.hidden);
        assertEquals(1, m.layers);
        assertEquals(9, m.heads);
        assertEquals(3, m.kvHeads);
        assertEquals(49152, m.vocab);
        assertEquals(GgufFile.TensorType.Q4_0, m.wq[0].type());
        Tokenizer tok = Tokenizer.fromGguf(g, m.vocab);
        int[] p = tok.start("once upon a time");
        assertTrue(p.length > 2, "the vocabulary encodes text");
        try (PagePool pool = new PagePool(); LlamaEngine e = new LlamaEngine(m, LlamaEngine.fullCache(), pool, Matmul.vector())) {
            float[] logits = e.prefill(p, 0, p.length);
            for (int i = 0; i < 4; i++) {
                for (float l : logits) assertTrue(Float.isFinite(l));
                logits = e.forward(LlamaEngine.argmax(logits));
            }
        }
        try (LlamaModel peer = new LlamaModel(new ModelParameters().setModel(file.toString()).setThreads(1).setCtxSize(128).disableLog())) {
            assertEquals(p.length - 1, peer.encode("once upon a time").length, "llama.cpp reads the same vocabulary");
            String text = peer.complete(new InferenceParameters("once upon a time").setNPredict(4).setTemperature(0f).setIgnoreEos(true));
            assertNotNull(text);
        }
    }

    @Test
    void kQuantsNeedRowsOfWholeBlocks(@TempDir Path tmp) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SynthModel.write(SynthModel.SHAPES.get("smollm-135m"), 1, GgufFile.TensorType.Q4_K, 0, tmp.resolve("x.gguf"), d -> { }));
        assertTrue(e.getMessage().contains("576") && e.getMessage().contains("Q4_K"), e.getMessage());
    }
}
