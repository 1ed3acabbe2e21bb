package dev.kvpc.bench;

import dev.kvpc.backend.jvm.JvmPolicies;
import dev.kvpc.runtime.exec.NativeRunner;
import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.engine.DecodeKernel;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.QuantSpec;
import org.openjdk.jmh.annotations.*;
import org.openjdk.jmh.infra.Blackhole;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * Policy work and policy overhead (docs/performance.md). One lane (head dim 128, a GQA group of 4 query heads) holding
 * {@code entries} entries; one step of a policy's work on it, compiled (the stdlib policy through the ASM backend,
 * run by the native runner as hosts run it) and hand-written ({@link HandWrittenPolicies}) over the same lane:
 * <ul>
 *   <li>h2o (budget = entries): a decode step: an entry arrives, the accumulated scores take the step's column
 *       sums (fused in the kernel: handed to both as a host hands them, see {@link #handOff}), one entry is
 *       evicted;</li>
 *   <li>tova (budget = entries): a decode step: the step's column sums (fused, handed over the same way) score the
 *       entries, the lowest is evicted;</li>
 *   <li>quest (pages of 16, 64 pages): a decode step's attend set from the page bounds;</li>
 *   <li>kivi (2 bits, groups of 32, residual 128): a decode step's standing stores;</li>
 *   <li>snapkv (budget 1024, window 32, kernel 7): a prefill of {@code entries} tokens, compressed.</li>
 * </ul>
 * The attention step ({@code decodeAttention}: the generated decode kernel over the same lane at the same size)
 * is the overhead target's denominator. Lanes are rebuilt outside the measured time where a step changes their size.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--sun-misc-unsafe-memory-access=allow"})
public class PolicyStepBench {
    static final int D = 128, GROUP = 4, HEADS = 4;

    @Param({"h2o", "tova", "quest", "kivi", "snapkv"})
    public String policy;
    @Param({"4096", "16384"})
    public int entries;

    private PagePool pool;
    private Lane lane;
    private PolicyRunner runner;
    private float[] key, value, q, sums, out, prefillQueries, handSums = new float[0];
    private int next, step;
    private HandWrittenPolicies.Quest quest;
    private DecodeKernel kernel;

    private Map<String, Object> params() {
        return switch (policy) {
            case "h2o" -> Map.of("budget", (long) entries);
            case "tova" -> Map.of("budget", (long) entries);
            case "quest" -> Map.of("page", 16L, "pages", 64L);
            case "kivi" -> Map.of("bits", 2L, "group", 32L, "residual", 128L);
            case "snapkv" -> Map.of("budget", 1024L, "window", 32L, "kernel", 7L);
            default -> throw new IllegalArgumentException(policy);
        };
    }

    @Setup(Level.Trial)
    public void setUp() {
        Path file = Path.of("stdlib-policies", policy + ".kvp");
        if (!Files.isRegularFile(file)) throw new IllegalStateException(file.toAbsolutePath() + " is missing: run from the repository root");
        ModelShape shape = ModelShape.parse("layers=1,heads=" + HEADS + ",kv-heads=1,head-dim=" + D);
        Frontend.Result r = Frontend.check(file, shape);
        if (!r.ok()) throw new IllegalStateException(policy + " does not check for " + shape);
        Specialized s = Compilation.optimise(r.program(), policy, params(), Pipeline.Options.DEFAULT, (a, b) -> { });
        runner = new NativeRunner(s, JvmPolicies.compile(s, policy + ".kvp").define(), null);
        Random rnd = new Random(7);
        key = gaussian(rnd, D);
        value = gaussian(rnd, D);
        q = gaussian(rnd, HEADS * D);
        // column sums of a decode step: 4 heads' probabilities over the lane
        sums = new float[entries + 1];
        double total = 0;
        for (int i = 0; i < sums.length; i++) total += sums[i] = (float) -Math.log(1 - rnd.nextDouble());
        for (int i = 0; i < sums.length; i++) sums[i] = (float) (sums[i] / total * GROUP);
        out = new float[GROUP * D];
        if (policy.equals("snapkv")) prefillQueries = gaussian(rnd, entries * HEADS * D);
        pool = new PagePool();
        kernel = new dev.kvpc.backend.jvm.JvmDecodeKernels().kernel(D, GROUP, QuantSpec.of(dev.kvpc.runtime.store.Precision.F32), QuantSpec.of(dev.kvpc.runtime.store.Precision.F32));
    }

    private static float[] gaussian(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian();
        return a;
    }

    /** A fresh lane of {@code entries} entries (random keys: Quest's bounds and SnapKV's scores differ per entry). */
    private void fill() {
        if (lane != null) lane.clear();
        lane = new Lane(pool, D, QuantSpec.of(dev.kvpc.runtime.store.Precision.F32), 256);
        Random rnd = new Random(11);
        float[] k = new float[D];
        for (int j = 0; j < entries; j++) {
            for (int c = 0; c < D; c++) k[c] = (float) rnd.nextGaussian();
            lane.append(j, 0, k, 0, value, 0);
        }
        next = entries;
        step = 0;
        quest = new HandWrittenPolicies.Quest(16, 64, D);
        if (policy.equals("quest")) quest.rebuild(lane);
    }

    @Setup(Level.Iteration)
    public void iteration() {
        fill();
    }

    /** Keeps the lane at its size between steps (outside the measured time) for the policies that never evict. */
    @Setup(Level.Invocation)
    public void invocation() {
        if (policy.equals("snapkv")) {
            fill();
        } else if (!policy.equals("h2o") && lane.size() > entries) {
            BitSet keep = new BitSet();
            // KIVI: the oldest leaves, so the residual window moves on; Quest: the newest, so pages stay aligned
            if (policy.equals("kivi")) keep.set(1, lane.size());
            else keep.set(0, lane.size() - 1);
            lane.retain(keep);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (lane != null) lane.clear();
        pool.close();
    }

    private PolicyRunner.Step decodeStep(int position) {
        return new PolicyRunner.Step(PolicyRunner.Step.Kind.DECODE, new int[] {position}, q, step, position + 1, null);
    }

    @Benchmark
    public void compiled(Blackhole bh) {
        if (policy.equals("snapkv")) {
            int[] positions = new int[entries];
            for (int i = 0; i < entries; i++) positions[i] = i;
            PolicyRunner.Event ev = runner.open(0, new PolicyRunner.Step(PolicyRunner.Step.Kind.PREFILL, positions, prefillQueries, 0, entries, null), 0,
                    new int[] {0}, List.of(lane));
            bh.consume(ev.attendSets());
            ev.finish();
            bh.consume(lane.size());
            return;
        }
        int pos = next++;
        step++;
        lane.append(pos, step, key, 0, value, 0);
        PolicyRunner.Event ev = runner.open(0, decodeStep(pos), 0, new int[] {0}, List.of(lane));
        bh.consume(ev.attendSets());
        float[][] cs = ev.columnSums();
        if (cs != null) System.arraycopy(sums, 0, cs[0], 0, Math.min(cs[0].length, sums.length));
        ev.finish();
        bh.consume(lane.size());
    }

    @Benchmark
    public void handWritten(Blackhole bh) {
        if (policy.equals("snapkv")) {
            HandWrittenPolicies.snapKvPrefill(lane, prefillQueries, HEADS, 0, GROUP, 1024, 32, 7);
            bh.consume(lane.size());
            return;
        }
        int pos = next++;
        step++;
        lane.append(pos, step, key, 0, value, 0);
        switch (policy) {
            case "h2o" -> HandWrittenPolicies.h2oStep(lane, handOff(), entries, 0.5);
            case "tova" -> HandWrittenPolicies.tovaStep(lane, handOff(), entries);
            case "quest" -> {
                quest.update(lane);
                bh.consume(quest.attend(lane, q, GROUP));
            }
            case "kivi" -> HandWrittenPolicies.kiviStep(lane, 2, 32, 128);
            default -> throw new IllegalStateException(policy);
        }
        bh.consume(lane.size());
    }

    /**
     * The step's column sums as a host hands them to a hand-written policy: the array the kernel adds them to, zeroed,
     * then filled (the copy stands in for the kernel's writes), as {@link PolicyRunner.Event#columnSums} and the copy
     * in {@link #compiled} do for the compiled one.
     */
    private float[] handOff() {
        int n = lane.size();
        if (handSums.length < n) handSums = new float[Math.max(n, 2 * handSums.length)];
        else java.util.Arrays.fill(handSums, 0, n, 0f);
        System.arraycopy(sums, 0, handSums, 0, Math.min(n, sums.length));
        return handSums;
    }

    /** Item 3's denominator: one decode attention step over the lane (the generated kernel hosts run). */
    @Benchmark
    public void decodeAttention(Blackhole bh) {
        kernel.attend(lane, q, next, null, out, null);
        bh.consume(out);
    }
}
