package dev.kvpc.backend.jvm;

import dev.kvpc.runtime.KvRuntime;
import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.Sequence;
import dev.kvpc.runtime.engine.DecodeKernel;
import dev.kvpc.runtime.engine.DecodeKernelProvider;
import dev.kvpc.runtime.engine.DenseRows;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;
import org.junit.jupiter.api.Test;

import java.util.BitSet;
import java.util.List;
import java.util.Random;
import java.util.ServiceLoader;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The runtime's hook: a sequence whose runtime has the JVM backend's kernels gives the outputs of one without them
 * (within {@link DecodeKernelCompilerTest#TOL} of each head row's largest magnitude), uses the compiled kernels for
 * steps over lanes of one format (a prefill once per query position), and falls back to the runtime kernel for lanes
 * whose rows are spread over several formats.
 */
class DecodeKernelRuntimeTest {
    static final int D = 72, LAYERS = 3, HEADS = 8, KV_HEADS = 2;

    /**
     * Layer 0: attend subsets and one eviction per step past 20 entries. Layer 1: no policy (the full cache). Layer 2:
     * every other entry's values re-stored at int4, so its lanes mix formats.
     */
    static final class TestPolicy implements PolicyRunner {
        @Override
        public int laneClass(int layer, int kvHead) {
            return layer == 1 ? -1 : layer;
        }

        @Override
        public boolean perLayer(int laneClass) {
            return true;
        }

        @Override
        public Event open(int laneClass, Step step, int layer, int[] kvHeads, List<Lane> lanes) {
            return new Event() {
                @Override
                public BitSet[] attendSets() {
                    if (laneClass != 0 || step.kind() != Step.Kind.DECODE) return null;
                    BitSet[] sets = new BitSet[lanes.size()];
                    for (int i = 0; i < sets.length; i++) {
                        Random r = new Random(step.decodeStep() * 31L + kvHeads[i]);
                        sets[i] = new BitSet();
                        for (int j = 0; j < lanes.get(i).size(); j++) if (r.nextInt(4) != 0) sets[i].set(j);
                    }
                    return sets;
                }

                @Override
                public void finish() {
                    for (int i = 0; i < lanes.size(); i++) {
                        Lane lane = lanes.get(i);
                        if (laneClass == 0 && lane.size() > 20) {
                            BitSet keep = new BitSet();
                            keep.set(0, lane.size());
                            keep.clear(new Random(step.decodeStep() + 7L * kvHeads[i]).nextInt(lane.size() - 1));
                            lane.retain(keep);
                        }
                        if (laneClass == 2) {
                            QuantSpec i4 = QuantSpec.resolve(Precision.INT4, QuantSpec.Axis.TOKEN, 24, D);
                            for (int j = 0; j < lane.size(); j += 2) lane.restore(j, Lane.Part.VALUES, i4);
                        }
                    }
                }
            };
        }
    }

    @Test
    void sequencesUseCompiledKernelsAndGiveTheSameOutputs() {
        ModelSpec model = new ModelSpec(LAYERS, HEADS, KV_HEADS, D, Precision.F32);
        int[] calls = new int[1];
        DecodeKernelProvider jvm = new JvmDecodeKernels();
        DecodeKernelProvider counting = (d, g, k, v) -> {
            DecodeKernel kernel = jvm.kernel(d, g, k, v);
            if (kernel == null) return null;
            return (lane, q, qpos, attend, out, colSums) -> {
                calls[0]++;
                kernel.attend(lane, q, qpos, attend, out, colSums);
            };
        };
        try (PagePool pool = new PagePool()) {
            KvRuntime plain = new KvRuntime(model, new TestPolicy(), pool, 8, DecodeKernelProvider.NONE);
            KvRuntime compiled = plain.withDecodeKernels(counting);
            sideBySide(plain, compiled, 5, "");
            int laneSteps = DECODE_STEPS * LAYERS * KV_HEADS;
            // the prefill (30 positions) runs compiled on every lane, its lanes being of one format then; after it,
            // layers 0 and 1 run compiled at every decode step, and layer 2 mixes formats and stays on the runtime kernel
            assertEquals(LAYERS * KV_HEADS * PROMPT + laneSteps * 2 / 3, calls[0], "compiled kernel calls");
        }
    }

    /**
     * Lanes no kernel reads in place run the f32 kernel over their rows read for the step: layer 2's mixed formats
     * under {@link TestPolicy}, and, in a model with RoPE, keys rotated by their slot ({@code positions cache}) in
     * a window that drops its oldest entry past 12. The outputs are the runtime kernel's within the tolerance.
     */
    @Test
    void lanesNoKernelReadsInPlaceRunTheF32KernelOverTheirRows() {
        int[] dense = new int[1], inPlace = new int[1];
        DecodeKernelProvider jvm = new JvmDecodeKernels();
        DecodeKernelProvider counting = new DecodeKernelProvider() {
            @Override
            public DecodeKernel kernel(int d, int g, QuantSpec k, QuantSpec v) {
                DecodeKernel kernel = jvm.kernel(d, g, k, v);
                return kernel == null ? null : (rows, q, qpos, attend, out, colSums) -> {
                    inPlace[0]++;
                    kernel.attend(rows, q, qpos, attend, out, colSums);
                };
            }

            @Override
            public DecodeKernel denseKernel(int d, int g) {
                DecodeKernel kernel = jvm.denseKernel(d, g);
                return (rows, q, qpos, attend, out, colSums) -> {
                    assertInstanceOf(DenseRows.class, rows);
                    dense[0]++;
                    kernel.attend(rows, q, qpos, attend, out, colSums);
                };
            }
        };
        PolicyRunner window = new PolicyRunner() {
            @Override
            public int laneClass(int layer, int kvHead) {
                return 0;
            }

            @Override
            public boolean perLayer(int laneClass) {
                return true;
            }

            @Override
            public boolean cachePositions(int laneClass) {
                return true;
            }

            @Override
            public Event open(int laneClass, Step step, int layer, int[] kvHeads, List<Lane> lanes) {
                return new Event() {
                    @Override
                    public BitSet[] attendSets() {
                        return null;
                    }

                    @Override
                    public void finish() {
                        for (Lane lane : lanes) {
                            if (lane.size() <= 12) continue;
                            BitSet keep = new BitSet();
                            keep.set(0, lane.size());
                            keep.clear(2);
                            lane.retain(keep);
                        }
                    }
                };
            }
        };
        record Case(String name, ModelSpec model, PolicyRunner policy, int denseCalls) {}
        ModelSpec plainModel = new ModelSpec(LAYERS, HEADS, KV_HEADS, D, Precision.F32);
        ModelSpec ropeModel = new ModelSpec(LAYERS, HEADS, KV_HEADS, D, Precision.F32, new dev.kvpc.runtime.Rope(10000));
        // layer 2's lanes after the prefill (40 decode steps); every lane at every position with positions cache
        for (Case c : List.of(new Case("mixed formats", plainModel, new TestPolicy(), DECODE_STEPS * KV_HEADS),
                new Case("positions cache", ropeModel, window, LAYERS * KV_HEADS * (PROMPT + DECODE_STEPS)))) {
            dense[0] = 0;
            inPlace[0] = 0;
            try (PagePool pool = new PagePool()) {
                KvRuntime plain = new KvRuntime(c.model(), c.policy(), pool, 8, DecodeKernelProvider.NONE);
                KvRuntime compiled = plain.withDecodeKernels(counting);
                sideBySide(plain, compiled, 9, c.name() + ", ");
            }
            assertEquals(c.denseCalls(), dense[0], c.name() + ": f32 kernel calls over rows read for the step");
            if (c.policy() == window) assertEquals(0, inPlace[0], "no lane with keys rotated by slot is read in place");
        }
    }

    static final int PROMPT = 30, DECODE_STEPS = 40;

    /**
     * A prefill of {@value #PROMPT} tokens and {@value #DECODE_STEPS} decode steps of random keys, values and queries
     * on a sequence of each runtime; every layer's outputs of the two agree within the tolerance.
     */
    static void sideBySide(KvRuntime plain, KvRuntime compiled, long seed, String label) {
        Random r = new Random(seed);
        try (Sequence a = plain.newSequence(); Sequence b = compiled.newSequence()) {
            for (int step = 0; step <= DECODE_STEPS; step++) {
                int tokens = step == 0 ? PROMPT : 1;
                if (step == 0) {
                    a.beginPrefill(tokens);
                    b.beginPrefill(tokens);
                } else {
                    a.beginDecode();
                    b.beginDecode();
                }
                for (int layer = 0; layer < LAYERS; layer++) {
                    float[] k = gaussian(r, tokens * KV_HEADS * D), v = gaussian(r, tokens * KV_HEADS * D), q = gaussian(r, tokens * HEADS * D);
                    a.append(layer, k, v);
                    b.append(layer, k.clone(), v.clone());
                    float[] outA = new float[q.length], outB = new float[q.length];
                    a.attend(layer, q, outA);
                    b.attend(layer, q.clone(), outB);
                    DecodeKernelCompilerTest.assertClose(outA, outB, D, label + "step " + step + " layer " + layer);
                }
            }
        }
    }

    @Test
    void theServiceLoaderFindsTheJvmBackend() {
        assertInstanceOf(JvmDecodeKernels.class, DecodeKernelProvider.installed());
        assertTrue(ServiceLoader.load(DecodeKernelProvider.class).findFirst().isPresent());
    }

    static float[] gaussian(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian();
        return a;
    }
}
