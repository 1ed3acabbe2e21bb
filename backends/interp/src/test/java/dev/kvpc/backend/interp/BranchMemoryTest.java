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
 * ignored it and predicted the full cache. Both branches keep the budget, so prediction and measure agree exactly.
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
