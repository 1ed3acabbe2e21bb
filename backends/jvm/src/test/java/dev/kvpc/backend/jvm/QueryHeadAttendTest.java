package dev.kvpc.backend.jvm;

import dev.kvpc.backend.interp.PolicyText;
import dev.kvpc.backend.interp.Result;
import dev.kvpc.runtime.trace.Trace;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Attend sets per query head: {@code top} of a score with a group axis chooses each query head's own entries, and
 * each head's attention reads only its own. At the small shape (2 layers, 4 query heads, 2 KV heads, group 2, head
 * dim 32), on a prompt of 12 then 3 decode steps, the entries and each head's attention output are computed by hand
 * from the trace. Compiled code agrees with the interpreter on its events and on the runtime's lanes, whose kernels
 * then attend head by head.
 */
class QueryHeadAttendTest {
    static final int LAYERS = 2, KV = 2, GROUP = 2, D = 32, PROMPT = 12, DECODE = 3, TOKENS = 3, RECENT = 2;

    /** Each head's best 3 by its own q . k among all but the 2 newest, plus the 2 newest. */
    @Test
    void eachQueryHeadAttendsItsOwnBest() {
        Trace t = PolicyText.trace(31, PROMPT, DECODE);
        Result r = CompiledOnLanes.everyEngine("perhead", """
                policy perhead(tokens: int = 3, recent: int = 2) {
                    on decode {
                        let estimate = max(sum(q * k, over: channel), over: query)
                        attend top(estimate within first(len - recent), tokens) + last(recent)
                    }
                }
                """, t);
        check(r, t, false);
    }

    /**
     * The same sets made from a per-head predicate, {@code where} of [group, token]: at most 3 entries above each
     * head's third best, by {@code member} and back, with the two newest added after.
     */
    @Test
    void aPredicatePerQueryHeadIsASetPerQueryHead() {
        Trace t = PolicyText.trace(32, PROMPT, DECODE);
        Result r = CompiledOnLanes.everyEngine("perhead", """
                policy perhead(tokens: int = 3, recent: int = 2) {
                    on decode {
                        let estimate = max(sum(q * k, over: channel), over: query)
                        let best = top(estimate within first(len - recent), tokens)
                        attend where(member(best)) + last(recent)
                    }
                }
                """, t);
        check(r, t, false);
    }

    /** Under the union of the heads' sets ({@code where} of a reduction over group), every head reads every chosen entry. */
    @Test
    void theUnionOverGroupIsOneSetForTheLane() {
        Trace t = PolicyText.trace(33, PROMPT, DECODE);
        Result r = CompiledOnLanes.everyEngine("union", """
                policy union(tokens: int = 3, recent: int = 2) {
                    on decode {
                        let estimate = max(sum(q * k, over: channel), over: query)
                        let best = top(estimate within first(len - recent), tokens)
                        attend where(sum(member(best) ? 1 : 0, over: group) > 0) + last(recent)
                    }
                }
                """, t);
        check(r, t, true);
    }

    /**
     * In chunks of 4 after a first chunk of 8, each query head of each query of the chunk reads its own best by its
     * maximum over the chunk's queries: the runtime's kernels attend head by head for every position of the chunk,
     * and agree with the interpreter and compiled code (outputs of the chunk's last query, kept and attended sets).
     */
    @Test
    void chunksAttendPerQueryHeadAtEveryPosition() {
        var shape = dev.kvpc.backend.interp.PassPreservationTest.SMALL;
        var ts = new dev.kvpc.runtime.trace.TraceShape(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim());
        Trace t = dev.kvpc.runtime.trace.TraceGenerator.generate(dev.kvpc.runtime.trace.TraceGenerator.Options.of(ts).withSeed(34)
                .withPrefill(20).withChunk(4).withDecode(2)).trace();
        assertTrue(t.chunked(), "the trace is chunked");
        Result r = CompiledOnLanes.everyEngine("chunks", """
                policy chunks(tokens: int = 3, recent: int = 5) {
                    observe last(4) queries at chunk
                    on chunk, decode {
                        let estimate = max(sum(q * k, over: channel), over: query)
                        attend top(estimate within first(len - recent), tokens) + last(recent)
                    }
                }
                """, t);
        int perHead = 0;
        for (var step : r.steps()) for (var layer : step.lanes()) for (var lane : layer) if (lane.attendedByQueryHead() != null) perHead++;
        assertTrue(perHead > 0, "no lane attended a set per query head");
    }

    /**
     * For each decode step, layer and KV head: each query head's chosen positions by hand; the lane's attended positions
     * are their union, and each head's output is softmax attention over its own positions ({@code union}: over all).
     * At least one lane's heads choose differently, so a shared set would fail.
     */
    private static void check(Result r, Trace t, boolean union) {
        int differ = 0;
        for (int step = 1; step <= DECODE; step++) {
            int p = PROMPT + step - 1;
            for (int l = 0; l < LAYERS; l++) {
                for (int h = 0; h < KV; h++) {
                    Result.Lane lane = r.steps().get(step).lanes()[l][h];
                    List<TreeSet<Integer>> chosen = new ArrayList<>();
                    TreeSet<Integer> all = new TreeSet<>();
                    for (int gi = 0; gi < GROUP; gi++) {
                        int head = h * GROUP + gi, layer = l, kv = h;
                        float[] q = t.query(l, p, head);
                        TreeSet<Integer> c = new TreeSet<>(best(p + 1 - RECENT, TOKENS, j -> dot(q, t.key(layer, j, kv))));
                        for (int j = p + 1 - RECENT; j <= p; j++) c.add(j);
                        chosen.add(c);
                        all.addAll(c);
                    }
                    if (!chosen.get(0).equals(chosen.get(1))) differ++;
                    String where = "step " + step + " layer " + l + " head " + h;
                    assertArrayEquals(all.stream().mapToInt(Integer::intValue).toArray(), lane.attended(), where + ": attended");
                    for (int gi = 0; gi < GROUP && !union; gi++) {
                        int[] own = chosen.get(gi).stream().mapToInt(Integer::intValue).toArray();
                        assertArrayEquals(own, lane.attendedByQueryHead()[gi], where + ": query head " + gi + "'s entries");
                    }
                    if (union) assertEquals(null, lane.attendedByQueryHead(), where + ": one set for the lane");
                    for (int gi = 0; gi < GROUP; gi++) {
                        double[] want = output(t, l, h, h * GROUP + gi, p, union ? all : chosen.get(gi));
                        for (int c = 0; c < D; c++) assertEquals(want[c], lane.outputs()[gi * D + c], 1e-9, where + " query head " + gi + " channel " + c);
                    }
                }
            }
        }
        assertTrue(differ > 0, "no lane's query heads chose differently: the test could not tell one set from two");
    }

    /** Softmax attention of query head {@code head} at position {@code p} over {@code positions} of lane (l, h). */
    private static double[] output(Trace t, int l, int h, int head, int p, TreeSet<Integer> positions) {
        float[] q = t.query(l, p, head);
        double scale = 1.0 / Math.sqrt(D), max = Double.NEGATIVE_INFINITY;
        for (int j : positions) max = Math.max(max, dot(q, t.key(l, j, h)) * scale);
        double z = 0;
        double[] out = new double[D];
        for (int j : positions) {
            double w = Math.exp(dot(q, t.key(l, j, h)) * scale - max);
            z += w;
            float[] v = t.value(l, j, h);
            for (int c = 0; c < D; c++) out[c] += w * v[c];
        }
        for (int c = 0; c < D; c++) out[c] /= z;
        return out;
    }

    private static double dot(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += (double) a[i] * b[i];
        return s;
    }

    /** The n positions among 0 .. candidates - 1 with the highest score. */
    private static List<Integer> best(int candidates, int n, java.util.function.IntToDoubleFunction score) {
        Integer[] p = new Integer[candidates];
        for (int i = 0; i < candidates; i++) p[i] = i;
        Arrays.sort(p, Comparator.comparingDouble((Integer i) -> -score.applyAsDouble(i)));
        return Arrays.asList(p).subList(0, n);
    }
}
