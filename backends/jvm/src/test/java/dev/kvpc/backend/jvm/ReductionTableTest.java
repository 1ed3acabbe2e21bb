package dev.kvpc.backend.jvm;

import dev.kvpc.backend.interp.PassPreservationTest;
import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.ir.Op;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.runtime.exec.NativeRunner;
import dev.kvpc.runtime.policy.CompiledLaneClass;
import dev.kvpc.runtime.trace.Trace;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every reduction of the IR's table ({@link Op.Red}) as a builtin, end to end: it checks under its own name, and a
 * policy that scores entries with it over keys (a reduction the loop IR lowers) and over attention (one fused into a
 * kernel statistic where the table allows) compiles and runs as the interpreter runs it, on the interpreter's event
 * machinery and on the runtime's lanes. A reduction added to the table is covered here without another line.
 */
class ReductionTableTest {
    @TestFactory
    Stream<DynamicTest> everyReductionRunsCompiledAsInterpreted() {
        List<DynamicTest> tests = new ArrayList<>();
        for (Op.Red r : Op.Red.values()) {
            tests.add(DynamicTest.dynamicTest(r.word(), () -> {
                String w = r.word();
                String text = "policy red_" + w + "(budget: int = 20) {\n"
                        + "    state acc: f32 per token = 0\n"
                        + "    on prefill, decode {\n"
                        + "        acc += " + w + "(k, over: channel) + " + w + "(attn, over: query, group)\n"
                        + "    }\n"
                        + "    on overflow(budget) {\n"
                        + "        keep top(acc, budget)\n"
                        + "    }\n"
                        + "}\n";
                Frontend.Result fr = Frontend.checkText("red_" + w + ".kvp", text, null, PassPreservationTest.SMALL);
                assertTrue(fr.ok(), w + ": " + fr.diagnostics().all());
                Specialized s = Compilation.optimise(fr.program(), "red_" + w, Map.of(), Pipeline.Options.DEFAULT, (a, b) -> { });
                List<Trace> traces = PassPreservationTest.traces();
                PolicyCompilerTest.agree(s, traces, w);
                List<CompiledLaneClass> classes = JvmPolicies.compile(s, "red.kvp").define();
                for (Trace t : traces) dev.kvpc.backend.interp.RuntimeDifferentialTest.compare(s, t, "red_" + w, null, new NativeRunner(s, classes, null, false));
            }));
        }
        return tests.stream();
    }

    @Test
    void aReductionIsItsRule() {
        // the rule evaluated directly: entropy of (0.5, 0.25, 0.25, 0) is 1.5 ln 2 nats, the zero contributing nothing
        double acc = Op.Red.ENTROPY.identity();
        for (double p : new double[] {0.5, 0.25, 0.25, 0}) acc = Op.Red.ENTROPY.fold(acc, p);
        assertEquals(1.5 * Math.log(2), Op.Red.ENTROPY.finish(acc, 4), 1e-15);
        double norm = Op.Red.NORM.identity();
        for (double x : new double[] {3, -4}) norm = Op.Red.NORM.fold(norm, x);
        assertEquals(5.0, Op.Red.NORM.finish(norm, 2));
        assertEquals(0.0, Op.Red.MEAN.finish(Op.Red.MEAN.identity(), 0), "the mean of nothing is 0");
        assertEquals(Double.NEGATIVE_INFINITY, Op.Red.MAX.identity());
    }
}
