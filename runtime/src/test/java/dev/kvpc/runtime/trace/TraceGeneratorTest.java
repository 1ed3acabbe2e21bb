package dev.kvpc.runtime.trace;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.*;

class TraceGeneratorTest {
    private static final TraceShape SHAPE = new TraceShape(2, 4, 2, 8);
    private static final TraceGenerator.Options BASE = TraceGenerator.Options.of(SHAPE).withSeed(7).withPrefill(40)
            .withDecode(6);

    private static void assertSameValues(Trace a, Trace b) {
        assertEquals(a.length(), b.length());
        for (int layer = 0; layer < SHAPE.layers(); layer++) {
            for (int p = 0; p < a.length(); p++) {
                for (int g = 0; g < SHAPE.kvHeads(); g++) {
                    assertArrayEquals(a.key(layer, p, g), b.key(layer, p, g), "k at " + p);
                    assertArrayEquals(a.value(layer, p, g), b.value(layer, p, g), "v at " + p);
                }
                for (int h = 0; h < SHAPE.heads(); h++) {
                    assertArrayEquals(a.query(layer, p, h), b.query(layer, p, h), "q at " + p);
                }
            }
        }
    }

    @Test
    void sameSeedSameTraceOtherSeedOtherTrace() {
        TraceGenerator.Options o = BASE.withSinks(2).withHeavyHitters(2).withNeedle(30, 2).withRepeat(5, 3, 20);
        // two separate generations from the same options are equal (determinism)
        TraceGenerator.Generated first = TraceGenerator.generate(o), second = TraceGenerator.generate(o);
        assertEquals(first, second);
        Trace other = TraceGenerator.generate(o.withSeed(8)).trace();
        assertNotEquals(TraceGenerator.generate(o).trace(), other);
        assertNotEquals(TraceGenerator.random(SHAPE, 1).key(0, 0, 0)[0], TraceGenerator.random(SHAPE, 2).key(0, 0, 0)[0]);
    }

    @Test
    void chunkingRegroupsTheSameTokens() {
        Trace whole = TraceGenerator.generate(BASE).trace();
        assertEquals(2, whole.steps().size() - 5);
        assertInstanceOf(Trace.Prefill.class, whole.steps().getFirst());
        assertEquals(40, whole.steps().getFirst().tokens());
        Trace chunked = TraceGenerator.generate(BASE.withChunk(16)).trace();
        assertEquals(List.of(16, 16, 8, 1, 1, 1, 1, 1, 1), chunked.steps().stream().map(Trace.Step::tokens).toList());
        assertEquals(List.of("chunk", "chunk", "chunk", "decode", "decode", "decode", "decode", "decode", "decode"),
                chunked.steps().stream().map(Trace.Step::kind).toList());
        assertSameValues(whole, chunked);
        Trace oneChunk = TraceGenerator.generate(BASE.withChunk(100)).trace();
        assertInstanceOf(Trace.Chunk.class, oneChunk.steps().getFirst(), "a chunk size asks for chunks, even one");
        assertSameValues(whole, oneChunk);
        Trace noDecode = TraceGenerator.generate(BASE.withDecode(0)).trace();
        assertEquals(1, noDecode.steps().size());
        assertEquals(40, noDecode.length());
    }

    @Test
    void plantingsKeepTheRandomDrawsOfEveryToken() {
        Trace plain = TraceGenerator.generate(BASE).trace();
        Trace planted = TraceGenerator.generate(BASE.withSinks(3).withHeavyHitters(2).withNeedle(25, 3)).trace();
        for (int layer = 0; layer < SHAPE.layers(); layer++) {
            for (int p = 0; p < plain.length(); p++) {
                for (int g = 0; g < SHAPE.kvHeads(); g++) {
                    assertArrayEquals(plain.value(layer, p, g), planted.value(layer, p, g), "values are never planted");
                }
            }
        }
    }

    @Test
    void plainRandomHasUnitGaussianEntriesAndLogits() {
        Trace t = TraceGenerator.generate(TraceGenerator.Options.of(new TraceShape(1, 4, 2, 32)).withSeed(3)
                .withPrefill(512).withDecode(0)).trace();
        double[] kStats = moments(t.steps().getFirst().data().keys(0));
        double[] vStats = moments(t.steps().getFirst().data().values(0));
        double[] qStats = moments(t.steps().getFirst().data().queries(0));
        for (double[] m : List.of(kStats, vStats, qStats)) {
            assertEquals(0, m[0], 0.03, "mean");
            assertEquals(1, m[1], 0.05, "variance");
        }
        // logits of random pairs: variance 1 (q.k / sqrt(d) with unit-variance q and k), over many queries
        // (one query alone has variance |q|^2 / d, which itself varies by sqrt(2 / d))
        Attention att = new Attention(t);
        double s = 0;
        double s2 = 0;
        int n = 0;
        for (int h = 0; h < 4; h++) {
            for (int p = 448; p < 512; p++) {
                for (double z : att.logits(0, h, p)) {
                    s += z;
                    s2 += z * z;
                    n++;
                }
            }
        }
        assertEquals(0, s / n, 0.05);
        assertEquals(1, s2 / n - (s / n) * (s / n), 0.1);
    }

    private static double[] moments(float[] x) {
        double s = 0;
        double s2 = 0;
        for (float f : x) {
            s += f;
            s2 += (double) f * f;
        }
        double mean = s / x.length;
        return new double[] {mean, s2 / x.length - mean * mean};
    }

    @Test
    void reportsWhatItPlanted() {
        TraceGenerator.Generated g = TraceGenerator.generate(BASE.withSinks(3).withHeavyHitters(4).withRepeat(5, 3, 30)
                .withNeedle(10, 2));
        TraceGenerator.Planted p = g.planted();
        assertEquals(List.of(0, 1, 2), p.sinks());
        assertEquals(4, p.heavyHitters().size());
        assertEquals(4, p.heavyHitters().stream().distinct().count());
        for (int h : p.heavyHitters()) {
            assertTrue(h >= 3 && h < 20, "heavy hitters lie in the first half of the prefill after the sinks: " + h);
            assertTrue(h != 10 && (h < 5 || h >= 8), "heavy hitters avoid the needle and the repeat: " + h);
        }
        assertEquals(p.heavyHitters().stream().sorted().toList(), p.heavyHitters());
        assertEquals(new TraceGenerator.Repeat(5, 3, 30), p.repeat().orElseThrow());
        assertEquals(10, p.needle().orElseThrow());
        assertEquals(List.of(44, 45), p.needleQueries());
        var a = g.trace().attributes();
        assertEquals("0..2 logit=8.0", a.get("planted.sinks"));
        assertTrue(a.get("planted.heavy_hitters").startsWith(p.heavyHitters().getFirst() + " "), a.toString());
        assertEquals("from=5 length=3 to=30", a.get("planted.repeat"));
        assertEquals("10 queries=44..45 logit=10.0", a.get("planted.needle"));
        assertEquals("TraceGenerator seed=7 prefill=40 chunk=0 decode=6", a.get("generator"));
        TraceGenerator.Planted none = TraceGenerator.generate(BASE).planted();
        assertTrue(none.sinks().isEmpty() && none.heavyHitters().isEmpty() && none.repeat().isEmpty()
                && none.needle().isEmpty() && none.needleQueries().isEmpty());
        assertEquals(List.of("generator"), List.copyOf(TraceGenerator.generate(BASE).trace().attributes().keySet()));
    }

    @Test
    void rejectsOptionsThatDoNotFit() {
        rejects(o -> o.withSinks(41), "do not fit a prefill");
        rejects(o -> o.withNeedle(44, 2), "must come before its first query");
        rejects(o -> o.withNeedle(20, 7), "querying decode steps");
        rejects(o -> o.withNeedle(20, 0), "querying decode steps");
        rejects(o -> o.withSinks(4).withNeedle(2, 1), "is a sink");
        rejects(o -> o.withRepeat(5, 3, 30).withNeedle(31, 1), "inside the repeated block");
        rejects(o -> o.withRepeat(5, 3, 44), "runs past");
        rejects(o -> o.withSinks(4).withRepeat(2, 3, 20), "overlaps the sinks");
        rejects(o -> o.withHeavyHitters(21), "21 heavy hitters requested, but only 20 positions are free in 0..19");
        assertEquals(20, TraceGenerator.generate(BASE.withHeavyHitters(20)).planted().heavyHitters().size());
        rejects(o -> TraceGenerator.Options.of(new TraceShape(1, 2, 1, 2)).withSinks(1).withNeedle(3, 1), "head_dim > 2");
        assertThrows(IllegalArgumentException.class, () -> BASE.withRepeat(5, 3, 6));
        assertThrows(IllegalArgumentException.class, () -> BASE.withPrefill(0));
        assertThrows(IllegalArgumentException.class, () -> BASE.withDecode(-1));
        assertThrows(IllegalArgumentException.class, () -> BASE.withSinks(2, Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> BASE.withSinks(2, -1));
        assertThrows(IllegalArgumentException.class, () -> BASE.withHeavyHitters(2, 5, 1.5));
        assertThrows(IllegalArgumentException.class, () -> BASE.withNeedle(-3, 1));
        // a narrow head is fine without plantings, and with as many plantings as it has room for
        assertEquals(3, TraceGenerator.generate(TraceGenerator.Options.of(new TraceShape(1, 1, 1, 1)).withPrefill(2)
                .withDecode(1)).trace().length());
        assertEquals(3, TraceGenerator.generate(TraceGenerator.Options.of(new TraceShape(1, 1, 1, 2)).withPrefill(2)
                .withDecode(1).withSinks(1)).trace().length());
    }

    private static void rejects(UnaryOperator<TraceGenerator.Options> change, String fragment) {
        String m = assertThrows(IllegalArgumentException.class, () -> TraceGenerator.generate(change.apply(BASE)))
                .getMessage();
        assertTrue(m.contains(fragment), "expected '" + fragment + "' in: " + m);
    }
}
