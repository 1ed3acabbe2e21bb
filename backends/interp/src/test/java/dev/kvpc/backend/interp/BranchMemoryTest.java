package dev.kvpc.backend.interp;

import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.memory.MemoryModel;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.runtime.KvRuntime;
import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.Sequence;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.trace.Trace;
import dev.kvpc.runtime.trace.TraceGenerator;
import dev.kvpc.runtime.trace.TraceShape;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A keep inside a data-dependent {@code if} of an overflow handler counts in {@code kvpc memory}: the model once
 * ignored it and predicted the full cache. Both branches keep the budget, so prediction and measure agree exactly. And
 * a store of the prefill's handler covers the prompt only.
 */
class BranchMemoryTest {
    static final String POLICY = """
            policy branchy(budget: int = 24) {
                state acc: f32 per token = 0
                on prefill, decode { acc += sum(attn, over: query, group) }
                on overflow(budget) {
                    if len > budget + 1 {
                        keep top(acc, budget)
                    } else {
                        keep last(budget)
                    }
                }
            }
            """;

    static final String PROMPT_STORE = """
            policy promptq() {
                on prefill {
                    store keys as int(4) per token group(16) except last(16)
                    store values as int(8) per token group(16) except last(16)
                }
            }
            """;

    /** A store of the prefill's handler covers the prompt's entries, not those decoded after it (once +46.6%). */
    @Test
    void aPrefillStoreCoversThePromptOnly() {
        var shape = PassPreservationTest.SMALL;
        Frontend.Result fr = Frontend.checkText("promptq.kvp", PROMPT_STORE, null, shape);
        assertTrue(fr.ok(), fr.diagnostics().all().toString());
        Specialized s = Compilation.optimise(fr.program(), "promptq", Map.of(), Pipeline.Options.DEFAULT, (a, b) -> { });
        int prompt = 96, decode = 40;
        MemoryModel.Report predicted = MemoryModel.predict(s, prompt, prompt + decode, "f32");
        TraceShape ts = new TraceShape(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim());
        Trace t = TraceGenerator.generate(TraceGenerator.Options.of(ts).withSeed(6).withPrefill(prompt).withDecode(decode)).trace();
        ModelSpec model = new ModelSpec(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim(), Precision.F32);
        try (PagePool pool = new PagePool(); Sequence seq = new KvRuntime(model, new InterpRunner(s), pool, 2).newSequence()) {
            dev.kvpc.runtime.trace.TraceFeed.feed(seq, t);
            for (int l = 0; l < shape.layers(); l++) {
                for (int h = 0; h < shape.kvHeads(); h++) {
                    assertEquals(prompt + decode, seq.lane(l, h).size());
                    var m = seq.memory()[l][h];
                    MemoryModel.LaneMemory pl = predicted.lanes()[l][h];
                    assertEquals(m.kv() + m.scales(), pl.kvBytes() + pl.scaleBytes(), "layer " + l + " head " + h + ": key and value bytes");
                }
            }
        }
    }

    @Test
    void aKeepInABranchCounts() {
        var shape = PassPreservationTest.SMALL;
        Frontend.Result fr = Frontend.checkText("branchy.kvp", POLICY, null, shape);
        assertTrue(fr.ok(), fr.diagnostics().all().toString());
        Specialized s = Compilation.optimise(fr.program(), "branchy", Map.of(), Pipeline.Options.DEFAULT, (a, b) -> { });
        int context = 96 + 8;
        MemoryModel.Report predicted = MemoryModel.predict(s, context, "f32");
        TraceShape ts = new TraceShape(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim());
        Trace t = TraceGenerator.generate(TraceGenerator.Options.of(ts).withSeed(5).withPrefill(96).withDecode(8)).trace();
        ModelSpec model = new ModelSpec(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim(), Precision.F32);
        try (PagePool pool = new PagePool(); Sequence seq = new KvRuntime(model, new InterpRunner(s), pool, 2).newSequence()) {
            dev.kvpc.runtime.trace.TraceFeed.feed(seq, t);
            for (int l = 0; l < shape.layers(); l++) {
                for (int h = 0; h < shape.kvHeads(); h++) {
                    assertEquals(24, seq.lane(l, h).size());
                    MemoryModel.LaneMemory pl = predicted.lanes()[l][h];
                    assertEquals(24, pl.entries(), "layer " + l + " head " + h + ": predicted entries");
                    assertEquals(seq.memory()[l][h].total(), pl.steadyBytes(), "layer " + l + " head " + h + ": bytes");
                }
            }
        }
    }
}
