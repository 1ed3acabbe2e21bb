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
        return MemoryModel.predict(specialise(policy), 4096, "f16");
    }

    private static dev.kvpc.ir.Specialized specialise(String policy) {
        Frontend.Result r = Frontend.check(Corpus.root().resolve("stdlib-policies/" + policy + ".kvp"), LLAMA3);
        return Compilation.optimise(r.program(), Compilation.defaultRoot(r.program()), Map.of(), Pipeline.Options.DEFAULT, (p, x) -> { });
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

    @Test
    void promptThenDecode() {
        // a 512-token prompt, then 3584 decoded tokens: 4096 in all
        // SnapKV (budget 1024) acts at prefill only: the prompt fits its budget, and every decoded token is kept
        var snap = MemoryModel.predict(specialise("snapkv"), 512, 4096, "f16");
        assertEquals(4096, snap.lanes()[0][0].entries());
        assertEquals(FULL, snap.totalSteady());
        // a 2048-token prompt is compressed to 1024 entries, then 2048 decoded tokens are added
        var longPrompt = MemoryModel.predict(specialise("snapkv"), 2048, 4096, "f16");
        assertEquals(1024 + 2048, longPrompt.lanes()[0][0].entries());
        // H2O's overflow handler runs after every decoded token: 512 entries whatever the prompt
        assertEquals(512, MemoryModel.predict(specialise("h2o"), 100, 4096, "f16").lanes()[3][1].entries());
        // a prompt shorter than the budget and no decode: nothing to evict
        assertEquals(100, MemoryModel.predict(specialise("h2o"), 100, 100, "f16").lanes()[3][1].entries());
        // the full cache holds the whole context
        assertEquals(FULL, MemoryModel.predict(specialise("full"), 512, 4096, "f16").totalSteady());
        // the whole context as the prompt is the one-argument scenario
        assertEquals(predict("snapkv").totalSteady(), MemoryModel.predict(specialise("snapkv"), 4096, 4096, "f16").totalSteady());
        assertEquals(1024, predict("snapkv").lanes()[0][0].entries());
    }

    private static MemoryModel.Report predictText(String text) {
        Frontend.Result r = Frontend.checkText("shares.kvp", text, null, LLAMA3);
        org.junit.jupiter.api.Assertions.assertTrue(r.ok(), r.diagnostics().all().toString());
        var s = Compilation.optimise(r.program(), Compilation.defaultRoot(r.program()), Map.of(), Pipeline.Options.DEFAULT, (p, x) -> { });
        return MemoryModel.predict(s, 4096, "f16");
    }

    @Test
    void sharesOfATotalBoundTheModel() {
        // each lane at most 64 + its share of 8192 entries: 8256 > 4096, so a lane is bounded by the prompt. The
        // shares of the 32 layer cells add up to at most 8192, each held by the layer's 8 KV heads: the model holds at
        // most 256 lanes x 64 + 8 x 8192 entries of 512 B
        var layers = predictText("""
                policy shares() {
                    state w: f32[layer] per model
                    on prefill { w = float(layer) }
                    on overflow(share(8192, w) + 64) { keep last(share(8192, w) + 64) }
                }
                """);
        assertEquals(4096, layers.lanes()[5][2].entries());
        assertEquals(false, layers.lanes()[5][2].entriesExact());
        assertEquals((LANES * 64 + 8 * 8192) * 512, layers.shareCap());
        assertEquals(layers.shareCap(), layers.totalSteady());
        // one cell per lane: each lane's share held by that lane alone
        var lanes = predictText("""
                policy shares() {
                    state w: f32[layer, head] per model
                    on prefill { w = float(layer + head) }
                    on overflow(share(8192, w) + 64) { keep last(share(8192, w) + 64) }
                }
                """);
        assertEquals((LANES * 64 + 8192) * 512, lanes.totalSteady());
        // a limit that is not a share plus a fixed part bounds nothing beyond the lanes: max(share, 100) can add 100
        // to every lane whatever the shares
        var other = predictText("""
                policy shares() {
                    state w: f32[layer] per model
                    on prefill { w = float(layer) }
                    on overflow(max(share(8192, w), 100)) { keep last(max(share(8192, w), 100)) }
                }
                """);
        assertEquals(-1, other.shareCap());
        assertEquals(FULL, other.totalSteady());
    }

    @Test
    void rowChainsTakeWholePages() {
        // 500 entries in pages of 8: keys and values each in 63 pages, 504 rows of 256 B; the accumulator is a column of
        // 500 floats, not paged. With pages of one entry, the entries' own bytes.
        Frontend.Result r = Frontend.checkText("odd.kvp", """
                policy odd() {
                    state acc: f32 per token = 0
                    on prefill, decode { acc += sum(attn, over: query, group) }
                    on overflow(500) { keep top(acc, 500) }
                }
                """, null, LLAMA3);
        org.junit.jupiter.api.Assertions.assertTrue(r.ok(), r.diagnostics().all().toString());
        var s = Compilation.optimise(r.program(), "odd", Map.of(), Pipeline.Options.DEFAULT, (p, x) -> { });
        var paged = MemoryModel.predict(s, 4096, 4096, "f16", 8).lanes()[0][0];
        assertEquals(500, paged.entries());
        assertEquals(504L * 512, paged.kvBytes());
        assertEquals(500L * 4, paged.stateBytes());
        assertEquals(7L * 512, paged.pageSlack());
        assertEquals(500L * 512, MemoryModel.predict(s, 4096, 4096, "f16").lanes()[0][0].kvBytes());
        // the full cache of 4095 entries: 512 pages of 8
        assertEquals(4096L * 512, MemoryModel.predict(s, 4095, 4095, "f16", 8).fullBytesPerLane());
    }
}
