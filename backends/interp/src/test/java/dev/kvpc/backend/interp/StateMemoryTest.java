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
 * Per-token state of every kind takes the bytes {@code kvpc memory} predicts for it: the runtime holds each element
 * in four bytes, a {@code bool} too (the model once counted a bool as one byte).
 */
class StateMemoryTest {
    static final String POLICY = """
            policy flags(budget: int = 64) {
                state hit: bool per token = false
                state score: f32 per token = 0
                state seen: i32 per token = 0
                on prefill, decode {
                    hit = pos > 10
                    score = hit ? float(pos) : 0.0
                    seen += 1
                }
                on overflow(budget) {
                    keep top(score + float(seen) * 0.001, budget)
                }
            }
            """;

    @Test
    void stateBytesOfEveryKindAreAsPredicted() {
        var shape = PassPreservationTest.SMALL;
        Frontend.Result fr = Frontend.checkText("flags.kvp", POLICY, null, shape);
        assertTrue(fr.ok(), fr.diagnostics().all().toString());
        Specialized s = Compilation.optimise(fr.program(), "flags", Map.of(), Pipeline.Options.DEFAULT, (a, b) -> { });
        assertEquals(3, s.classes().getFirst().states().size(), "every state is read, so kept");
        MemoryModel.Report predicted = MemoryModel.predict(s, 96, "f32");
        TraceShape ts = new TraceShape(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim());
        Trace t = TraceGenerator.generate(TraceGenerator.Options.of(ts).withSeed(3).withPrefill(96).withDecode(0)).trace();
        ModelSpec model = new ModelSpec(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim(), Precision.F32);
        try (PagePool pool = new PagePool(); Sequence seq = new KvRuntime(model, new InterpRunner(s), pool, 2).newSequence()) {
            dev.kvpc.runtime.trace.TraceFeed.feed(seq, t);
            for (int l = 0; l < shape.layers(); l++) {
                for (int h = 0; h < shape.kvHeads(); h++) {
                    assertEquals(64, seq.lane(l, h).size());
                    assertEquals(3L * 64 * 4, seq.memory()[l][h].state(), "measured: three states of four bytes per entry");
                    assertEquals(seq.memory()[l][h].state(), predicted.lanes()[l][h].stateBytes(), "layer " + l + " head " + h + ": state bytes");
                }
            }
        }
    }
}
