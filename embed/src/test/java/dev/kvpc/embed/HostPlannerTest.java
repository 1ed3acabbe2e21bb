package dev.kvpc.embed;

import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.plan.HostPlanner;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.*;

import static org.junit.jupiter.api.Assertions.*;

/** A host that owns its cache applies the planner's plans and ends up holding exactly what the policy keeps. */
class HostPlannerTest {
    @TempDir
    Path dir;

    /** The host's own cache: per lane, position -> key and value rows. */
    private final Map<Integer, TreeMap<Integer, float[][]>> cache = new HashMap<>();

    private List<HostPlanner.LanePlan> run(String source, int steps, int prefill) throws Exception {
        Path f = dir.resolve("p.kvp");
        Files.writeString(f, source);
        ModelSpec model = new ModelSpec(1, 4, 2, 32, Precision.F32);
        List<HostPlanner.LanePlan> all = new ArrayList<>();
        try (PagePool pool = new PagePool(); HostPlanner planner = new HostPlanner(model, Kvpc.compile(f, model, null, Map.of()), pool)) {
            Random r = new Random(4);
            int next = 0;
            for (int s = 0; s < steps; s++) {
                int n = s == 0 ? prefill : 1;
                if (s == 0) planner.beginPrefill(n);
                else planner.beginDecode();
                float[] k = new float[n * 2 * 32], v = new float[n * 2 * 32], q = new float[n * 4 * 32];
                for (int i = 0; i < k.length; i++) {
                    k[i] = (float) r.nextGaussian();
                    v[i] = (float) r.nextGaussian();
                }
                for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
                for (int t = 0; t < n; t++) {
                    for (int h = 0; h < 2; h++) {
                        cache.computeIfAbsent(h, x -> new TreeMap<>()).put(next + t, new float[][] {
                                Arrays.copyOfRange(k, (t * 2 + h) * 32, (t * 2 + h + 1) * 32), Arrays.copyOfRange(v, (t * 2 + h) * 32, (t * 2 + h + 1) * 32)});
                    }
                }
                next += n;
                for (HostPlanner.LanePlan plan : planner.step(0, k, v, q, null)) {
                    TreeMap<Integer, float[][]> lane = cache.get(plan.kvHead());
                    for (int p : plan.evict()) lane.remove(p);
                    plan.rewritten().forEach(lane::put);
                    assertEquals(new TreeSet<>(plan.kept()), lane.navigableKeySet(), "the host holds what the policy keeps");
                    all.add(plan);
                }
            }
        }
        return all;
    }

    @Test
    void streamingEvictionPlans() throws Exception {
        run("import \"streaming_llm.kvp\"\npolicy p = streaming_llm(sinks = 2, window = 10)\n", 30, 6);
        for (TreeMap<Integer, float[][]> lane : cache.values()) {
            assertEquals(12, lane.size());
            assertEquals(List.of(0, 1), new ArrayList<>(lane.keySet()).subList(0, 2));
        }
    }

    @Test
    void attendAndPrecisionAndMergePlans() throws Exception {
        List<HostPlanner.LanePlan> quest = run("import \"quest.kvp\"\npolicy p = quest(page = 4, pages = 2)\n", 20, 16);
        assertNotNull(quest.getLast().attend(), "quest restricts attention");
        assertTrue(quest.getLast().attend().length <= 12);
        cache.clear();
        List<HostPlanner.LanePlan> kivi = run("import \"kivi.kvp\"\npolicy p = kivi(group = 4, residual = 8)\n", 20, 16);
        assertTrue(kivi.stream().anyMatch(pl -> !pl.precision().isEmpty()), "kivi re-stores old entries at 2 bits");
        cache.clear();
        Files.writeString(dir.resolve("razor_heads.tsv"), "0\t0\n");
        List<HostPlanner.LanePlan> razor = run("import \"razor.kvp\"\npolicy p = razor(retrieval = \"razor_heads.tsv\", sinks = 2, window = 6)\n", 20, 4);
        assertTrue(razor.stream().anyMatch(pl -> pl.rewritten().containsKey(-1)), "the compensation entry is reported with its rows");
    }
}
