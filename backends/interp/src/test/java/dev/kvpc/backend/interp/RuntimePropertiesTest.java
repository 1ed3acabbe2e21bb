package dev.kvpc.backend.interp;

import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
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

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.*;

/** Runtime-level properties: memory really falls with eviction, and sequences run concurrently as they run alone. */
class RuntimePropertiesTest {
    private static Specialized compile(String policy, ModelShape shape, Map<String, Object> params) throws Exception {
        Path dir = java.nio.file.Files.createTempDirectory("kvpc-props");
        PassPreservationTest.stdlib = dir;
        PassPreservationTest.programs();
        Frontend.Result r = Frontend.check(dir.resolve(policy + ".kvp"), shape);
        assertTrue(r.ok(), r.diagnostics().all().toString());
        return Compilation.optimise(r.program(), Compilation.defaultRoot(r.program()), params, Pipeline.Options.DEFAULT, (a, b) -> { });
    }

    @Test
    void evictionAtAQuarterBudgetHoldsAQuarterOfTheMemoryOver32kTokens() throws Exception {
        ModelShape shape = ModelShape.parse("layers=1,heads=2,kv-heads=1,head-dim=8");
        int tokens = 32 * 1024, budget = tokens / 4;
        Specialized s = compile("window", shape, Map.of("size", (long) budget));
        Trace t = TraceGenerator.generate(TraceGenerator.Options.of(new TraceShape(1, 2, 1, 8)).withSeed(5)
                .withPrefill(tokens - 64).withChunk(2048).withDecode(64)).trace();
        ModelSpec model = new ModelSpec(1, 2, 1, 8, Precision.F32);
        try (PagePool pool = new PagePool()) {
            KvRuntime rt = new KvRuntime(model, new InterpRunner(s), pool, 16);
            try (Sequence seq = rt.newSequence()) {
                dev.kvpc.runtime.trace.TraceFeed.feed(seq, t);
                Lane lane = seq.lane(0, 0);
                assertEquals(budget, lane.size());
                long full = (long) tokens * 2 * 8 * 4;
                long measured = pool.bytesInUse();
                assertTrue(measured <= 0.27 * full, "measured " + measured + " B, full cache " + full + " B: ratio " + (double) measured / full);
                assertEquals(0.25, (double) measured / full, 0.005);
                assertTrue(pool.pagesReused() > 0, "evicted pages were reused");
            }
        }
    }

    @Test
    void sixteenSequencesOnEightThreadsGiveWhatTheyGiveAlone() throws Exception {
        ModelShape shape = PassPreservationTest.SMALL;
        List<Specialized> policies = List.of(
                compile("h2o", shape, Map.of("budget", 24L)),
                compile("streaming_llm", shape, Map.of("sinks", 2L, "window", 20L)),
                compile("kivi", shape, Map.of("group", 4L, "residual", 8L)),
                compile("cam", shape, Map.of("budget", 24L, "recent", 6L)));
        TraceShape ts = new TraceShape(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim());
        ModelSpec model = new ModelSpec(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim(), Precision.F32);
        List<InterpRunner> runners = policies.stream().map(InterpRunner::new).toList();
        try (PagePool pool = new PagePool()) {
            float[][] alone = new float[16][];
            for (int i = 0; i < 16; i++) {
                Trace t = TraceGenerator.generate(TraceGenerator.Options.of(ts).withSeed(100 + i).withPrefill(30).withDecode(12)).trace();
                try (Sequence seq = new KvRuntime(model, new InterpRunner(policies.get(i % 4)), pool, 8).newSequence()) {
                    alone[i] = dev.kvpc.runtime.trace.TraceFeed.feed(seq, t);
                }
            }
            try (ExecutorService ex = Executors.newFixedThreadPool(8)) {
                List<Future<float[]>> fs = new ArrayList<>();
                for (int i = 0; i < 16; i++) {
                    int id = i;
                    KvRuntime rt = new KvRuntime(model, runners.get(i % 4), pool, 8);
                    fs.add(ex.submit(() -> {
                        Trace t = TraceGenerator.generate(TraceGenerator.Options.of(ts).withSeed(100 + id).withPrefill(30).withDecode(12)).trace();
                        try (Sequence seq = rt.newSequence()) {
                            return dev.kvpc.runtime.trace.TraceFeed.feed(seq, t);
                        }
                    }));
                }
                for (int i = 0; i < 16; i++) assertArrayEquals(alone[i], fs.get(i).get(), "sequence " + i);
            }
            assertEquals(0, pool.bytesInUse(), "every sequence gave its pages back");
        }
    }
}
