package dev.kvpc.compiler.lower;

import dev.kvpc.compiler.Corpus;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.ir.IrParser;
import dev.kvpc.ir.IrPrinter;
import dev.kvpc.ir.IrProgram;
import dev.kvpc.ir.Verifier;
import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Deployment;
import dev.kvpc.ir.Computation;
import dev.kvpc.ir.Instr;
import dev.kvpc.ir.Op;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/** Every stdlib program lowers to IR that verifies, and whose text form parses back to the same text. */
class LoweringTest {
    @TestFactory
    Stream<DynamicTest> stdlibLowersVerifiesAndRoundTrips() {
        return Corpus.stdlib().stream().map(p -> DynamicTest.dynamicTest(p.getFileName().toString(), () -> {
            Frontend.Result r = Frontend.check(p, ModelShape.REFERENCE);
            assertTrue(r.ok());
            IrProgram ir = Lowering.lower(r.program());
            Verifier.verify(ir);
            String text = IrPrinter.print(ir);
            IrProgram again = IrParser.parse(text);
            assertEquals(text, IrPrinter.print(again));
            assertEquals(ir, again, "parsed IR differs from the printed one");
            Verifier.verify(again);
        }));
    }

    /** A config's {@code attention V(args)} binds the variant's parameters to those arguments, per config. */
    @Test
    void configAttentionArgumentsBindTheVariantsParameters() {
        String text = """
                import "variants.kvp"
                import "h2o.kvp"
                config a { attention softcap(cap = 7.5) layers 0.. use h2o }
                config b { attention softcap layers 0.. use h2o }
                config c { attention sliding(32) layers 0.. use h2o }
                """;
        Frontend.Result r = Frontend.checkText("t.kvp", text, Corpus.root().resolve("stdlib-policies"), ModelShape.REFERENCE);
        assertTrue(r.ok(), () -> r.diagnostics().all().toString());
        assertEquals(7.5, param(specialise(r, "a"), "cap"));
        assertEquals(50.0, param(specialise(r, "b"), "cap"));
        assertEquals(32L, param(specialise(r, "c"), "w"));
        IrProgram ir = Lowering.lower(r.program());
        Verifier.verify(ir);
        assertEquals(IrPrinter.print(ir), IrPrinter.print(IrParser.parse(IrPrinter.print(ir))));
        // what kvpc run --attention generates, with a parameter of the policy
        String dep = Deployment.text("h2o.kvp", "h2o", java.util.Map.of("budget", 64L), "softcap(cap = 3.0)");
        Frontend.Result d = Frontend.checkText(Deployment.NAME, dep, Corpus.root().resolve("stdlib-policies"), ModelShape.REFERENCE);
        assertTrue(d.ok(), () -> dep + d.diagnostics().all());
        assertEquals(3.0, param(specialise(d, Deployment.CONFIG), "cap"));
    }

    private static Specialized specialise(Frontend.Result r, String root) {
        return Compilation.optimise(r.program(), root, java.util.Map.of(), Pipeline.Options.DEFAULT, (p, x) -> { });
    }

    /** The constant a variant parameter's initialiser computes. */
    private static Object param(Specialized s, String name) {
        for (var p : s.variant().params()) {
            if (!p.name().equals(name)) continue;
            Computation c = p.init();
            for (Instr i : c.block().instrs()) {
                if (i instanceof Instr.Def d && d.id() == c.result() && d.op() instanceof Op.Const k) return k.value();
            }
            fail("parameter " + name + " is not a constant: " + c);
        }
        return fail("no parameter " + name + " in " + s.variant());
    }
}
