package dev.kvpc.bench;

import dev.kvpc.backend.jvm.JvmDecodeKernels;
import dev.kvpc.runtime.KvRuntime;
import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.Sequence;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;

import java.util.Random;

/**
 * One layer's cache as the engine holds it, for timing decode steps' attention through the runtime
 * ({@link Sequence#append} then {@link Sequence#attend}): 32 query heads over 8 KV lanes of head dim 128 (a
 * Llama-2/3-like layer with GQA), full cache, {@code entries} entries per lane at {@code precision} (f32, or int4 /
 * int2 per token in groups of 32; each step's own new entry stays f32), on {@code threads} threads. The lanes grow
 * by one entry per step. What {@link LayerAttentionBench} and {@link LayerAB} time.
 */
final class LayerFixture implements AutoCloseable {
    static final int HEADS = 32, KV_HEADS = 8, HEAD_DIM = 128;

    private final PagePool pool = new PagePool();
    private final Sequence seq;
    private final float[] k, v, q, out;

    LayerFixture(int entries, int threads, String precision, int rowsPerPage) {
        Random r = new Random(1);
        ModelSpec model = new ModelSpec(1, HEADS, KV_HEADS, HEAD_DIM, Precision.F32);
        seq = new KvRuntime(model, PolicyRunner.fullCache(), pool, rowsPerPage, new JvmDecodeKernels()).withThreads(threads).newSequence();
        float[] keys = Lanes.gaussian(r, entries * KV_HEADS * HEAD_DIM), values = Lanes.gaussian(r, entries * KV_HEADS * HEAD_DIM);
        seq.beginPrefill(entries);
        seq.append(0, keys, values); // the prompt's rows, not attended: what is timed is decode steps
        if (!precision.equals("f32")) {
            QuantSpec spec = Lanes.spec(precision, HEAD_DIM);
            for (int h = 0; h < KV_HEADS; h++) {
                Lane lane = seq.lane(0, h);
                for (int j = 0; j < lane.size(); j++) {
                    lane.restore(j, Lane.Part.KEYS, spec);
                    lane.restore(j, Lane.Part.VALUES, spec);
                }
            }
        }
        k = Lanes.gaussian(r, KV_HEADS * HEAD_DIM);
        v = Lanes.gaussian(r, KV_HEADS * HEAD_DIM);
        q = Lanes.gaussian(r, HEADS * HEAD_DIM);
        out = new float[HEADS * HEAD_DIM];
    }

    /** One decode step: an entry arrives in every lane, the layer's queries attend. Returns the output. */
    float[] step() {
        seq.beginDecode();
        seq.append(0, k, v);
        seq.attend(0, q, out);
        return out;
    }

    @Override
    public void close() {
        seq.close();
        pool.close();
    }
}
