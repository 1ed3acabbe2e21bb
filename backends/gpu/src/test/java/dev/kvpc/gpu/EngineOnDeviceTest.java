package dev.kvpc.gpu;

import dev.kvpc.examples.llama.GgufFile;
import dev.kvpc.examples.llama.Llama2cModel;
import dev.kvpc.examples.llama.LlamaEngine;
import dev.kvpc.examples.llama.Matmul;
import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.gpu.kernels.ClMatmul;
import dev.kvpc.runtime.pool.PagePool;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The engine's arithmetic on the device with its activations kept there ({@link ClMatmul#resident}): kvpc-tiny's
 * logits over a 12-token prefill and 40 greedy decode steps equal the CPU engine's (llama2.c's order) within 1e-4 of
 * the largest, with the same greedy tokens, while activations cross only where the host reads or writes them.
 */
class EngineOnDeviceTest {
    @Test
    void residentForwardGivesTheCpusLogits() throws Exception {
        Path root = Path.of("").toAbsolutePath();
        while (root != null && !Files.isDirectory(root.resolve("stdlib-policies"))) root = root.getParent();
        assertNotNull(root, "the project root");
        Llama2cModel model = Llama2cModel.fromGguf(GgufFile.open(root.resolve("models/kvpc-tiny/kvpc-tiny.gguf")));
        int[] prompt = {1, 17, 42, 5, 99, 23, 7, 64, 3, 88, 12, 30};
        try (ClContext cl = Devices.context(); PagePool p1 = new PagePool(); PagePool p2 = new PagePool();
             LlamaEngine cpu = new LlamaEngine(model, LlamaEngine.fullCache(), p1, Matmul.scalar());
             LlamaEngine dev = new LlamaEngine(model, LlamaEngine.fullCache(), p2, ClMatmul.resident(cl))) {
            float[] a = cpu.prefill(prompt, 0, prompt.length).clone(), b = dev.prefill(prompt, 0, prompt.length).clone();
            for (int step = 0; step < 40; step++) {
                close(a, b, "step " + step);
                int ta = LlamaEngine.argmax(a), tb = LlamaEngine.argmax(b);
                assertEquals(ta, tb, "greedy token at step " + step);
                a = cpu.forward(ta).clone();
                b = dev.forward(tb).clone();
            }
        }
    }

    @Test
    void activationsCrossOnlyWhereTheHostNeedsThem() throws Exception {
        Path root = Path.of("").toAbsolutePath();
        while (root != null && !Files.isDirectory(root.resolve("stdlib-policies"))) root = root.getParent();
        Llama2cModel model = Llama2cModel.fromGguf(GgufFile.open(root.resolve("models/kvpc-tiny/kvpc-tiny.gguf")));
        try (ClContext cl = Devices.context(); PagePool pool = new PagePool()) {
            ClMatmul mm = ClMatmul.resident(cl);
            try (LlamaEngine e = new LlamaEngine(model, LlamaEngine.fullCache(), pool, mm)) {
                e.forward(1);
                long before = mm.transfers(), products = mm.calls();
                e.forward(2);
                long perStep = mm.transfers() - before, productsPerStep = mm.calls() - products;
                // per layer: q, k, v back and the attention output there; the embedding there and the logits back
                assertEquals(4L * model.layers + 2, perStep, "transfers in a decode step");
                assertEquals(7L * model.layers + 1, productsPerStep, "products in a decode step");
            }
        }
    }

    @Test
    void queriesKeysValuesAndOutputsStayWhereTheLanesAre() throws Exception {
        Path root = Path.of("").toAbsolutePath();
        while (root != null && !Files.isDirectory(root.resolve("stdlib-policies"))) root = root.getParent();
        Llama2cModel model = Llama2cModel.fromGguf(GgufFile.open(root.resolve("models/kvpc-tiny/kvpc-tiny.gguf")));
        int[] prompt = {1, 17, 42, 5, 99, 23, 7, 64, 3, 88, 12, 30};
        // attention on the device too, in the engine's context: the keys and values it computes are appended there
        try (ClContext cl = Devices.context(); PagePool p1 = new PagePool(); PagePool p2 = new PagePool();
             dev.kvpc.gpu.kernels.OpenClDecodeKernels kernels = new dev.kvpc.gpu.kernels.OpenClDecodeKernels(cl);
             LlamaEngine cpu = new LlamaEngine(model, LlamaEngine.fullCache(), p1, Matmul.scalar());
             LlamaEngine dev = new LlamaEngine(model, LlamaEngine.fullCache(), p2, ClMatmul.resident(cl), kernels)) {
            ClMatmul mm = (ClMatmul) dev.matmul();
            float[] a = cpu.prefill(prompt, 0, prompt.length).clone(), b = dev.prefill(prompt, 0, prompt.length).clone();
            for (int step = 0; step < 40; step++) {
                close(a, b, "step " + step);
                int ta = LlamaEngine.argmax(a), tb = LlamaEngine.argmax(b);
                assertEquals(ta, tb, "greedy token at step " + step);
                long before = mm.transfers(), rows = kernels.rowWriter().rowsWritten();
                a = cpu.forward(ta).clone();
                b = dev.forward(tb).clone();
                // the embedding there and the logits back: queries, keys, values and outputs stay on the device
                assertEquals(2L, mm.transfers() - before, "transfers in decode step " + step);
                assertEquals(2L * model.layers * model.kvHeads, kernels.rowWriter().rowsWritten() - rows, "rows appended on the device");
            }
        }
    }

    static void close(float[] a, float[] b, String what) {
        float max = 0;
        for (float v : a) max = Math.max(max, Math.abs(v));
        for (int i = 0; i < a.length; i++) {
            assertEquals(a[i], b[i], 1e-4f * max, what + ": logit " + i);
        }
    }
}
