package dev.kvpc.backend.interp;

import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.gen.ProgramGenerator;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.runtime.trace.Trace;
import dev.kvpc.runtime.trace.TraceGenerator;
import dev.kvpc.runtime.trace.TraceShape;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Random policies on random shapes: generated programs, run by the runtime with the interpreter as its policy, keep
 * the interpreter's positions and outputs after every step (RuntimeDifferentialTest's checks).
 */
class RandomRuntimeTest {
    @Test
    void generatedPoliciesOnTwoShapes() {
        int seeds = Integer.getInteger("kvpc.gen.runtime.seeds", 16);
        int ran = 0;
        List<String> skipped = new ArrayList<>();
        String[] shapes = {"layers=2,heads=4,kv-heads=2,head-dim=128", "layers=1,heads=6,kv-heads=3,head-dim=64"};
        for (int seed = 0; seed < seeds; seed++) {
            ModelShape shape = ModelShape.parse(shapes[seed % 2]);
            Frontend.Result r = Frontend.checkText("gen_" + seed + ".kvp", ProgramGenerator.generate(seed, 40), ProgramGenerator.tables(shape), shape);
            if (!r.ok()) {
                skipped.add(seed + ": " + r.diagnostics().all().getFirst().code());
                continue;
            }
            Specialized s = Compilation.optimise(r.program(), "gen_" + seed, Map.of(), Pipeline.Options.DEFAULT, (a, b) -> { });
            Trace t = TraceGenerator.generate(TraceGenerator.Options.of(new TraceShape(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim()))
                    .withSeed(seed).withPrefill(36).withChunk(seed % 3 == 0 ? 12 : 0).withDecode(16).withSinks(2)).trace();
            try {
                RuntimeDifferentialTest.compare(s, t, "gen_" + seed, null);
                ran++;
            } catch (InterpreterException e) {
                if (!e.getMessage().contains("per-layer selection over lanes")) throw e;
                skipped.add(seed + ": ragged per-layer lanes");
            }
        }
        System.out.println("generated policies through the runtime: " + ran + " ran, skipped " + skipped);
        assertTrue(ran >= seeds * 2 / 3, "only " + ran + " of " + seeds + " ran: " + skipped);
    }
}
