package dev.kvpc.backend.interp;

import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.runtime.KvRuntime;
import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.Rope;
import dev.kvpc.runtime.Sequence;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.trace.Trace;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The runtime (paged lanes, its own attention kernel) running policies through the interpreter as its
 * PolicyRunner gives, after every step, the same kept positions per lane and the same attention outputs (within
 * 1e-4) as the interpreter alone; evicted memory really goes back to the pool.
 */
public class RuntimeDifferentialTest {
    @TestFactory
    Stream<DynamicTest> runtimeMatchesTheInterpreter() throws Exception {
        PassPreservationTest.stdlib = java.nio.file.Files.createTempDirectory("kvpc-rt");
        List<Path> programs = PassPreservationTest.programs();
        List<DynamicTest> tests = new ArrayList<>();
        for (Path p : programs) {
            Frontend.Result r = Frontend.check(p, PassPreservationTest.SMALL);
            String root = Compilation.defaultRoot(r.program());
            if (root == null) continue;
            Map<String, Object> params = PassPreservationTest.SMALL_BUDGETS.getOrDefault(root, Map.of());
            tests.add(DynamicTest.dynamicTest(root, () -> {
                Specialized s = Compilation.optimise(r.program(), root, params, Pipeline.Options.DEFAULT, (a, b) -> { });
                for (Trace t : PassPreservationTest.traces()) compare(s, t, root, null);
            }));
            tests.add(DynamicTest.dynamicTest(root + " with RoPE applied by the runtime", () -> {
                Specialized s = Compilation.optimise(r.program(), root, params, Pipeline.Options.DEFAULT, (a, b) -> { });
                compare(s, PassPreservationTest.traces().getFirst(), root, new Rope(10000));
            }));
        }
        return tests.stream();
    }

    /** Every attention variant of the stdlib, deployed with an evicting policy: the runtime's kernel runs the variant. */
    @TestFactory
    Stream<DynamicTest> runtimeRunsEveryVariant() throws Exception {
        Path dir = java.nio.file.Files.createTempDirectory("kvpc-variants");
        PassPreservationTest.stdlib = dir;
        PassPreservationTest.programs();
        List<DynamicTest> tests = new ArrayList<>();
        for (String variant : List.of("standard", "softcap", "alibi", "sliding", "sigmoid")) {
            Path f = dir.resolve("deploy_" + variant + ".kvp");
            java.nio.file.Files.writeString(f, "import \"variants.kvp\"\nimport \"h2o.kvp\"\nimport \"window.kvp\"\n\n"
                    + "config deploy {\n    attention " + (variant.equals("sliding") ? "sliding(w = 16)" : variant) + "\n"
                    + "    layers 0 use h2o(budget = 24)\n    layers 1 use window(size = 20)\n}\n");
            tests.add(DynamicTest.dynamicTest(variant, () -> {
                Frontend.Result r = Frontend.check(f, PassPreservationTest.SMALL);
                assertTrue(r.ok(), r.diagnostics().all().stream().map(d -> r.renderer().render(d)).reduce("", String::concat));
                Specialized s = Compilation.optimise(r.program(), "deploy", Map.of(), Pipeline.Options.DEFAULT, (a, b) -> { });
                // a variant given arguments is bound to them under a name of its own (the config's)
                assertEquals(variant.equals("sliding") ? "sliding_deploy" : variant, s.variant().name());
                for (Trace t : PassPreservationTest.traces()) compare(s, t, "deploy/" + variant, null);
            }));
        }
        return tests.stream();
    }

    /** Overflow budgets of the policies as SMALL_BUDGETS sets them. */
    static final Map<String, Integer> BUDGET = Map.of("window", 24, "streaming_llm", 22, "h2o", 24, "tova", 24, "scissorhands", 24, "cam", 24);

    /**
     * Properties that hold after every event: the lane is within its budget; StreamingLLM's sinks survive; survivors
     * at the host precision hold exactly the trace's keys and values, unless the policy ever stores below it
     * ({@code loss}: a store at f32 does not restore what an earlier bf16 store rounded, nor bf16 what int4 quantised); merge counts add up to the
     * tokens seen.
     */
    static void properties(String name, Lane lane, Trace t, int layer, int kv, int seen, String where, Rope rope, boolean cache, long limit,
                           Loss loss) {
        boolean lossy = loss != Loss.NONE;
        Integer budget = BUDGET.get(name);
        if (budget != null) assertTrue(lane.size() <= budget, where + ": " + lane.size() + " entries over the budget " + budget);
        if (limit >= 0) assertTrue(lane.size() <= limit, where + ": " + lane.size() + " entries over the overflow budget " + limit);
        if (name.equals("streaming_llm") && seen > 22) {
            assertEquals(0, lane.position(0), where + ": sink 0");
            assertEquals(1, lane.position(1), where + ": sink 1");
        }
        int d = lane.headDim();
        float[] row = new float[d];
        double counts = 0;
        for (int i = 0; i < lane.size(); i++) {
            counts += lane.count(i);
            if (lane.isCompensation(i) || lane.count(i) != 1) continue;
            if (lane.spec(i, Lane.Part.KEYS).precision() == Precision.F32 && !lossy) {
                lane.read(i, Lane.Part.KEYS, row, 0);
                float[] key = t.key(layer, lane.position(i), kv).clone();
                if (rope != null && !cache) rope.rotate(key, 0, key.length, lane.position(i));
                assertArrayEquals(key, row, where + ": key of position " + lane.position(i));
            }
            if (lane.spec(i, Lane.Part.VALUES).precision() == Precision.F32) {
                if (lossy) continue;
                lane.read(i, Lane.Part.VALUES, row, 0);
                assertArrayEquals(t.value(layer, lane.position(i), kv), row, where + ": value of position " + lane.position(i));
            } else {
                // stored at a smaller format: within the format's bound of the value given
                lane.read(i, Lane.Part.VALUES, row, 0);
                float[] given = t.value(layer, lane.position(i), kv);
                var spec = lane.spec(i, Lane.Part.VALUES);
                double lo = Double.MAX_VALUE, hi = -Double.MAX_VALUE;
                for (float x : given) {
                    lo = Math.min(lo, x);
                    hi = Math.max(hi, x);
                }
                double bound = spec.quantised() ? (hi - lo) / spec.precision().levels() : 0;
                // a precision later does not restore what was lost: an entry of a class that also quantises may have
                // passed through its coarsest format first (at most 2 bits, 3 levels)
                if (loss == Loss.QUANTISES) bound = Math.max(bound, (hi - lo) / 3);
                for (int c = 0; c < d; c++) {
                    double tol = bound + Math.abs(given[c]) * (spec.precision() == Precision.BF16 ? 1.0 / 128 : 1.0 / 1024) + 1e-6;
                    assertEquals(given[c], row[c], tol, where + ": value of position " + lane.position(i) + " at " + spec);
                }
            }
        }
        if (name.equals("cam") || (name.equals("razor") && lane.size() > 0 && lane.isCompensation(lane.size() - 1))) {
            assertEquals(seen, counts, 1e-9, where + ": merge counts conserve the tokens seen");
        }
    }

    /** The smallest constant overflow budget of a lane class, or -1 (every event ends within it). */
    static long overflowLimit(Specialized s, int laneClass) {
        if (laneClass < 0) return -1;
        long min = -1;
        for (var h : s.classes().get(laneClass).handlers()) {
            if (!h.events().contains(dev.kvpc.ir.PolicyIr.Event.OVERFLOW)) continue;
            for (var i : h.limit().block().instrs()) {
                if (i instanceof dev.kvpc.ir.Instr.Def d && d.id() == h.limit().result() && d.op() instanceof dev.kvpc.ir.Op.Const c && c.value() instanceof Long v) {
                    min = min < 0 ? v : Math.min(min, v);
                }
            }
        }
        return min;
    }

    static void compare(Specialized s, Trace t, String name, Rope rope) {
        compare(s, t, name, rope, new InterpRunner(s));
    }

    /** What a class's stores can lose of an entry: nothing, rounding (f16, bf16), or quantisation (int). */
    enum Loss { NONE, ROUNDS, QUANTISES }

    /** The most a class's stores (its handlers or its standing rules) can lose of an entry. */
    static Loss loss(dev.kvpc.ir.PolicyIr p) {
        Loss l = loss(p.standing());
        for (var h : p.handlers()) l = worse(l, loss(h.body()));
        return l;
    }

    private static Loss loss(dev.kvpc.ir.Block b) {
        Loss l = Loss.NONE;
        for (dev.kvpc.ir.Instr i : b.instrs()) {
            if (i instanceof dev.kvpc.ir.Instr.Store st && st.format() != dev.kvpc.ir.Instr.Format.F32) {
                var f = st.format();
                boolean quantises = f == dev.kvpc.ir.Instr.Format.INT || f == dev.kvpc.ir.Instr.Format.INT8 || f == dev.kvpc.ir.Instr.Format.INT4
                        || f == dev.kvpc.ir.Instr.Format.INT2;
                l = worse(l, quantises ? Loss.QUANTISES : Loss.ROUNDS);
            }
            if (i instanceof dev.kvpc.ir.Instr.If f) l = worse(l, worse(loss(f.then()), loss(f.otherwise())));
        }
        return l;
    }

    private static Loss worse(Loss a, Loss b) {
        return a.compareTo(b) >= 0 ? a : b;
    }

    /** As above, with the runtime running {@code runner} (a compiled policy, for instance). */
    public static void compare(Specialized s, Trace t, String name, Rope rope, dev.kvpc.runtime.PolicyRunner runner) {
        Result want = rope == null ? Interpreter.run(s, t) : Interpreter.run(s, t, rope);
        var shape = s.shape();
        ModelSpec model = new ModelSpec(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim(), Precision.F32, rope);
        int d = shape.headDim(), g = shape.kvHeads(), h = shape.heads(), group = shape.group();
        try (PagePool pool = new PagePool()) {
            KvRuntime rt = new KvRuntime(model, runner, pool, 8);
            try (Sequence seq = rt.newSequence()) {
                dev.kvpc.runtime.trace.TraceFeed.feed(seq, t, (si, l, out) -> {
                    int n = t.steps().get(si).tokens(), start = t.start(si);
                    // the lanes as the step leaves them, once its last layer has run (a policy with per model state
                    // settles every layer's event then)
                    for (int ll = 0; l == shape.layers() - 1 && ll < shape.layers(); ll++) {
                        for (int kv = 0; kv < g; kv++) {
                            Result.Lane expected = want.steps().get(si).lanes()[ll][kv];
                            Lane lane = seq.lane(ll, kv);
                            int[] got = new int[lane.size()];
                            for (int i = 0; i < got.length; i++) got[i] = lane.position(i);
                            String where = name + " step " + si + " layer " + ll + " head " + kv;
                            assertArrayEquals(expected.positions(), got, where + ": kept positions");
                            int laneClass = s.classOf()[ll][kv];
                            boolean cache = laneClass >= 0 && s.classes().get(laneClass).positions() == dev.kvpc.ir.PolicyIr.Positions.CACHE;
                            properties(name, lane, t, ll, kv, start + n, where, rope, cache, overflowLimit(s, laneClass),
                                    laneClass >= 0 ? loss(s.classes().get(laneClass)) : Loss.NONE);
                        }
                    }
                    for (int kv = 0; kv < g; kv++) {
                        Result.Lane expected = want.steps().get(si).lanes()[l][kv];
                        String where = name + " step " + si + " layer " + l + " head " + kv;
                        double[] eo = expected.outputs();
                        for (int gi = 0; gi < group; gi++) {
                            for (int c = 0; c < d; c++) {
                                float o = out[((n - 1) * h + kv * group + gi) * d + c];
                                assertEquals(eo[gi * d + c], o, 1e-4 * (1 + Math.abs(eo[gi * d + c])), where + ": output head " + (kv * group + gi) + " channel " + c);
                            }
                        }
                    }
                });
                long held = 0;
                for (Lane.LaneBytes[] row : seq.memory()) for (Lane.LaneBytes b : row) held += b.kv() + b.scales();
                assertEquals(held, pool.bytesInUse(), "the lanes' key and value rows account for every page in use (state is on the heap)");
                int entries = 0;
                for (int l = 0; l < shape.layers(); l++) for (int kv = 0; kv < g; kv++) entries += seq.lane(l, kv).size();
                assertTrue(held <= (long) (entries + 2 * shape.layers() * g * 8) * 2 * d * 4 + 1_000_000,
                        "memory follows the entries held: " + held + " bytes for " + entries + " entries " + Arrays.toString(new int[] {entries}));
            }
            assertEquals(0, pool.bytesInUse(), "closing the sequence gives every page back");
        }
    }
}
