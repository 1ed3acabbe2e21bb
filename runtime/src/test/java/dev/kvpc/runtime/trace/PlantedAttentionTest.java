package dev.kvpc.runtime.trace;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The plantings are real: softmax(q.k / sqrt(d)), computed here from the trace's floats, concentrates where the
 * generator says. Each claim is checked against a control trace with the same seed and nothing planted.
 */
class PlantedAttentionTest {
    private static final TraceShape SHAPE = new TraceShape(2, 4, 2, 16);
    private static final TraceGenerator.Options BASE = TraceGenerator.Options.of(SHAPE)
            .withSeed(20240601L).withPrefill(256).withChunk(64).withDecode(16);

    private static double sinkMass(double[] a, int sinks) {
        double m = 0;
        for (int j = 0; j < Math.min(sinks, a.length); j++) {
            m += a[j];
        }
        return m;
    }

    @Test
    void sinksReceiveMostAttentionMass() {
        Trace planted = TraceGenerator.generate(BASE.withSinks(4)).trace();
        Attention att = new Attention(planted);
        double least = 1;
        double total = 0;
        int queries = 0;
        for (int layer = 0; layer < SHAPE.layers(); layer++) {
            for (int h = 0; h < SHAPE.heads(); h++) {
                for (int p = 0; p < planted.length(); p++) {
                    double m = sinkMass(att.probabilities(layer, h, p), 4);
                    least = Math.min(least, m);
                    total += m;
                    queries++;
                }
            }
        }
        assertTrue(least > 0.5, "every query gives the sinks most of its mass; least was " + least);
        assertTrue(total / queries > 0.9, "on average the sinks take over 90%; got " + total / queries);

        Attention control = new Attention(TraceGenerator.generate(BASE).trace());
        double controlTotal = 0;
        int controlQueries = 0;
        for (int layer = 0; layer < SHAPE.layers(); layer++) {
            for (int h = 0; h < SHAPE.heads(); h++) {
                for (int p = 64; p < planted.length(); p++) {
                    controlTotal += sinkMass(control.probabilities(layer, h, p), 4);
                    controlQueries++;
                }
            }
        }
        assertTrue(controlTotal / controlQueries < 0.15,
                "without sinks the first 4 of 64+ tokens get little; got " + controlTotal / controlQueries);
    }

    @Test
    void heavyHittersAccumulateMoreAttentionThanAverage() {
        TraceGenerator.Generated g = TraceGenerator.generate(BASE.withHeavyHitters(3));
        List<Integer> hitters = g.planted().heavyHitters();
        assertEquals(3, hitters.size());
        Attention att = new Attention(g.trace());
        Attention control = new Attention(TraceGenerator.generate(BASE).trace());
        for (int layer = 0; layer < SHAPE.layers(); layer++) {
            for (int kv = 0; kv < SHAPE.kvHeads(); kv++) {
                double[] acc = att.accumulated(layer, kv, 0);
                double[] plain = control.accumulated(layer, kv, 0);
                double mean = sum(acc) / acc.length;
                for (int p : hitters) {
                    assertTrue(acc[p] > 3 * mean, "heavy hitter " + p + " in lane " + layer + "/" + kv + " gets "
                            + acc[p] + ", mean " + mean);
                    assertTrue(acc[p] > 3 * plain[p], "heavy hitter " + p + " gets " + acc[p]
                            + " planted, " + plain[p] + " unplanted");
                }
                // and they are the top tokens of the lane, what an H2O policy would keep
                int[] order = java.util.stream.IntStream.range(0, acc.length).boxed()
                        .sorted((a, b) -> Double.compare(acc[b], acc[a])).mapToInt(Integer::intValue).toArray();
                for (int i = 0; i < hitters.size(); i++) {
                    assertTrue(hitters.contains(order[i]), "rank " + i + " of lane " + layer + "/" + kv + " is position "
                            + order[i] + ", not a heavy hitter " + hitters);
                }
            }
        }
    }

    @Test
    void needleIsTheArgmaxOfTheFinalQueriesOnly() {
        TraceGenerator.Generated g = TraceGenerator.generate(BASE.withNeedle(100, 4));
        int needle = g.planted().needle().orElseThrow();
        assertEquals(List.of(268, 269, 270, 271), g.planted().needleQueries());
        Attention att = new Attention(g.trace());
        int n = g.trace().length();
        double needleMass = 0;
        for (int layer = 0; layer < SHAPE.layers(); layer++) {
            for (int h = 0; h < SHAPE.heads(); h++) {
                for (int p : g.planted().needleQueries()) {
                    double[] a = att.probabilities(layer, h, p);
                    assertEquals(needle, Attention.argmax(a), "query " + p + " of head " + layer + "/" + h);
                    needleMass += a[needle];
                }
                // before the final queries the needle is an ordinary token
                double earlier = 0;
                int count = 0;
                for (int p = needle; p < n - 4; p++) {
                    double[] a = att.probabilities(layer, h, p);
                    earlier += a[needle] * (p + 1); // 1 = a uniform share
                    count++;
                }
                assertTrue(earlier / count < 3, "earlier queries give the needle about a uniform share; got "
                        + earlier / count + " times it");
            }
        }
        needleMass /= SHAPE.layers() * SHAPE.heads() * 4;
        assertTrue(needleMass > 0.8, "the final queries give the needle most of their mass: " + needleMass);
    }

    @Test
    void repeatedBlockIsAnExactCopyAndSharesAttention() {
        TraceGenerator.Generated g = TraceGenerator.generate(BASE.withRepeat(40, 16, 200));
        Trace t = g.trace();
        for (int layer = 0; layer < SHAPE.layers(); layer++) {
            for (int i = 0; i < 16; i++) {
                for (int kv = 0; kv < SHAPE.kvHeads(); kv++) {
                    assertArrayEquals(t.key(layer, 40 + i, kv), t.key(layer, 200 + i, kv));
                    assertArrayEquals(t.value(layer, 40 + i, kv), t.value(layer, 200 + i, kv));
                }
                assertFalse(java.util.Arrays.equals(t.query(layer, 40 + i, 0), t.query(layer, 200 + i, 0)),
                        "queries are not copied");
            }
            assertFalse(java.util.Arrays.equals(t.key(layer, 39, 0), t.key(layer, 199, 0)), "only the block is copied");
        }
        Attention att = new Attention(t);
        for (int h = 0; h < SHAPE.heads(); h++) {
            double[] a = att.probabilities(1, h, 250);
            for (int i = 0; i < 16; i++) {
                assertEquals(a[40 + i], a[200 + i], 1e-12, "source and copy get the same attention");
            }
        }
    }

    @Test
    void allPlantingsTogether() {
        TraceGenerator.Generated g = TraceGenerator.generate(BASE.withSinks(4).withHeavyHitters(3)
                .withRepeat(60, 8, 180).withNeedle(150, 3));
        Trace t = g.trace();
        Attention att = new Attention(t);
        int needle = g.planted().needle().orElseThrow();
        int firstNeedleQuery = g.planted().needleQueries().getFirst();
        double sinkTotal = 0;
        int sinkMajority = 0;
        int sinkQueries = 0;
        for (int layer = 0; layer < SHAPE.layers(); layer++) {
            for (int kv = 0; kv < SHAPE.kvHeads(); kv++) {
                double[] acc = new double[t.length()];
                for (int h = kv * SHAPE.group(); h < (kv + 1) * SHAPE.group(); h++) {
                    for (int p = 0; p < t.length(); p++) {
                        double[] a = att.probabilities(layer, h, p);
                        if (p >= firstNeedleQuery) {
                            assertEquals(needle, Attention.argmax(a), "needle query " + p);
                        } else {
                            // noise on the sink and heavy hitter logits (std ~0.9 each) can, for a rare
                            // query, tip the balance to the heavy hitters; so this is a statement on the mass
                            double m = sinkMass(a, 4);
                            sinkTotal += m;
                            sinkMajority += m > 0.5 ? 1 : 0;
                            sinkQueries++;
                            for (int j = 0; j < a.length; j++) {
                                acc[j] += a[j];
                            }
                        }
                        if (p >= 188) {
                            for (int i = 0; i < 8; i++) {
                                assertEquals(a[60 + i], a[180 + i], 1e-12);
                            }
                        }
                    }
                }
                // the sinks take most of everything, so "average" here is over the tokens a policy chooses among
                double mean = (sum(acc) - sinkMass(acc, 4)) / (acc.length - 4);
                double ordinary = 0;
                int ordinaryCount = 0;
                for (int j = 4; j < acc.length; j++) {
                    if (!g.planted().heavyHitters().contains(j)) {
                        ordinary += acc[j];
                        ordinaryCount++;
                    }
                }
                for (int p : g.planted().heavyHitters()) {
                    assertTrue(acc[p] > 2 * mean, "heavy hitter " + p + " above the mean " + mean + ": " + acc[p]);
                    assertTrue(acc[p] > 5 * ordinary / ordinaryCount, "heavy hitter " + p + " far above ordinary tokens");
                }
            }
        }
        assertTrue(sinkTotal / sinkQueries > 0.8, "the sinks take most of the mass: " + sinkTotal / sinkQueries);
        assertTrue(sinkMajority > 0.95 * sinkQueries, "and most of nearly every query's: " + sinkMajority + " of " + sinkQueries);
    }

    private static double sum(double[] x) {
        double s = 0;
        for (double v : x) {
            s += v;
        }
        return s;
    }
}
