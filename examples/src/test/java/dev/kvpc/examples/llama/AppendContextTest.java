package dev.kvpc.examples.llama;

import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import org.junit.jupiter.api.Test;

import java.util.BitSet;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@link LlamaEngine#appendContext}: a context opened from rows computed elsewhere continues as the model's own
 * prefill would, and a policy meets the whole context at its first decode step. {@link Llama2cModel#random}: shapes
 * and types as asked.
 */
class AppendContextTest {

    /**
     * The rows kvpc-tiny's own prefill stored (keys rotated back to unrotated), opened as a context, give the next
     * token the logits the prefill gives: the keys pass through a rotation and its inverse, so within 1e-4, not bit
     * for bit. The same rows with the values negated give other logits: the context is what the model reads.
     */
    @Test
    void aContextOfTheModelsOwnRowsContinuesAsItsPrefill() throws Exception {
        Llama2cModel m = PrefillTest.model();
        int[] ids = KvpcTinyTest.reference(KvpcTinyTest.dir().resolve("reference.txt"), m.vocab).getFirst().ids();
        int n = ids.length - 1;
        float[] expected;
        float[][][] rows = new float[m.layers][][];
        try (PagePool pool = new PagePool(); LlamaEngine e = new LlamaEngine(m, LlamaEngine.fullCache(), pool)) {
            e.prefill(ids, 0, n);
            for (int l = 0; l < m.layers; l++) rows[l] = unrotatedRows(e, m, l, n);
            expected = e.forward(ids[n]).clone();
        }
        float[] got, negated;
        try (PagePool pool = new PagePool(); LlamaEngine e = new LlamaEngine(m, LlamaEngine.fullCache(), pool)) {
            e.appendContext(n, l -> new float[][] {rows[l][0].clone(), rows[l][1].clone()});
            assertEquals(n, e.positions());
            got = e.forward(ids[n]).clone();
            assertEquals(n + 1, e.positions());
        }
        try (PagePool pool = new PagePool(); LlamaEngine e = new LlamaEngine(m, LlamaEngine.fullCache(), pool)) {
            e.appendContext(n, l -> {
                float[] v = rows[l][1].clone();
                for (int i = 0; i < v.length; i++) v[i] = -v[i];
                return new float[][] {rows[l][0].clone(), v};
            });
            negated = e.forward(ids[n]).clone();
        }
        double max = maxDiff(expected, got), other = maxDiff(expected, negated);
        System.out.printf(Locale.ROOT, "appendContext: %d positions, max abs logit difference %.3g (values negated: %.3g)%n", n, max, other);
        assertTrue(max <= 1e-4, "logits after the context differ from the prefill's by " + max);
        assertTrue(other > 1e-2, "negating the context's values moved the logits by only " + other);
    }

    /** A policy sees no event for the context; its first decode step meets all of it and cuts it to its budget. */
    @Test
    void aPolicyCutsTheContextAtItsFirstDecodeStep() {
        Llama2cModel m = Llama2cModel.random(64, 96, 2, 4, 2, 40, GgufFile.TensorType.F32, 3);
        int n = 50, budget = 20;
        try (PagePool pool = new PagePool(); LlamaEngine e = new LlamaEngine(m, new LastEntries(budget), pool)) {
            e.appendContext(n, l -> new float[][] {gaussian(n * m.kvDim, l), gaussian(n * m.kvDim, 100 + l)});
            for (int l = 0; l < m.layers; l++) assertEquals(n, e.sequence().lane(l, 0).size(), "before the first decode step");
            e.forward(1);
            for (int l = 0; l < m.layers; l++) {
                for (int h = 0; h < m.kvHeads; h++) {
                    Lane lane = e.sequence().lane(l, h);
                    assertEquals(budget, lane.size(), "layer " + l + " head " + h + " after the first decode step");
                    assertEquals(n, lane.position(budget - 1), "the newest entry is the decode step's");
                }
            }
        }
    }

    @Test
    void aContextOpensASequenceOnly() {
        Llama2cModel m = Llama2cModel.random(64, 96, 1, 4, 2, 40, GgufFile.TensorType.F32, 3);
        try (PagePool pool = new PagePool(); LlamaEngine e = new LlamaEngine(m, LlamaEngine.fullCache(), pool)) {
            e.forward(1);
            IllegalStateException x = assertThrows(IllegalStateException.class, () -> e.appendContext(4, l -> new float[][] {new float[4 * m.kvDim], new float[4 * m.kvDim]}));
            assertTrue(x.getMessage().contains("position 1"), x.getMessage());
        }
    }

    @Test
    void aRandomModelHasTheShapeAndTypeAsked() {
        Llama2cModel m = Llama2cModel.random(128, 192, 3, 8, 2, 50, GgufFile.TensorType.Q4_0, 5);
        assertEquals(16, m.headSize);
        assertEquals(32, m.kvDim);
        assertEquals(3, m.wq.length);
        assertEquals(GgufFile.TensorType.Q4_0, m.w2[2].type());
        assertEquals(128, m.w2[2].rows);
        assertEquals(192, m.w2[2].cols);
        assertSame(m.embedding, m.classifier);
        assertThrows(IllegalArgumentException.class, () -> Llama2cModel.random(100, 64, 1, 8, 2, 10, GgufFile.TensorType.F32, 1));
    }

    /** A policy that keeps a lane's last {@code budget} entries after every step it sees. */
    private record LastEntries(int budget) implements PolicyRunner {
        @Override
        public int laneClass(int layer, int kvHead) {
            return 0;
        }

        @Override
        public boolean perLayer(int laneClass) {
            return false;
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
                        BitSet keep = new BitSet();
                        keep.set(Math.max(0, lane.size() - budget), lane.size());
                        lane.retain(keep);
                    }
                }
            };
        }
    }

    /** Layer {@code l}'s stored rows, entry {@code j} at position {@code j}, keys rotated back by {@code -j}. */
    private static float[][] unrotatedRows(LlamaEngine e, Llama2cModel m, int l, int n) {
        int d = m.headSize;
        float[] k = new float[n * m.kvDim], v = new float[n * m.kvDim];
        for (int h = 0; h < m.kvHeads; h++) {
            Lane lane = e.sequence().lane(l, h);
            assertEquals(n, lane.size());
            for (int j = 0; j < n; j++) {
                assertEquals(j, lane.position(j));
                int off = (j * m.kvHeads + h) * d;
                lane.read(j, Lane.Part.KEYS, k, off);
                lane.read(j, Lane.Part.VALUES, v, off);
                for (int i = 0; i < d / 2; i++) {
                    double a = j * Math.pow(m.ropeTheta, -2.0 * i / d), c = Math.cos(a), s = Math.sin(a);
                    float x0 = k[off + 2 * i], x1 = k[off + 2 * i + 1];
                    k[off + 2 * i] = (float) (x0 * c + x1 * s);
                    k[off + 2 * i + 1] = (float) (-x0 * s + x1 * c);
                }
            }
        }
        return new float[][] {k, v};
    }

    private static double maxDiff(float[] a, float[] b) {
        double max = 0;
        for (int i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
        return max;
    }

    private static float[] gaussian(int n, long seed) {
        java.util.Random r = new java.util.Random(seed);
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian();
        return a;
    }
}
