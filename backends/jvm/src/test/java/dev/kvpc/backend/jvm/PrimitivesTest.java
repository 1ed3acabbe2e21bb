package dev.kvpc.backend.jvm;

import dev.kvpc.backend.interp.PolicyText;
import dev.kvpc.backend.interp.Result;
import dev.kvpc.runtime.exec.Prims;
import dev.kvpc.runtime.trace.Trace;
import org.junit.jupiter.api.Test;


import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The entry primitives (rank, index, strata, count, member, uniform, gumbel, maxcos, maxdot) in whole policies, with
 * kept sets and states computed by hand, in the reference interpreter; then compiled code keeps the same on the
 * interpreter's events and on the runtime's lanes. States are read by an overflow handler that never fires, so that
 * they are not removed as dead.
 */
class PrimitivesTest {
    private static Result run(String root, String text, Trace t) {
        return CompiledOnLanes.everyEngine(root, text, t);
    }

    private static int[] kept(Result r, int step) {
        return CompiledOnLanes.kept(r, step, 0, 0);
    }

    @Test
    void rankOrdersLikeTopSoAComparisonKeepsTheBest() {
        // the three oldest (highest -pos) and the three newest
        Result r = run("oldest", """
                policy oldest() {
                    on overflow(6) { keep where(rank(-float(pos)) < 3) + last(3) }
                }
                """, PolicyText.trace(3, 12, 3));
        assertArrayEquals(new int[] {0, 1, 2, 9, 10, 11}, kept(r, 0));
        assertArrayEquals(new int[] {0, 1, 2, 12, 13, 14}, kept(r, 3));
    }

    @Test
    void indexIsTheSlotInTheCacheNotThePosition() {
        // after eviction the slots are renumbered: the four lowest slots are the four oldest entries kept
        Result r = run("slots", """
                policy slots() {
                    state at: i32 per token = 0
                    on prefill, decode { at = index }
                    on overflow(8) { keep top(-float(index) + 0.0 * float(at), 4) + last(4) }
                }
                """, PolicyText.trace(4, 12, 2));
        assertArrayEquals(new int[] {0, 1, 2, 3, 8, 9, 10, 11}, kept(r, 0));
        assertArrayEquals(new int[] {0, 1, 2, 3, 10, 11, 12, 13}, kept(r, 2));
        // written before the overflow handler: each kept entry's slot at the event, before the keep renumbered them
        double[] at = r.steps().get(2).lanes()[0][0].states().get("at");
        assertArrayEquals(new double[] {0, 1, 2, 3, 5, 6, 7, 8}, at);
    }

    @Test
    void strataKeepTheBestOfEachCutOfTheRanking() {
        // prompt 0..9: candidates 0..8 ranked 8..0, three strata from ranks 0, 3, 6: positions 8, 5, 2, and 9.
        // Then {2, 5, 8, 9, 10}: candidates 9, 8, 5, 2, strata from ranks 0, 1, 2: 9, 8, 5, and 10.
        Result r = run("spread", """
                policy spread() {
                    on overflow(4) { keep strata(float(pos) within first(len - 1), 3) + last(1) }
                }
                """, PolicyText.trace(5, 10, 2));
        assertArrayEquals(new int[] {2, 5, 8, 9}, kept(r, 0));
        assertArrayEquals(new int[] {5, 8, 9, 10}, kept(r, 1));
        assertArrayEquals(new int[] {8, 9, 10, 11}, kept(r, 2));
    }

    @Test
    void countAndMemberSeeTheSet() {
        Result r = run("counted", """
                policy counted() {
                    state n: i32 per lane = 0
                    state inset: bool per token = false
                    on prefill, decode {
                        n = count(first(2) + last(3) + first(1))
                        inset = member(first(2) + last(1))
                    }
                    on overflow(1000) { keep top(float(n) + (inset ? 1.0 : 0.0), 1000) }
                }
                """, PolicyText.trace(6, 7, 1));
        Result.Lane lane = r.steps().getFirst().lanes()[0][0];
        assertArrayEquals(new double[] {5}, lane.states().get("n"));
        assertArrayEquals(new double[] {1, 1, 0, 0, 0, 0, 1}, lane.states().get("inset"));
    }

    @Test
    void randomNumbersFollowTheSharedRule() {
        Trace t = PolicyText.trace(7, 9, 2);
        Result r = run("noisy", """
                policy noisy() {
                    state u: f32 per token = 0
                    state g: f32 per token = 0
                    on prefill, decode {
                        u = uniform(11)
                        g = gumbel(12)
                    }
                    on overflow(1000) { keep top(u + g, 1000) }
                }
                """, t);
        for (int step = 0; step < 3; step++) {
            for (int layer = 0; layer < 2; layer++) {
                for (int head = 0; head < 2; head++) {
                    Result.Lane lane = r.steps().get(step).lanes()[layer][head];
                    double[] u = lane.states().get("u"), g = lane.states().get("g");
                    for (int i = 0; i < u.length; i++) {
                        int pos = lane.positions()[i];
                        // the state is f32: the rule's double rounded to float
                        assertEquals((float) Prims.uniform(11, step, layer, head, pos), u[i], 0, "uniform at step " + step + ", entry " + pos);
                        assertEquals((float) Prims.gumbel(12, step, layer, head, pos), g[i], 0, "gumbel at step " + step + ", entry " + pos);
                    }
                }
            }
        }
    }

    @Test
    void maxSimilarityComparesValuesWithTheSetsOtherEntries() {
        Trace t = PolicyText.trace(8, 6, 0);
        Result r = run("similar", """
                policy similar() {
                    state c: f32 per token = 0
                    state d: f32 per token = 0
                    state r: f32 per token = 0
                    on prefill {
                        c = maxcos(v, first(2))
                        d = maxdot(v, first(2))
                        r = maxcos(v, first(2), last(3))
                    }
                    on overflow(1000) { keep top(c + d + 0.0 * r, 1000) }
                }
                """, t);
        Result.Lane lane = r.steps().getFirst().lanes()[0][0];
        float[][] v = new float[6][];
        for (int p = 0; p < 6; p++) v[p] = t.value(0, p, 0);
        for (int i = 0; i < 6; i++) {
            double bestCos = Double.NEGATIVE_INFINITY, bestDot = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < 2; j++) {
                if (j == i) continue;
                double dot = 0, ni = 0, nj = 0;
                for (int c = 0; c < v[i].length; c++) {
                    dot += (double) v[i][c] * v[j][c];
                    ni += (double) v[i][c] * v[i][c];
                    nj += (double) v[j][c] * v[j][c];
                }
                bestCos = Math.max(bestCos, dot / (Math.sqrt(ni) * Math.sqrt(nj)));
                bestDot = Math.max(bestDot, dot);
            }
            assertEquals((float) bestCos, lane.states().get("c")[i], 1e-6, "maxcos of entry " + i);
            // with rows asked for: the last three entries' rows only, NaN elsewhere
            if (i >= 3) assertEquals((float) bestCos, lane.states().get("r")[i], 1e-6, "maxcos of row " + i);
            else assertTrue(Double.isNaN(lane.states().get("r")[i]), "no row for entry " + i);
            assertEquals((float) bestDot, lane.states().get("d")[i], 1e-5, "maxdot of entry " + i);
        }
    }
}
