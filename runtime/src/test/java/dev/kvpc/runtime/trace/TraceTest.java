package dev.kvpc.runtime.trace;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class TraceTest {
    private static final TraceShape SHAPE = new TraceShape(2, 4, 2, 3);

    /** A step whose every float encodes where it is: 1000*layer + 100*token + 10*head + channel (+0.5 for v, q negative). */
    static StepData labelled(TraceShape s, int tokens) {
        float[][] k = new float[s.layers()][tokens * s.kvWidth()];
        float[][] v = new float[s.layers()][tokens * s.kvWidth()];
        float[][] q = new float[s.layers()][tokens * s.qWidth()];
        for (int layer = 0; layer < s.layers(); layer++) {
            for (int t = 0; t < tokens; t++) {
                for (int c = 0; c < s.headDim(); c++) {
                    for (int g = 0; g < s.kvHeads(); g++) {
                        float label = 1000 * layer + 100 * t + 10 * g + c;
                        k[layer][(t * s.kvHeads() + g) * s.headDim() + c] = label;
                        v[layer][(t * s.kvHeads() + g) * s.headDim() + c] = label + 0.5f;
                    }
                    for (int h = 0; h < s.heads(); h++) {
                        q[layer][(t * s.heads() + h) * s.headDim() + c] = -(1000 * layer + 100 * t + 10 * h + c);
                    }
                }
            }
        }
        return new StepData(s, tokens, k, v, q);
    }

    @Test
    void accessorsFollowTheDocumentedLayout() {
        StepData d = labelled(SHAPE, 3);
        assertEquals(1000 + 200 + 10 + 2, d.k(1, 2, 1, 2));
        assertEquals(1000 + 200 + 10 + 2.5f, d.v(1, 2, 1, 2));
        assertEquals(-(100 + 30 + 1), d.q(0, 1, 3, 1));
        assertEquals(d.keys(1)[(2 * 2 + 1) * 3 + 2], d.k(1, 2, 1, 2));
        assertEquals(d.queries(0)[(1 * 4 + 3) * 3 + 1], d.q(0, 1, 3, 1));
        assertArrayEquals(new float[] {110, 111, 112}, d.key(0, 1, 1));
        assertArrayEquals(new float[] {-130, -131, -132}, d.query(0, 1, 3));
        MemorySegment seg = d.valueSegment(1);
        assertEquals(d.v(1, 2, 1, 2), seg.getAtIndex(ValueLayout.JAVA_FLOAT, d.kvIndex(2, 1, 2)));
        assertTrue(seg.isReadOnly());
        assertThrows(IllegalArgumentException.class, () -> seg.setAtIndex(ValueLayout.JAVA_FLOAT, 0, 1f));
        // every index is checked on its own: channel 3 must not silently read the next head
        assertThrows(IndexOutOfBoundsException.class, () -> d.k(0, 0, 0, 3));
        assertThrows(IndexOutOfBoundsException.class, () -> d.q(0, 0, 4, 0));
        assertThrows(IndexOutOfBoundsException.class, () -> d.k(2, 0, 0, 0));
        assertThrows(IndexOutOfBoundsException.class, () -> d.v(0, 3, 0, 0));
    }

    @Test
    void stepsCannotBeChangedFromOutside() {
        float[][] k = {new float[6], new float[6]};
        float[][] v = {new float[6], new float[6]};
        float[][] q = {new float[12], new float[12]};
        StepData d = new StepData(SHAPE, 1, k, v, q);
        k[0][0] = 7;
        assertEquals(0, d.k(0, 0, 0, 0), "the constructor copies");
        d.keys(0)[0] = 7;
        d.key(0, 0, 0)[0] = 7;
        assertEquals(0, d.k(0, 0, 0, 0), "accessors hand out copies");
        Trace t = new Trace(SHAPE, new ArrayList<>(List.of(new Trace.Prefill(d))));
        assertThrows(UnsupportedOperationException.class, () -> t.steps().add(new Trace.Decode(d)));
        assertThrows(UnsupportedOperationException.class, () -> t.attributes().put("a", "b"));
    }

    @Test
    void stepDataChecksSizesAndValues() {
        float[][] ok = {new float[6], new float[6]};
        float[][] q = {new float[12], new float[12]};
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new StepData(SHAPE, 1, new float[][] {new float[6]}, ok, q))
                .getMessage().contains("1 layers"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new StepData(SHAPE, 1, ok, ok, ok))
                .getMessage().contains("q of layer 0 has 6 floats, expected 12"));
        assertThrows(IllegalArgumentException.class, () -> new StepData(SHAPE, 0, new float[][] {{}, {}}, new float[][] {{}, {}},
                new float[][] {{}, {}}));
        float[][] nan = {new float[6], new float[6]};
        nan[1][4] = Float.NaN;
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new StepData(SHAPE, 1, ok, nan, q)).getMessage()
                .contains("finite"));
        float[][] inf = {new float[6], new float[6]};
        inf[0][0] = Float.NEGATIVE_INFINITY;
        assertThrows(IllegalArgumentException.class, () -> new StepData(SHAPE, 1, inf, ok, q));
        assertThrows(NullPointerException.class, () -> new StepData(SHAPE, 1, new float[][] {null, new float[6]}, ok, q));
    }

    @Test
    void positionsRunThroughTheSteps() {
        Trace t = new Trace(SHAPE, List.of(new Trace.Chunk(labelled(SHAPE, 3)), new Trace.Chunk(labelled(SHAPE, 2)),
                new Trace.Decode(labelled(SHAPE, 1)), new Trace.Decode(labelled(SHAPE, 1))));
        assertEquals(7, t.length());
        assertEquals(5, t.prefillLength());
        assertEquals(2, t.decodeSteps());
        assertTrue(t.chunked());
        assertEquals(List.of(0, 3, 5, 6), List.of(t.start(0), t.start(1), t.start(2), t.start(3)));
        int[] expectedStep = {0, 0, 0, 1, 1, 2, 3};
        for (int p = 0; p < 7; p++) {
            assertEquals(expectedStep[p], t.stepIndexOf(p), "position " + p);
        }
        assertThrows(IndexOutOfBoundsException.class, () -> t.stepIndexOf(7));
        // position 4 is token 1 of the second chunk
        assertEquals(100 + 10 + 2, t.k(0, 4, 1, 2));
        assertEquals(t.steps().get(1).k(1, 1, 0, 1), t.k(1, 4, 0, 1));
        assertEquals(-(1000 + 30), t.q(1, 6, 3, 0));
        assertEquals(0.5f, t.v(0, 5, 0, 0));
        assertEquals(List.of("chunk", "chunk", "decode", "decode"), t.steps().stream().map(Trace.Step::kind).toList());
    }

    @Test
    void stepsMustBeAPrefillThenDecodes() {
        StepData one = labelled(SHAPE, 1);
        StepData two = labelled(SHAPE, 2);
        assertThrows(IllegalArgumentException.class, () -> new Trace(SHAPE, List.of()));
        assertThrows(IllegalArgumentException.class, () -> new Trace(SHAPE, List.of(new Trace.Decode(one))));
        assertThrows(IllegalArgumentException.class, () -> new Trace(SHAPE, List.of(new Trace.Prefill(one), new Trace.Prefill(one))));
        String m = assertThrows(IllegalArgumentException.class,
                () -> new Trace(SHAPE, List.of(new Trace.Prefill(one), new Trace.Chunk(one)))).getMessage();
        assertTrue(m.contains("step 1 (chunk)"), m);
        assertThrows(IllegalArgumentException.class,
                () -> new Trace(SHAPE, List.of(new Trace.Chunk(one), new Trace.Decode(one), new Trace.Chunk(one))));
        assertThrows(IllegalArgumentException.class,
                () -> new Trace(SHAPE, List.of(new Trace.Prefill(one), new Trace.Decode(one), new Trace.Prefill(one))));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new Trace.Decode(two)).getMessage()
                .contains("exactly one token"));
        StepData other = labelled(new TraceShape(2, 4, 4, 3), 1);
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> new Trace(SHAPE, List.of(new Trace.Prefill(one), new Trace.Decode(other)))).getMessage().contains("step 1"));
        // and the legal orders
        assertEquals(1, new Trace(SHAPE, List.of(new Trace.Prefill(one))).length());
        assertEquals(4, new Trace(SHAPE, List.of(new Trace.Chunk(two), new Trace.Chunk(one), new Trace.Decode(one))).length());
    }

    @Test
    void attributesAreCheckedAndSorted() {
        List<Trace.Step> steps = List.of(new Trace.Prefill(labelled(SHAPE, 1)));
        Trace t = new Trace(SHAPE, steps, Map.of("zeta", "1", "alpha.x", "a b=c"));
        assertEquals(List.of("alpha.x", "zeta"), List.copyOf(t.attributes().keySet()));
        assertEquals("2", t.withAttribute("zeta", "2").attributes().get("zeta"));
        assertEquals("1", t.attributes().get("zeta"), "withAttribute leaves the original alone");
        for (Map<String, String> bad : List.of(Map.of("Upper", "x"), Map.of("a b", "x"), Map.of("", "x"),
                Map.of("k", "has # hash"), Map.of("k", " padded"), Map.of("k", "tab\there"), Map.of("k", "caf\u00e9"),
                Map.of("k".repeat(65), "x"), Map.of("k", "x".repeat(1025)))) {
            assertThrows(IllegalArgumentException.class, () -> new Trace(SHAPE, steps, bad), bad.toString());
        }
        assertEquals("", new Trace(SHAPE, steps, Map.of("k", "")).attributes().get("k"));
    }

    @Test
    void equalityIsByValue() {
        Trace a = new Trace(SHAPE, List.of(new Trace.Prefill(labelled(SHAPE, 2)), new Trace.Decode(labelled(SHAPE, 1))));
        Trace b = new Trace(SHAPE, List.of(new Trace.Prefill(labelled(SHAPE, 2)), new Trace.Decode(labelled(SHAPE, 1))));
        assertEquals(a, b);
        assertEquals(a.hashCode(), b.hashCode());
        assertNotEquals(a, a.withAttribute("x", "y"));
        Trace chunked = new Trace(SHAPE, List.of(new Trace.Chunk(labelled(SHAPE, 2)), new Trace.Decode(labelled(SHAPE, 1))));
        assertNotEquals(a, chunked, "a chunk is not a prefill");
        float[][] k = {labelled(SHAPE, 1).keys(0), labelled(SHAPE, 1).keys(1)};
        k[1][5] = Math.nextUp(k[1][5]);
        StepData nudged = new StepData(SHAPE, 1, k, new float[][] {labelled(SHAPE, 1).values(0), labelled(SHAPE, 1).values(1)},
                new float[][] {labelled(SHAPE, 1).queries(0), labelled(SHAPE, 1).queries(1)});
        assertNotEquals(a, new Trace(SHAPE, List.of(new Trace.Prefill(labelled(SHAPE, 2)), new Trace.Decode(nudged))),
                "one ulp in one float makes a different trace");
    }

    @Test
    void describeSaysHowTheTokensAreFed() {
        Trace t = TraceGenerator.generate(TraceGenerator.Options.of(SHAPE).withPrefill(10).withChunk(4).withDecode(3)
                .withSeed(5)).trace();
        String d = t.describe();
        assertTrue(d.contains("layers=2 heads=4 kv_heads=2 head_dim=3 (group 2)"), d);
        assertTrue(d.contains("13 tokens: prefill 10 in 3 chunks of 4 (last 2), then 3 decode steps"), d);
        assertTrue(d.contains("generator = TraceGenerator seed=5"), d);
        Trace single = new Trace(SHAPE, List.of(new Trace.Prefill(labelled(SHAPE, 1))));
        assertTrue(single.describe().contains("1 token: prefill 1, then 0 decode steps"), single.describe());
        Trace irregular = new Trace(SHAPE, List.of(new Trace.Chunk(labelled(SHAPE, 1)), new Trace.Chunk(labelled(SHAPE, 3))));
        assertTrue(irregular.describe().contains("in 2 chunks [1, 3]"), irregular.describe());
    }
}
