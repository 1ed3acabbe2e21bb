package dev.kvpc.backend.interp;

import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
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
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Measured memory (the runtime's lanes after a prompt) against kvpc memory's prediction for the same scenario, for
 * every stdlib policy at two shapes, the second in the runtime's default pages: within 5%, with the entry counts exact.
 */
class MeasuredMemoryTest {
    @TestFactory
    Stream<DynamicTest> measuredMatchesPredicted() throws Exception {
        List<DynamicTest> tests = new ArrayList<>();
        // the second shape with the runtime's default pages (8 entries each), so that chains take whole pages
        for (String shapeText : List.of("layers=2,heads=4,kv-heads=2,head-dim=32", "layers=3,heads=8,kv-heads=2,head-dim=64")) {
            int rows = shapeText.startsWith("layers=3") ? KvRuntime.DEFAULT_ROWS_PER_PAGE : 2;
            ModelShape shape = ModelShape.parse(shapeText);
            Path dir = java.nio.file.Files.createTempDirectory("kvpc-mem");
            PassPreservationTest.stdlib = dir;
            List<Path> programs = PassPreservationTest.programs();
            java.nio.file.Files.writeString(dir.resolve("duo_gates.tsv"), table(shape, 0.9, 0.1));
            java.nio.file.Files.writeString(dir.resolve("razor_heads.tsv"), table(shape, 0, 1.5));
            java.nio.file.Files.writeString(dir.resolve("ds_channels.tsv"), PassPreservationTest.channelMarks(shape));
            for (Path p : programs) {
                Frontend.Result r = Frontend.check(p, shape);
                assertTrue(r.ok(), p + " for " + shapeText + ": " + r.diagnostics().all());
                String root = Compilation.defaultRoot(r.program());
                if (root == null) continue;
                Map<String, Object> params = PassPreservationTest.SMALL_BUDGETS.getOrDefault(root, Map.of());
                tests.add(DynamicTest.dynamicTest(root + " at " + shapeText + ", " + rows + " rows a page", () -> check(r, root, params, shape, rows)));
            }
        }
        return tests.stream();
    }

    private static String table(ModelShape s, double a, double b) {
        StringBuilder sb = new StringBuilder();
        for (int l = 0; l < s.layers(); l++) {
            for (int h = 0; h < s.kvHeads(); h++) sb.append(h > 0 ? "\t" : "").append((l + h) % 2 == 0 ? a : b);
            sb.append('\n');
        }
        return sb.toString();
    }

    private static void check(Frontend.Result r, String root, Map<String, Object> params, ModelShape shape, int rows) {
        Specialized s = Compilation.optimise(r.program(), root, params, Pipeline.Options.DEFAULT, (a, b) -> { });
        // periodic handlers ('every 64') need decode steps to have run; the prediction assumes they have
        boolean periodic = s.classes().stream().anyMatch(c -> c.handlers().stream().anyMatch(h -> h.events().contains(dev.kvpc.ir.PolicyIr.Event.EVERY)));
        int decode = periodic ? 64 : 0, context = 96 + decode;
        MemoryModel.Report predicted = MemoryModel.predict(s, 96, context, "f32", Lane.entriesPerPage(rows));
        TraceShape ts = new TraceShape(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim());
        Trace t = TraceGenerator.generate(TraceGenerator.Options.of(ts).withSeed(9).withPrefill(96).withDecode(decode)).trace();
        boolean perLayer = s.classes().stream().anyMatch(c -> c.selection() == dev.kvpc.ir.PolicyIr.Selection.LAYER);
        ModelSpec model = new ModelSpec(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim(), Precision.F32);
        try (PagePool pool = new PagePool()) {
            try (Sequence seq = new KvRuntime(model, new InterpRunner(s), pool, rows).newSequence()) {
                dev.kvpc.runtime.trace.TraceFeed.feed(seq, t);
                long measured = 0;
                Lane.LaneBytes[][] m = seq.memory();
                for (int l = 0; l < shape.layers(); l++) {
                    long layerEntries = 0, layerPredicted = 0;
                    boolean bound = false;
                    for (int h = 0; h < shape.kvHeads(); h++) {
                        measured += m[l][h].total();
                        MemoryModel.LaneMemory pl = predicted.lanes()[l][h];
                        layerEntries += seq.lane(l, h).size();
                        layerPredicted += pl.entries();
                        // a budget shared from a model state's cells (cake) is a bound on each lane
                        bound |= !pl.entriesExact() && !perLayer;
                        String where = root + " layer " + l + " head " + h + ": entries";
                        if (bound) assertTrue(seq.lane(l, h).size() <= pl.entries(), where + " " + seq.lane(l, h).size() + " over the bound " + pl.entries());
                        // under per-layer selection heads share the layer's budget: only the layer total is exact
                        else if (!perLayer) assertEquals(pl.entries(), seq.lane(l, h).size(), where);
                    }
                    if (!bound) assertEquals(layerPredicted, layerEntries, root + " layer " + l + ": entries of the layer");
                }
                long predictedTotal = predicted.totalSteady();
                double ratio = (double) measured / predictedTotal;
                long slack = 0;
                for (MemoryModel.LaneMemory[] row : predicted.lanes()) for (MemoryModel.LaneMemory pl : row) slack += pl.pageSlack();
                if (predicted.shareCap() >= 0 || !predicted.exact() && rows > 2) {
                    // a bound: the shares' total (each cell's share rounded down), or a layer's lanes in whole pages;
                    // the runtime stays under it, by at most each chain's last page and a share's rounding
                    assertTrue(measured <= predictedTotal, root + ": measured " + measured + " B over the bound " + predictedTotal + " B");
                    assertTrue(predictedTotal - measured <= slack + predictedTotal / 10,
                            root + ": measured " + measured + " B, the bound " + predictedTotal + " B, pages' slack " + slack + " B");
                } else if (predicted.exact()) {
                    // an exact prediction is the runtime's bytes, to the byte (per-lane state included, which the
                    // runner keeps beside the lane)
                    assertEquals(predictedTotal, measured, root + ": measured " + measured + " B against the exact prediction");
                } else {
                    assertEquals(1.0, ratio, 0.05, root + ": measured " + measured + " B, predicted " + predictedTotal + " B");
                }
            }
        }
    }
}
