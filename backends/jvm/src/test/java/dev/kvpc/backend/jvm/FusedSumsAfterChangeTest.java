package dev.kvpc.backend.jvm;

import dev.kvpc.backend.interp.Interpreter;
import dev.kvpc.backend.interp.PassPreservationTest;
import dev.kvpc.backend.interp.Result;
import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.runtime.KvRuntime;
import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.Sequence;
import dev.kvpc.runtime.exec.NativeRunner;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.trace.Trace;
import dev.kvpc.runtime.trace.TraceFeed;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The kernel's column sums read after the entries changed in the same event: the runtime re-indexes them through
 * what happened since attention (two evictions; an eviction, a merge and an eviction), so every entry's accumulated attention is
 * the interpreter's (to float rounding), step by step.
 */
class FusedSumsAfterChangeTest {
    static final String EVICTING = """
            policy late(budget: int = 20) {
                state acc: f32 per token = 0
                on decode {
                    keep all - first(1) + last(1)
                    keep all - last(3) + last(1)
                    acc += sum(attn, over: query, group)
                }
                on overflow(budget) {
                    keep last(4) + top(acc within all - last(4), budget - 4)
                }
            }
            """;

    static final String MERGING = """
            policy late_merge(budget: int = 20) {
                state acc: f32 per token = 0
                on decode {
                    keep all - first(1) + last(1)
                    merge first(2) into compensation
                    keep all - first(2) + last(1)
                    acc += sum(attn, over: query, group)
                }
                on overflow(budget) {
                    keep last(4) + top(acc within all - last(4), budget - 4)
                }
            }
            """;

    @Test
    void sumsReadAfterEvictionsAndMergesAreTheInterpreters() {
        for (String[] p : new String[][] {{"late", EVICTING}, {"late_merge", MERGING}}) {
            Frontend.Result fr = Frontend.checkText(p[0] + ".kvp", p[1], null, PassPreservationTest.SMALL);
            assertTrue(fr.ok(), fr.diagnostics().all().toString());
            Specialized s = Compilation.optimise(fr.program(), p[0], Map.of(), Pipeline.Options.DEFAULT, (a, b) -> { });
            assertTrue(NativeRunner.fusable(s.classes().getFirst()), "the policy reads attention only as column sums");
            var classes = JvmPolicies.compile(s, p[0] + ".kvp").define();
            for (Trace t : PassPreservationTest.traces()) sameAccumulation(s, t, p[0], new NativeRunner(s, classes, null, true));
        }
    }

    private static void sameAccumulation(Specialized s, Trace t, String name, NativeRunner runner) {
        Result want = Interpreter.run(s, t);
        var shape = s.shape();
        ModelSpec model = new ModelSpec(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim(), Precision.F32, null);
        int[] compared = {0};
        try (PagePool pool = new PagePool()) {
            try (Sequence seq = new KvRuntime(model, runner, pool, 8).newSequence()) {
                TraceFeed.feed(seq, t, (si, l, out) -> {
                    for (int kv = 0; kv < shape.kvHeads(); kv++) {
                        Result.Lane expected = want.steps().get(si).lanes()[l][kv];
                        Lane lane = seq.lane(l, kv);
                        String where = name + " step " + si + " layer " + l + " head " + kv;
                        int[] got = new int[lane.size()];
                        for (int i = 0; i < got.length; i++) got[i] = lane.position(i);
                        assertArrayEquals(expected.positions(), got, where + ": kept positions");
                        double[] acc = expected.states().get("acc");
                        if (acc == null || acc.length == 0 || !"decode".equals(want.steps().get(si).event())) continue;
                        float[] column = lane.state("acc");
                        for (int i = 0; i < lane.size(); i++) {
                            if (lane.isCompensation(i)) continue;
                            assertEquals(acc[i], column[i], 1e-4 * (1 + Math.abs(acc[i])), where + ": acc of entry " + i);
                            compared[0]++;
                        }
                    }
                });
            }
        }
        assertTrue(compared[0] > 100, name + ": accumulations compared (" + compared[0] + ")");
    }
}
