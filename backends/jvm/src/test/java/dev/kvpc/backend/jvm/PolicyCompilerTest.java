package dev.kvpc.backend.jvm;

import dev.kvpc.runtime.exec.NativeRunner;
import dev.kvpc.backend.interp.Interpreter;
import dev.kvpc.backend.interp.PassPreservationTest;
import dev.kvpc.backend.interp.Result;
import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.gen.ProgramGenerator;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.ir.PolicyIr;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.runtime.policy.CompiledLaneClass;
import dev.kvpc.runtime.trace.Trace;
import dev.kvpc.runtime.trace.TraceGenerator;
import dev.kvpc.runtime.trace.TraceShape;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;
import org.objectweb.asm.ClassReader;
import org.objectweb.asm.util.CheckClassAdapter;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Differential test of compiled policies against the reference interpreter: for every stdlib policy (budgets small
 * enough that eviction, merging and quantisation happen) and for generated programs, on a random and a planted
 * trace, the compiled lane classes give the interpreter's kept sets, attend sets, precisions and merge counts
 * exactly, and its states and attention outputs within {@value #TOLERANCE} (the kernels compute in the
 * interpreter's order, so in practice bit for bit). Every generated class passes ASM's CheckClassAdapter.
 */
class PolicyCompilerTest {
    static final double TOLERANCE = 1e-9;

    @TempDir
    static Path stdlib;

    @TestFactory
    Stream<DynamicTest> stdlibPoliciesAgreeWithTheInterpreter() throws Exception {
        List<Trace> traces = PassPreservationTest.traces();
        List<DynamicTest> tests = new ArrayList<>();
        PassPreservationTest.specialised(stdlib).forEach((root, s) -> tests.add(DynamicTest.dynamicTest(root, () -> agree(s, traces, root))));
        assertTrue(tests.size() >= 17, "expected every stdlib policy, got " + tests.size());
        return tests.stream();
    }

    @Test
    void generatedProgramsAgreeWithTheInterpreter() {
        ModelShape shape = ModelShape.parse("layers=2,heads=4,kv-heads=2,head-dim=64");
        int seeds = Integer.getInteger("kvpc.gen.seeds", 40);
        TraceShape ts = new TraceShape(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim());
        List<Trace> traces = List.of(
                TraceGenerator.generate(TraceGenerator.Options.of(ts).withSeed(21).withPrefill(48).withDecode(20)).trace(),
                TraceGenerator.generate(TraceGenerator.Options.of(ts).withSeed(22).withPrefill(40).withChunk(16).withDecode(16).withSinks(2).withHeavyHitters(2)).trace());
        int ran = 0, nativeRan = 0;
        List<String> notRun = new ArrayList<>();
        for (long seed = 0; seed < seeds; seed++) {
            String text = ProgramGenerator.generate(seed, seed % 2 == 0 ? 40 : 0);
            Frontend.Result r = Frontend.checkText("gen_" + seed + ".kvp", text, ProgramGenerator.tables(shape), shape);
            if (!r.ok()) {
                notRun.add(seed + ": " + r.diagnostics().all().getFirst().code());
                continue;
            }
            Specialized s = Compilation.optimise(r.program(), "gen_" + seed, Map.of(), Pipeline.Options.DEFAULT, (pass, x) -> { });
            try {
                for (Trace t : traces) Interpreter.run(s, t);
            } catch (RuntimeException e) {
                // what the interpreter does not define (ragged per-layer lanes) is not compared
                notRun.add(seed + ": " + e.getMessage());
                continue;
            }
            agree(s, traces, "seed " + seed + "\n" + text);
            // and on the runtime's own lanes: the interpreter's kept positions and outputs after every step
            List<CompiledLaneClass> classes = JvmPolicies.compile(s, "gen.kvp").define();
            for (Trace t : traces) dev.kvpc.backend.interp.RuntimeDifferentialTest.compare(s, t, "gen_" + seed, null, new NativeRunner(s, classes, JvmBackend.variant(s), false));
            nativeRan++;
            ran++;
        }
        System.out.println("generated programs compiled and compared: " + ran + " (" + nativeRan + " also on native lanes), not run: " + notRun);
        assertTrue(ran >= seeds * 3 / 4, "only " + ran + " of " + seeds + " generated programs ran: " + notRun);
    }

    /** The runtime computes a step's attention rows only where code that runs at that step reads them. */
    @Test
    void attentionIsComputedOnlyAtTheStepsThatReadIt() throws Exception {
        var prefill = PolicyIr.Event.PREFILL;
        var chunk = PolicyIr.Event.CHUNK;
        var decode = PolicyIr.Event.DECODE;
        Map<String, java.util.Set<PolicyIr.Event>> expected = Map.of(
                "snapkv", java.util.Set.of(prefill),                 // on prefill only
                "h2o", java.util.Set.of(prefill, decode),            // on prefill, decode; its overflow handler reads acc
                "tova", java.util.Set.of(prefill, chunk, decode),    // its overflow handler reads attn, at any step
                "window", java.util.Set.of(),
                "streaming_llm", java.util.Set.of());
        int seen = 0;
        for (Path p : PassPreservationTest.programs(stdlib)) {
            String name = p.getFileName().toString().replace(".kvp", "");
            if (!expected.containsKey(name)) continue;
            Frontend.Result r = Frontend.check(p, PassPreservationTest.SMALL);
            Specialized s = Compilation.optimise(r.program(), name, PassPreservationTest.SMALL_BUDGETS.getOrDefault(name, Map.of()),
                    Pipeline.Options.DEFAULT, (a, b) -> { });
            PolicyIr c = s.classes().getFirst();
            boolean[] attends = new boolean[c.handlers().size()];
            for (int i = 0; i < attends.length; i++) attends[i] = dev.kvpc.ir.IrWalk.attends(c.handlers().get(i).body());
            assertEquals(expected.get(name), NativeRunner.attentionAt(c, attends), name);
            seen++;
        }
        assertEquals(expected.size(), seen, "every policy above is in the standard library");
    }

    /** A stack trace through compiled policy code names the .kvp file and the line of the handler. */
    @Test
    void stackTracesPointAtTheSource() throws Exception {
        Path h2o = PassPreservationTest.programs(stdlib).stream().filter(p -> p.getFileName().toString().equals("h2o.kvp")).findFirst().orElseThrow();
        Frontend.Result r = Frontend.check(h2o, PassPreservationTest.SMALL);
        Specialized s = Compilation.optimise(r.program(), "h2o", Map.of("budget", 24L), Pipeline.Options.DEFAULT, (a, b) -> { });
        CompiledLaneClass c = JvmPolicies.compile(s, "h2o.kvp").define().getFirst();
        List<String> lines = java.nio.file.Files.readAllLines(h2o);
        int overflowLine = 0;
        for (int i = 0; i < lines.size(); i++) if (lines.get(i).strip().startsWith("on overflow")) overflowLine = i + 1;
        assertTrue(overflowLine > 0);
        int kernel = List.of(c.kernels()).indexOf("handler1.overflow");
        assertTrue(kernel >= 0, List.of(c.kernels()).toString());
        dev.kvpc.runtime.policy.LaneContext failing = (dev.kvpc.runtime.policy.LaneContext) java.lang.reflect.Proxy.newProxyInstance(
                getClass().getClassLoader(), new Class<?>[] {dev.kvpc.runtime.policy.LaneContext.class}, (proxy, m, args) -> {
                    throw new IllegalStateException("context refuses " + m.getName());
                });
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> c.run(kernel, failing));
        StackTraceElement frame = java.util.Arrays.stream(e.getStackTrace()).filter(f -> f.getClassName().startsWith("kvpc.gen.h2o")).findFirst().orElseThrow();
        assertEquals("h2o.kvp", frame.getFileName(), frame.toString());
        assertEquals(overflowLine, frame.getLineNumber(), frame.toString());
        assertTrue(frame.getMethodName().startsWith("handler1_overflow"), frame.toString());
    }

    static void agree(Specialized s, List<Trace> traces, String what) {
        JvmPolicies compiled = JvmPolicies.compile(s, s.root() + ".kvp");
        for (var e : compiled.classFiles().entrySet()) {
            StringWriter w = new StringWriter();
            CheckClassAdapter.verify(new ClassReader(e.getValue()), PolicyCompilerTest.class.getClassLoader(), false, new PrintWriter(w));
            assertEquals("", w.toString(), e.getKey() + " fails CheckClassAdapter");
        }
        List<CompiledLaneClass> classes = compiled.define();
        for (Trace t : traces) {
            Result reference = Interpreter.run(s, t);
            Result got = Interpreter.runCompiled(s, t, classes::get);
            String diff = Result.difference(reference, got, TOLERANCE);
            assertNull(diff, what + ": compiled and interpreted results differ: " + diff);
        }
    }
}
