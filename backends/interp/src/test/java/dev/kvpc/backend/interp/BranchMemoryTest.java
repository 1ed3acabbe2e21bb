package dev.kvpc.backend.interp;

import dev.kvpc.compiler.memory.MemoryModel;
import dev.kvpc.ir.Specialized;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;



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
        Specialized s = PolicyText.optimise("promptq", PROMPT_STORE);
        int prompt = 96, decode = 40;
        MemoryModel.Report predicted = MemoryModel.predict(s, prompt, prompt + decode, "f32");
        PolicyText.runOnLanes(new InterpRunner(s), PolicyText.trace(6, prompt, decode), null, seq -> {
            forEachLane((l, h) -> {
                assertEquals(prompt + decode, seq.lane(l, h).size());
                var m = seq.memory()[l][h];
                MemoryModel.LaneMemory pl = predicted.lanes()[l][h];
                assertEquals(m.kv() + m.scales(), pl.kvBytes() + pl.scaleBytes(), "layer " + l + " head " + h + ": key and value bytes");
            });
        });
    }

    @Test
    void aKeepInABranchCounts() {
        Specialized s = PolicyText.optimise("branchy", POLICY);
        MemoryModel.Report predicted = MemoryModel.predict(s, 96 + 8, "f32");
        PolicyText.runOnLanes(new InterpRunner(s), PolicyText.trace(5, 96, 8), null, seq -> {
            forEachLane((l, h) -> {
                assertEquals(24, seq.lane(l, h).size());
                MemoryModel.LaneMemory pl = predicted.lanes()[l][h];
                assertEquals(24, pl.entries(), "layer " + l + " head " + h + ": predicted entries");
                assertEquals(seq.memory()[l][h].total(), pl.steadyBytes(), "layer " + l + " head " + h + ": bytes");
            });
        });
    }

    private static void forEachLane(java.util.function.BiConsumer<Integer, Integer> check) {
        var shape = PassPreservationTest.SMALL;
        for (int l = 0; l < shape.layers(); l++) for (int h = 0; h < shape.kvHeads(); h++) check.accept(l, h);
    }
}
