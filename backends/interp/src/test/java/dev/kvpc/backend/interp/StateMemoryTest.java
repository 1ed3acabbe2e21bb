package dev.kvpc.backend.interp;

import dev.kvpc.compiler.memory.MemoryModel;
import dev.kvpc.ir.Specialized;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;



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
        Specialized s = PolicyText.optimise("flags", POLICY);
        assertEquals(3, s.classes().getFirst().states().size(), "every state is read, so kept");
        MemoryModel.Report predicted = MemoryModel.predict(s, 96, "f32");
        PolicyText.runOnLanes(new InterpRunner(s), PolicyText.trace(3, 96, 0), null, seq -> {
            var shape = PassPreservationTest.SMALL;
            for (int l = 0; l < shape.layers(); l++) {
                for (int h = 0; h < shape.kvHeads(); h++) {
                    assertEquals(64, seq.lane(l, h).size());
                    assertEquals(3L * 64 * 4, seq.memory()[l][h].state(), "measured: three states of four bytes per entry");
                    assertEquals(seq.memory()[l][h].state(), predicted.lanes()[l][h].stateBytes(), "layer " + l + " head " + h + ": state bytes");
                }
            }
        });
    }
}
