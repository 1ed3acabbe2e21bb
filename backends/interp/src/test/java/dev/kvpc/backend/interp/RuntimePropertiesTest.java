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

    /**
     * Every stdlib and example policy at the small shape: 16 sequences of one runner on 8 threads give the outputs
     * each gives alone, and the page pool is empty after (policies with per model state keep it per sequence).
     */
    @org.junit.jupiter.api.TestFactory
    java.util.stream.Stream<org.junit.jupiter.api.DynamicTest> everyPolicyRunsSixteenSequencesOnEightThreadsAsAlone(@org.junit.jupiter.api.io.TempDir Path dir)
            throws Exception {
        ModelShape shape = PassPreservationTest.SMALL;
        TraceShape ts = new TraceShape(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim());
        ModelSpec model = new ModelSpec(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim(), Precision.F32);
        List<org.junit.jupiter.api.DynamicTest> tests = new ArrayList<>();
        for (Path p : PassPreservationTest.programs(dir)) {
            Frontend.Result r = Frontend.check(p, shape);
            assertTrue(r.ok(), p + ": " + r.diagnostics().all());
            String root = Compilation.defaultRoot(r.program());
            if (root == null) continue; // attention variants only
            tests.add(org.junit.jupiter.api.DynamicTest.dynamicTest(root, () -> {
                Specialized s = Compilation.optimise(r.program(), root, PassPreservationTest.SMALL_BUDGETS.getOrDefault(root, Map.of()),
                        Pipeline.Options.DEFAULT, (a, b) -> { });
                InterpRunner runner = new InterpRunner(s);
                try (PagePool pool = new PagePool()) {
                    float[][] alone = new float[16][];
                    for (int i = 0; i < 16; i++) {
                        try (Sequence seq = new KvRuntime(model, runner, pool, 8).newSequence()) {
                            alone[i] = dev.kvpc.runtime.trace.TraceFeed.feed(seq, trace(ts, i));
                        }
                    }
                    try (ExecutorService ex = Executors.newFixedThreadPool(8)) {
                        KvRuntime rt = new KvRuntime(model, runner, pool, 8);
                        List<Future<float[]>> fs = new ArrayList<>();
                        for (int i = 0; i < 16; i++) {
                            int id = i;
                            fs.add(ex.submit(() -> {
                                try (Sequence seq = rt.newSequence()) {
                                    return dev.kvpc.runtime.trace.TraceFeed.feed(seq, trace(ts, id));
                                }
                            }));
                        }
                        for (int i = 0; i < 16; i++) assertArrayEquals(alone[i], fs.get(i).get(), root + ": sequence " + i);
                    }
                    assertEquals(0, pool.bytesInUse(), root + ": every sequence gave its pages back");
                }
            }));
        }
        assertTrue(tests.size() >= 25, "only " + tests.size() + " policies");
        return tests.stream();
    }

    private static Trace trace(TraceShape ts, int i) {
        return TraceGenerator.generate(TraceGenerator.Options.of(ts).withSeed(200 + i).withPrefill(30).withDecode(12)).trace();
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
