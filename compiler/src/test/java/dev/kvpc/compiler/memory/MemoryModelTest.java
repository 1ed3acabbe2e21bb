package dev.kvpc.compiler.memory;

import dev.kvpc.compiler.Corpus;
import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.ir.pass.Pipeline;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * kvpc memory against hand computation, on a Llama-3-8B shape (32 layers, 32 query heads, 8 KV heads, head dim
 * 128), f16 keys and values, a 4096-token prompt. One entry of one lane: 2 x 128 x 2 B = 512 B.
 */
class MemoryModelTest {
    private static final ModelShape LLAMA3 = ModelShape.parse("llama3-8b");
    private static final long LANES = 32 * 8;
    private static final long FULL = 4096L * 512 * LANES; // 512 MiB

    private static MemoryModel.Report predict(String policy) {
        Frontend.Result r = Frontend.check(Corpus.root().resolve("stdlib-policies/" + policy + ".kvp"), LLAMA3);
        var s = Compilation.optimise(r.program(), Compilation.defaultRoot(r.program()), Map.of(), Pipeline.Options.DEFAULT, (p, x) -> { });
        return MemoryModel.predict(s, 4096, "f16");
    }

    @Test
    void h2o() {
        // budget 512: 512 entries of 512 B, plus the f32 accumulator per entry
        var rep = predict("h2o");
        var lane = rep.lanes()[7][3];
        assertEquals(512, lane.entries());
        assertEquals(512L * 512, lane.kvBytes());
        assertEquals(0, lane.scaleBytes());
        assertEquals(512L * 4, lane.stateBytes());
        assertEquals((512L * 512 + 2048) * LANES, rep.totalSteady());
        assertEquals(FULL, rep.totalFull());
        assertEquals(0.1259765625, rep.ratioToFull(), 1e-12);
    }

    @Test
    void kivi() {
        // keys: int2 per channel in groups of 32 tokens, values: int2 per token in groups of 32 channels,
        // the last 128 entries in f16. 4096 - 128 = 3968 quantised entries (124 full groups of 32).
        var rep = predict("kivi");
        var lane = rep.lanes()[0][0];
        long packed = 3968L * 128 * 2 / 8;            // 126,976 B per part
        long residual = 128L * 128 * 2;               // 32,768 B per part
        assertEquals(2 * (packed + residual), lane.kvBytes());
        long keyScales = (3968L / 32) * 128 * 4;      // a scale+zero (f16 x 2) per channel per group of 32 tokens
        long valueScales = 3968L * (128 / 32) * 4;    // a scale+zero per group of 32 channels per token
        assertEquals(keyScales + valueScales, lane.scaleBytes());
        assertEquals(0, lane.stateBytes());
        assertEquals((2 * (packed + residual) + keyScales + valueScales) * LANES, rep.totalSteady());
        assertEquals(446464.0 * LANES / FULL, rep.ratioToFull(), 1e-12);
    }

    @Test
    void adakv() {
        // a layer keeps heads x (budget - window) = 8 x 992 selected entries shared among its 8 lanes, each lane
        // with at least a floor, plus its own window of 32: 992 + 32 = 1024 entries per lane on average
        var rep = predict("adakv");
        var lane = rep.lanes()[31][7];
        assertEquals(1024, lane.entries());
        assertEquals(1024L * 512, lane.kvBytes());
        assertEquals(0.25, rep.ratioToFull(), 1e-12);
    }

    @Test
    void fullCacheIsTheReference() {
        var rep = predict("full");
        assertEquals(FULL, rep.totalSteady());
        assertEquals(1.0, rep.ratioToFull(), 0);
    }
}
