package dev.kvpc.gpu;

import dev.kvpc.backend.interp.Interpreter;
import dev.kvpc.backend.interp.PassPreservationTest;
import dev.kvpc.backend.interp.Result;
import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.gen.ProgramGenerator;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.gpu.policy.ClLaneClass;
import dev.kvpc.gpu.policy.ClPolicies;
import dev.kvpc.gpu.policy.NestLowering;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.loop.Loop;
import dev.kvpc.ir.loop.LoopLowering;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.runtime.trace.Trace;
import dev.kvpc.runtime.trace.TraceGenerator;
import dev.kvpc.runtime.trace.TraceShape;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Policies on the device against the reference interpreter: every stdlib policy (budgets small enough that eviction,
 * merging and quantisation happen) and generated programs, on a random and a planted trace, their loop nests run as
 * OpenCL kernels ({@link ClLaneClass}) in the interpreter's event machinery: the interpreter's kept sets, attend
 * sets, precisions and merge counts exactly, and its states and outputs within {@value #TOLERANCE} (the kernels
 * compute in double in the JVM's order; the device's exp and log are its own, a few ulps apart).
 */
class PolicyKernelsTest {
    static final double TOLERANCE = 1e-9;

    @TempDir
    static Path stdlib;

    static ClContext cl;

    @BeforeAll
    static void open() {
        cl = Devices.context();
    }

    @AfterAll
    static void close() {
        if (cl != null) cl.close();
    }

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
        int seeds = Integer.getInteger("kvpc.gen.seeds", 12);
        TraceShape ts = new TraceShape(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim());
        List<Trace> traces = List.of(
                TraceGenerator.generate(TraceGenerator.Options.of(ts).withSeed(21).withPrefill(48).withDecode(20)).trace(),
                TraceGenerator.generate(TraceGenerator.Options.of(ts).withSeed(22).withPrefill(40).withChunk(16).withDecode(16).withSinks(2).withHeavyHitters(2)).trace());
        int ran = 0;
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
            ran++;
        }
        System.out.println("generated programs on the device and compared: " + ran + ", not run: " + notRun);
        assertTrue(ran >= seeds * 3 / 4, "only " + ran + " of " + seeds + " generated programs ran: " + notRun);
    }

    /** A nest splits over the variable every write is indexed by, moving loops outside it inward; else it runs whole. */
    @Test
    void nestsSplitWhereTheirWritesAllow() {
        // for t { for c { acc[c] += k[t, c] } }: c splits (each work-item sums its channel over t, in t's order)
        Loop.Dim len = Loop.Dim.sym("len"), hd = Loop.Dim.sym("head_dim");
        Map<Integer, List<Loop.Dim>> dims = Map.of(1, List.of(len, hd), 2, List.of(hd), 3, List.of());
        Map<Integer, dev.kvpc.ir.Ty.Elem> elems = Map.of(1, dev.kvpc.ir.Ty.Elem.FLOAT, 2, dev.kvpc.ir.Ty.Elem.FLOAT, 3, dev.kvpc.ir.Ty.Elem.FLOAT);
        Loop.For channels = new Loop.For("t", new Loop.Const(0L), new Loop.Extent(len), List.of(
                new Loop.For("c", new Loop.Const(0L), new Loop.Extent(hd), List.of(
                        new Loop.Accumulate(2, List.of(new Loop.Var("c")), dev.kvpc.ir.Op.Red.SUM, new Loop.Load(1, List.of(new Loop.Var("t"), new Loop.Var("c"))))))));
        NestLowering.Nest n = NestLowering.lower("n0", channels, dims, elems);
        assertEquals("c", n.parallel().var(), n.text());
        // a sum into one cell: nothing splits it
        Loop.For total = new Loop.For("t", new Loop.Const(0L), new Loop.Extent(len), List.of(
                new Loop.Accumulate(3, List.of(), dev.kvpc.ir.Op.Red.SUM, new Loop.Load(1, List.of(new Loop.Var("t"), new Loop.Const(0L))))));
        assertFalse(NestLowering.lower("n1", total, dims, elems).split());
        // a window over neighbours of the buffer being written: reads another work-item's cell, so no split
        Map<Integer, List<Loop.Dim>> d2 = Map.of(4, List.of(len));
        Loop.For smear = new Loop.For("t", new Loop.Const(1L), new Loop.Extent(len), List.of(
                new Loop.Assign(4, List.of(new Loop.Var("t")), new Loop.Load(4, List.of(new Loop.Bin(dev.kvpc.ir.Op.Fn2.SUB, new Loop.Var("t"), new Loop.Const(1L)))))));
        assertFalse(NestLowering.lower("n2", smear, d2, Map.of(4, dev.kvpc.ir.Ty.Elem.FLOAT)).split());
    }

    /** The stdlib's scoring loops split: keydiff's every nest, snapkv's pooling over (group, token). */
    @Test
    void stdlibScoringRunsAcrossWorkItems() throws Exception {
        for (String name : List.of("keydiff", "snapkv")) {
            Path p = PassPreservationTest.programs(stdlib).stream().filter(x -> x.getFileName().toString().equals(name + ".kvp")).findFirst().orElseThrow();
            Frontend.Result r = Frontend.check(p, PassPreservationTest.SMALL);
            Specialized s = Compilation.optimise(r.program(), name, PassPreservationTest.SMALL_BUDGETS.getOrDefault(name, Map.of()), Pipeline.Options.DEFAULT,
                    (pass, x) -> { });
            List<ClLaneClass> classes = ClPolicies.compile(s, cl);
            String src = classes.getFirst().source();
            assertTrue(src.contains("get_global_id(0)"), name + ": no nest splits\n" + src);
            KirTextTest.Golden.check("policy_" + name + ".cl", src);
            assertFalse(LoopLowering.lower(s.classes().getFirst()).kernels().isEmpty());
        }
    }

    /** H2O's loop IR has no nests: its ranking alone runs on the device (the rank is DeviceRank's, not the context's). */
    @Test
    void rankingsRunOnTheDevice() throws Exception {
        Path p = PassPreservationTest.programs(stdlib).stream().filter(x -> x.getFileName().toString().equals("h2o.kvp")).findFirst().orElseThrow();
        Frontend.Result r = Frontend.check(p, PassPreservationTest.SMALL);
        Specialized s = Compilation.optimise(r.program(), "h2o", PassPreservationTest.SMALL_BUDGETS.getOrDefault("h2o", Map.of()), Pipeline.Options.DEFAULT,
                (pass, x) -> { });
        List<ClLaneClass> classes = agree(s, PassPreservationTest.traces(), "h2o");
        assertEquals("", classes.getFirst().source(), "h2o has no loop nests");
        assertTrue(classes.getFirst().launches() > 0, "no ranking ran on the device");
    }

    /** A device without doubles is refused with the reason (policy kernels compute in double), not given kernels it cannot build. */
    @Test
    void aDeviceWithoutDoublesIsRefused() throws Exception {
        var d = cl.device();
        var noDoubles = new dev.kvpc.gpu.cl.ClDevice(d.index(), d.platformIndex(), d.deviceIndex(), d.platformName(), d.platformVersion(), d.name(), d.vendor(),
                d.version(), d.type(), d.computeUnits(), d.globalMemBytes(), d.localMemBytes(), d.maxWorkGroupSize(), false, d.fp16(), d.platformId(), d.id());
        Specialized s = PassPreservationTest.specialised(stdlib).get("keydiff");
        try (ClContext other = new ClContext(noDoubles)) {
            var e = assertThrows(dev.kvpc.gpu.cl.ClException.class, () -> ClPolicies.compile(s, other));
            assertTrue(e.getMessage().contains("has no double precision (cl_khr_fp64)"), e.getMessage());
        }
    }

    static List<ClLaneClass> agree(Specialized s, List<Trace> traces, String what) {
        List<ClLaneClass> classes = ClPolicies.compile(s, cl);
        for (Trace t : traces) {
            Result reference = Interpreter.run(s, t);
            Result got = Interpreter.runCompiled(s, t, classes::get);
            String diff = Result.difference(reference, got, TOLERANCE);
            assertNull(diff, what + ": device and interpreted results differ: " + diff);
        }
        return classes;
    }
}
