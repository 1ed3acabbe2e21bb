package dev.kvpc.runtime.plan;

import dev.kvpc.runtime.KvRuntime;
import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.Sequence;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.QuantSpec;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The lower-level SPI, for hosts that own their KV cache: the host feeds each step's keys, values and queries as to a
 * {@link Sequence}, and gets back, per lane, a {@link LanePlan} to apply to its own cache: which positions to evict,
 * which to attend, which entries to store at another precision, and which rows a merge rewrote. The planner keeps a
 * mirror of the lanes (the policy reads keys, values and attention), so the host's cache and the plan never diverge.
 */
public final class HostPlanner implements AutoCloseable {
    private final Sequence mirror;
    private final ModelSpec model;

    public HostPlanner(ModelSpec model, PolicyRunner policy, PagePool pool) {
        this.model = model;
        this.mirror = new KvRuntime(model, policy, pool).newSequence();
    }

    /** What a host does to one lane of its cache after a step. */
    public record LanePlan(int layer, int kvHead, int[] evict, int[] attend, Map<Integer, QuantSpec[]> precision,
                           Map<Integer, float[][]> rewritten, List<Integer> kept) {
        public boolean isEmpty() {
            return evict.length == 0 && attend == null && precision.isEmpty() && rewritten.isEmpty();
        }
    }

    public void beginPrefill(int n) {
        mirror.beginPrefill(n);
    }

    public void beginChunk(int n) {
        mirror.beginChunk(n);
    }

    public void beginDecode() {
        mirror.beginDecode();
    }

    /**
     * One layer of a step: the new keys and values ({@code tokens x kvHeads x headDim}) and the queries
     * ({@code tokens x heads x headDim}); returns the plan of each of the layer's lanes. {@code out}, when not null,
     * receives the attention output the policy's choices give (the host may use its own kernel instead).
     */
    public List<LanePlan> step(int layer, float[] k, float[] v, float[] q, float[] out) {
        int g = model.kvHeads(), d = model.headDim();
        List<Map<Integer, QuantSpec[]>> before = new ArrayList<>();
        mirror.append(layer, k, v);
        for (int h = 0; h < g; h++) before.add(snapshot(mirror.lane(layer, h)));
        List<Map<Integer, double[]>> counts = new ArrayList<>();
        for (int h = 0; h < g; h++) counts.add(counts(mirror.lane(layer, h)));
        mirror.attend(layer, q, out != null ? out : new float[q.length]);
        List<LanePlan> plans = new ArrayList<>();
        for (int h = 0; h < g; h++) {
            Lane lane = mirror.lane(layer, h);
            Map<Integer, QuantSpec[]> was = before.get(h), now = snapshot(lane);
            List<Integer> evict = new ArrayList<>();
            for (Integer p : was.keySet()) if (!now.containsKey(p)) evict.add(p);
            Map<Integer, QuantSpec[]> precision = new LinkedHashMap<>();
            for (var e : now.entrySet()) {
                QuantSpec[] old = was.get(e.getKey());
                if (old != null && (!old[0].equals(e.getValue()[0]) || !old[1].equals(e.getValue()[1]))) precision.put(e.getKey(), e.getValue());
            }
            Map<Integer, float[][]> rewritten = new LinkedHashMap<>();
            Map<Integer, double[]> oldCounts = counts.get(h);
            for (int i = 0; i < lane.size(); i++) {
                int p = lane.position(i);
                double[] c = oldCounts.get(p);
                if (c == null || c[0] != lane.count(i)) {
                    float[] kr = new float[d], vr = new float[d];
                    lane.read(i, Lane.Part.KEYS, kr, 0);
                    lane.read(i, Lane.Part.VALUES, vr, 0);
                    rewritten.put(p, new float[][] {kr, vr});
                }
            }
            plans.add(new LanePlan(layer, h, evict.stream().mapToInt(Integer::intValue).toArray(), mirror.attendedPositions(layer, h),
                    precision, rewritten, new ArrayList<>(now.keySet())));
        }
        return plans;
    }

    /** Position (-1: the compensation entry) -> formats of keys and values. */
    private static Map<Integer, QuantSpec[]> snapshot(Lane lane) {
        Map<Integer, QuantSpec[]> m = new LinkedHashMap<>();
        for (int i = 0; i < lane.size(); i++) m.put(lane.position(i), new QuantSpec[] {lane.spec(i, Lane.Part.KEYS), lane.spec(i, Lane.Part.VALUES)});
        return m;
    }

    private static Map<Integer, double[]> counts(Lane lane) {
        Map<Integer, double[]> m = new HashMap<>();
        for (int i = 0; i < lane.size(); i++) m.put(lane.position(i), new double[] {lane.count(i)});
        return m;
    }

    @Override
    public void close() {
        mirror.close();
    }
}
