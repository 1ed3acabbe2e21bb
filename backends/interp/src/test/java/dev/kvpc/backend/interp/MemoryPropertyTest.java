package dev.kvpc.backend.interp;

import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.gen.ProgramGenerator;
import dev.kvpc.compiler.memory.MemoryModel;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.runtime.KvRuntime;
import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.Sequence;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.trace.Trace;
import dev.kvpc.runtime.trace.TraceGenerator;
import dev.kvpc.runtime.trace.TraceShape;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code kvpc memory} never lies: for random programs of the generator (every construct it writes), run by the
 * runtime on a random trace of a 96-token prompt and 16 decode steps, each lane's entries and bytes are at most the
 * prediction for that scenario, and equal to it where the prediction says it is exact. Lanes of a layer that
 * shares its selection are compared as the layer's total, as the prediction gives each lane its share. The bytes
 * measured include the per-lane states the runner keeps beside the lane ({@code PolicyRunner.laneStateBytes}).
 */
class MemoryPropertyTest {
    static final ModelShape SHAPE = ModelShape.parse("layers=2,heads=4,kv-heads=2,head-dim=32");
    static final int PROMPT = 96, DECODE = 16;

    /**
     * Runs {@code s} in the runtime on a random trace of the scenario and adds to {@code wrong} each lane (or layer)
     * the prediction does not hold for; returns {lanes compared, lanes predicted exactly}, or null when the
     * interpreter does not define the run (per-layer selection over ragged lanes).
     */
    static int[] compare(Specialized s, String name, long seed, List<String> wrong) {
        MemoryModel.Report predicted = MemoryModel.predict(s, PROMPT, PROMPT + DECODE, "f32");
        TraceShape ts = new TraceShape(SHAPE.layers(), SHAPE.heads(), SHAPE.kvHeads(), SHAPE.headDim());
        Trace t = TraceGenerator.generate(TraceGenerator.Options.of(ts).withSeed(seed).withPrefill(PROMPT).withDecode(DECODE)).trace();
        ModelSpec model = new ModelSpec(SHAPE.layers(), SHAPE.heads(), SHAPE.kvHeads(), SHAPE.headDim(), Precision.F32);
        int compared = 0, exact = 0;
        try (PagePool pool = new PagePool(); Sequence seq = new KvRuntime(model, new InterpRunner(s), pool, 2).newSequence()) {
            try {
                dev.kvpc.runtime.trace.TraceFeed.feed(seq, t);
            } catch (InterpreterException e) {
                return null;
            }
            Lane.LaneBytes[][] m = seq.memory();
            for (int l = 0; l < SHAPE.layers(); l++) {
                for (int h = 0; h < SHAPE.kvHeads(); h++) {
                    MemoryModel.LaneMemory pl = predicted.lanes()[l][h];
                    long gotEntries = seq.lane(l, h).size(), gotBytes = m[l][h].total();
                    long wantEntries = pl.entries(), wantBytes = pl.steadyBytes();
                    String where = name + " layer " + l + " head " + h;
                    if (pl.sharedInLayer()) {
                        if (h > 0) continue;
                        gotEntries = 0;
                        gotBytes = 0;
                        wantEntries = 0;
                        wantBytes = 0;
                        for (int x = 0; x < SHAPE.kvHeads(); x++) {
                            gotEntries += seq.lane(l, x).size();
                            gotBytes += m[l][x].total();
                            wantEntries += predicted.lanes()[l][x].entries();
                            wantBytes += predicted.lanes()[l][x].steadyBytes();
                        }
                        where = name + " layer " + l;
                    }
                    compared++;
                    if (pl.exact()) exact++;
                    String figures = ": entries " + gotEntries + " (predicted " + wantEntries + "), bytes " + gotBytes + " (predicted " + wantBytes + ")";
                    if (gotEntries > wantEntries || gotBytes > wantBytes) wrong.add(where + " is over the prediction" + figures);
                    else if (pl.entriesExact() && gotEntries != wantEntries) wrong.add(where + " has other entries than the exact prediction" + figures);
                    else if (pl.exact() && gotBytes != wantBytes) wrong.add(where + " has other bytes than the exact prediction" + figures);
                }
            }
        }
        return new int[] {compared, exact};
    }

    @Test
    void predictionsBoundTheRuntimeAndAreExactWhereTheySaySo() {
        int seeds = Integer.getInteger("kvpc.mem.seeds", 200);
        List<String> wrong = new ArrayList<>(), notRun = new ArrayList<>();
        int ran = 0, compared = 0, exact = 0;
        for (int seed = 0; seed < seeds; seed++) {
            String text = ProgramGenerator.generate(seed, 40);
            Frontend.Result r = Frontend.checkText("gen_" + seed + ".kvp", text, ProgramGenerator.tables(SHAPE), SHAPE);
            if (!r.ok()) {
                notRun.add(seed + ": " + r.diagnostics().all().getFirst().code());
                continue;
            }
            Specialized s = Compilation.optimise(r.program(), "gen_" + seed, Map.of(), Pipeline.Options.DEFAULT, (a, b) -> { });
            int[] c = compare(s, "gen_" + seed, seed, wrong);
            if (c == null) {
                notRun.add(seed + ": per-layer selection over ragged lanes");
                continue;
            }
            ran++;
            compared += c[0];
            exact += c[1];
        }
        System.out.println("memory property: " + ran + " programs, " + compared + " lanes or layers compared, " + exact + " predicted exactly; not run: " + notRun);
        assertEquals(List.of(), wrong, "predictions that the runtime contradicts");
        assertTrue(ran >= seeds * 3 / 4, "only " + ran + " of " + seeds + " generated programs ran: " + notRun);
        assertTrue(exact >= compared / 5, "only " + exact + " of " + compared + " predictions are exact: the bounds have taken over");
    }

    /**
     * The three defects the memory model once had, each as a program whose prediction is exact: a keep in each branch
     * of an {@code if} (the model once ignored it and predicted the full cache), a prompt's store (once applied to the
     * entries decoded after it too) and a bool per-token state (once counted as 1 byte, where the runtime holds 4).
     */
    @Test
    void pastDefectsWouldBeCaught() {
        Map<String, String> programs = new java.util.LinkedHashMap<>();
        programs.put("keep_in_if", """
                policy keep_in_if(budget: int = 32) {
                    state acc: f32 per token = 0
                    on prefill, decode { acc += sum(attn, over: query, group) }
                    on overflow(budget) {
                        if mean(acc, over: token) > 0.5 { keep last(budget) } else { keep first(1) + last(budget - 1) }
                    }
                }
                """);
        programs.put("prompt_store", """
                policy prompt_store() {
                    on prefill { store keys, values as int4 per token }
                }
                """);
        programs.put("flags", """
                policy flags(budget: int = 40) {
                    state recent: bool per token = false
                    on prefill, decode { recent = age < 8 }
                    on decode { attend last(4) + where(recent) }
                    on overflow(budget) { keep last(budget) }
                }
                """);
        List<String> wrong = new ArrayList<>();
        for (var e : programs.entrySet()) {
            Frontend.Result r = Frontend.checkText(e.getKey() + ".kvp", e.getValue(), null, SHAPE);
            assertTrue(r.ok(), e.getKey() + ": " + r.diagnostics().all());
            Specialized s = Compilation.optimise(r.program(), e.getKey(), Map.of(), Pipeline.Options.DEFAULT, (a, b) -> { });
            MemoryModel.Report predicted = MemoryModel.predict(s, PROMPT, PROMPT + DECODE, "f32");
            assertTrue(predicted.exact(), e.getKey() + " is predicted exactly");
            int[] c = compare(s, e.getKey(), 5, wrong);
            assertTrue(c != null && c[0] > 0, e.getKey() + " ran");
        }
        assertEquals(List.of(), wrong, "predictions that the runtime contradicts");
    }

    /**
     * A per-page state is held for the regular entries: the compensation entry a merge adds is in no page. Predicted
     * with the compensation entry counted, a lane of 8 full pages and the compensation entry was said to hold 9 pages
     * exactly (a generated program found it).
     */
    @Test
    void pageStatesCoverTheRegularEntries() {
        Frontend.Result r = Frontend.checkText("paged.kvp", """
                policy paged() {
                    state kmin: f32[channel] per page(4) = min(k, over: token)
                    on decode {
                        attend pages(top(max(sum(q * kmin, over: channel), over: query, group), 2)) + last(4)
                        merge first(1) into compensation
                    }
                }
                """, null, SHAPE);
        assertTrue(r.ok(), r.diagnostics().all().toString());
        Specialized s = Compilation.optimise(r.program(), "paged", Map.of(), Pipeline.Options.DEFAULT, (a, b) -> { });
        List<String> wrong = new ArrayList<>();
        int[] c = compare(s, "paged", 5, wrong);
        assertTrue(c != null && c[0] > 0, "ran");
        assertEquals(List.of(), wrong, "predictions that the runtime contradicts");
    }
}
