package dev.kvpc.bench;

import dev.kvpc.backend.jvm.JvmPolicies;
import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.exec.NativeRunner;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * One policy's step on one lane (head dim 128, a GQA group of 4 query heads) of {@code entries} entries, compiled
 * (the stdlib policy through the ASM backend, run by the runtime's native runner as hosts run it) or hand-written
 * ({@link HandWrittenPolicies}): what {@link PolicyStepBench} and {@link PolicyAB} time. At the stdlib defaults:
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
 * {@link #prepare} (outside the timed step) keeps the lane at its size for the policies that never evict.
 */
final class PolicyFixture implements AutoCloseable {
    static final int D = 128, GROUP = 4, HEADS = 4;
    static final List<String> POLICIES = List.of("h2o", "tova", "quest", "kivi", "snapkv");

    final String policy;
    final int entries;
    private final PagePool pool = new PagePool();
    private final PolicyRunner runner;
    private final float[] key, value, q, sums, prefillQueries;
    private float[] handSums = new float[0];
    Lane lane;
    private int next, step;
    private HandWrittenPolicies.Quest quest;

    PolicyFixture(String policy, int entries) {
        this(policy, entries, null);
    }

    /** As above, the policy run by {@code backend}'s runner ({@code null}: the JVM backend's compiled classes). */
    PolicyFixture(String policy, int entries, java.util.function.Function<Specialized, PolicyRunner> backend) {
        this.policy = policy;
        this.entries = entries;
        runner = compiled(policy, ModelShape.parse("layers=1,heads=" + HEADS + ",kv-heads=1,head-dim=" + D), params(), backend);
        Random rnd = new Random(7);
        key = Lanes.gaussian(rnd, D);
        value = Lanes.gaussian(rnd, D);
        q = Lanes.gaussian(rnd, HEADS * D);
        // column sums of a decode step: 4 heads' probabilities over the lane
        sums = new float[entries + 1];
        double total = 0;
        for (int i = 0; i < sums.length; i++) total += sums[i] = (float) -Math.log(1 - rnd.nextDouble());
        for (int i = 0; i < sums.length; i++) sums[i] = (float) (sums[i] / total * GROUP);
        prefillQueries = policy.equals("snapkv") ? Lanes.gaussian(rnd, entries * HEADS * D) : null;
        fill();
    }

    /**
     * The stdlib policy {@code name} for {@code shape} with {@code params}, compiled by the JVM backend and run by the
     * runtime's native runner, as hosts run it. Reads {@code stdlib-policies/} from the working directory.
     */
    static PolicyRunner compiled(String name, ModelShape shape, Map<String, Object> params) {
        return compiled(name, shape, params, null);
    }

    static PolicyRunner compiled(String name, ModelShape shape, Map<String, Object> params, java.util.function.Function<Specialized, PolicyRunner> backend) {
        Path file = Path.of("stdlib-policies", name + ".kvp");
        if (!Files.isRegularFile(file)) throw new IllegalStateException(file.toAbsolutePath() + " is missing: run from the repository root");
        Frontend.Result r = Frontend.check(file, shape);
        if (!r.ok()) throw new IllegalStateException(name + " does not check for " + shape);
        Specialized s = Compilation.optimise(r.program(), name, params, Pipeline.Options.DEFAULT, (a, b) -> { });
        if (backend != null) return backend.apply(s);
        return new NativeRunner(s, JvmPolicies.compile(s, name + ".kvp").define(), null);
    }

    private Map<String, Object> params() {
        return switch (policy) {
            case "h2o", "tova" -> Map.of("budget", (long) entries);
            case "quest" -> Map.of("page", 16L, "pages", 64L);
            case "kivi" -> Map.of("bits", 2L, "group", 32L, "residual", 128L);
            case "snapkv" -> Map.of("budget", 1024L, "window", 32L, "kernel", 7L);
            default -> throw new IllegalArgumentException("policy " + policy + ": one of " + POLICIES);
        };
    }

    /** A fresh lane of {@code entries} entries (random keys: Quest's bounds and SnapKV's scores differ per entry). */
    void fill() {
        if (lane != null) lane.clear();
        lane = new Lane(pool, D, QuantSpec.of(Precision.F32), 256);
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

    /** Before each step, untimed: SnapKV's lane refilled, and the lanes of the policies that never evict trimmed. */
    void prepare() {
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

    private PolicyRunner.Step decodeStep(int position) {
        return new PolicyRunner.Step(PolicyRunner.Step.Kind.DECODE, new int[] {position}, q, step, position + 1, null);
    }

    /** One compiled step; returns what a caller must consume so that nothing is optimised away. */
    Object compiled() {
        if (policy.equals("snapkv")) {
            int[] positions = new int[entries];
            for (int i = 0; i < entries; i++) positions[i] = i;
            PolicyRunner.Event ev = runner.open(0, new PolicyRunner.Step(PolicyRunner.Step.Kind.PREFILL, positions, prefillQueries, 0, entries, null), 0,
                    new int[] {0}, List.of(lane));
            Object sets = ev.attendSets();
            ev.finish();
            return sets;
        }
        int pos = next++;
        step++;
        lane.append(pos, step, key, 0, value, 0);
        PolicyRunner.Event ev = runner.open(0, decodeStep(pos), 0, new int[] {0}, List.of(lane));
        Object sets = ev.attendSets();
        float[][] cs = ev.columnSums();
        if (cs != null) System.arraycopy(sums, 0, cs[0], 0, Math.min(cs[0].length, sums.length));
        ev.finish();
        return sets;
    }

    /** The same step hand-written. */
    Object handWritten() {
        if (policy.equals("snapkv")) {
            HandWrittenPolicies.snapKvPrefill(lane, prefillQueries, HEADS, 0, GROUP, 1024, 32, 7);
            return lane;
        }
        int pos = next++;
        step++;
        lane.append(pos, step, key, 0, value, 0);
        switch (policy) {
            case "h2o" -> HandWrittenPolicies.h2oStep(lane, handOff(), entries, 0.5);
            case "tova" -> HandWrittenPolicies.tovaStep(lane, handOff(), entries);
            case "quest" -> {
                quest.update(lane);
                return quest.attend(lane, q, GROUP);
            }
            case "kivi" -> HandWrittenPolicies.kiviStep(lane, 2, 32, 128);
            default -> throw new IllegalStateException(policy);
        }
        return lane;
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

    /** The decode query of the lane's group (the attention step's input). */
    float[] query() {
        return q;
    }

    /** The next decode position. */
    int length() {
        return next;
    }

    @Override
    public void close() {
        if (lane != null) lane.clear();
        pool.close();
    }
}
