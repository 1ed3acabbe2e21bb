package dev.kvpc.backend.interp;

import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.runtime.KvRuntime;
import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.Sequence;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.trace.Trace;
import dev.kvpc.runtime.trace.TraceFeed;
import dev.kvpc.runtime.trace.TraceGenerator;
import dev.kvpc.runtime.trace.TraceShape;

import java.util.Map;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Policies written in a test as text, at {@link PassPreservationTest#SMALL}: checked, optimised, run on runtime lanes. */
public final class PolicyText {
    private PolicyText() {}

    /** {@code text} checked (the test fails with the diagnostics otherwise) and {@code root} optimised at its defaults. */
    public static Specialized optimise(String root, String text) {
        Frontend.Result fr = Frontend.checkText(root + ".kvp", text, null, PassPreservationTest.SMALL);
        assertTrue(fr.ok(), fr.diagnostics().all().toString());
        return Compilation.optimise(fr.program(), root, Map.of(), Pipeline.Options.DEFAULT, (a, b) -> { });
    }

    /** As {@link #optimise(String, String)}, with the text's files (tables) found in {@code dir}. */
    public static Specialized optimise(String root, String text, java.nio.file.Path dir) {
        Frontend.Result fr = Frontend.checkText(root + ".kvp", text, dir, PassPreservationTest.SMALL);
        assertTrue(fr.ok(), fr.diagnostics().all().toString());
        return Compilation.optimise(fr.program(), root, Map.of(), Pipeline.Options.DEFAULT, (a, b) -> { });
    }

    /** A generated trace at the small shape: a prompt of {@code prompt} tokens, then {@code decode} decoded ones. */
    public static Trace trace(long seed, int prompt, int decode) {
        var shape = PassPreservationTest.SMALL;
        TraceShape ts = new TraceShape(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim());
        return TraceGenerator.generate(TraceGenerator.Options.of(ts).withSeed(seed).withPrefill(prompt).withDecode(decode)).trace();
    }

    /** What a test looks at after each layer of each step: the sequence as the runtime holds it then. */
    public interface AfterLayer {
        void after(Sequence seq, int step, int layer);
    }

    /**
     * Feeds {@code t} to a sequence of the runtime's lanes under {@code runner}, calling {@code afterLayer} (may be
     * null) after each layer of each step, then hands the sequence to {@code atEnd}.
     */
    public static void runOnLanes(PolicyRunner runner, Trace t, AfterLayer afterLayer, Consumer<Sequence> atEnd) {
        var shape = PassPreservationTest.SMALL;
        ModelSpec model = new ModelSpec(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim(), Precision.F32);
        try (PagePool pool = new PagePool(); Sequence seq = new KvRuntime(model, runner, pool, 2).newSequence()) {
            TraceFeed.feed(seq, t, (step, layer, out) -> {
                if (afterLayer != null) afterLayer.after(seq, step, layer);
            });
            atEnd.accept(seq);
        }
    }
}
