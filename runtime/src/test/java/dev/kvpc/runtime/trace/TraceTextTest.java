package dev.kvpc.runtime.trace;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

class TraceTextTest {

    private static final String EXAMPLE = """
            # two prompt tokens and one decode step, MQA with two query heads
            shape layers=1 heads=2 kv_heads=1 head_dim=2
            attr source hand written, for the test   # a trailing comment is not part of the value
            prefill
              layer 0 token 0 k 0.1 0.2 v 1 0 q 0.5 0.5 | 0.5 0.5
              layer 0 token 1 k 0 1   v 0 1 q 1 0 0 1
            decode
              layer 0 k -1.5 2e-3 v 3 4 q 1 1 | -1 -1
            """;

    @Test
    void parsesTheDocumentedExample() throws TraceFormatException {
        Trace t = TraceText.parse(EXAMPLE);
        assertEquals(new TraceShape(1, 2, 1, 2), t.shape());
        assertEquals(Map.of("source", "hand written, for the test"), t.attributes());
        assertEquals(3, t.length());
        assertEquals(2, t.prefillLength());
        assertInstanceOf(Trace.Prefill.class, t.steps().get(0));
        assertInstanceOf(Trace.Decode.class, t.steps().get(1));
        assertEquals(0.2f, t.k(0, 0, 0, 1));
        assertEquals(1f, t.v(0, 1, 0, 1));
        assertEquals(0.5f, t.q(0, 0, 1, 0));
        assertEquals(1f, t.q(0, 1, 0, 0));
        assertEquals(1f, t.q(0, 1, 1, 1));
        assertEquals(-1.5f, t.k(0, 2, 0, 0));
        assertEquals(2e-3f, t.k(0, 2, 0, 1));
        assertEquals(-1f, t.q(0, 2, 1, 1));
    }

    @Test
    void chunksUsePositionsAndLinesComeInAnyOrder() throws TraceFormatException {
        Trace t = TraceText.parse("""
                shape layers=2 heads=1 kv_heads=1 head_dim=1
                chunk
                  layer 1 token 1 k 11 v 0 q 0
                  layer 0 token 0 k 0 v 0 q 0
                  layer 1 token 0 k 10 v 0 q 0
                  layer 0 token 1 k 1 v 0 q 0
                chunk
                  layer 0 token 2 k 2 v 0 q 0
                  layer 1 token 2 k 12 v 0 q 0
                decode
                  layer 0 token 3 k 3 v 0 q 0
                  layer 1 k 13 v 0 q 0
                """);
        assertEquals(List.of(2, 1, 1), t.steps().stream().map(Trace.Step::tokens).toList());
        for (int p = 0; p < 4; p++) {
            assertEquals(p, t.k(0, p, 0, 0));
            assertEquals(10 + p, t.k(1, p, 0, 0));
        }
    }

    @Test
    void printThenParseGivesTheSameTrace() throws TraceFormatException {
        for (Trace t : List.of(TraceText.parse(EXAMPLE),
                TraceGenerator.generate(TraceGenerator.Options.of(new TraceShape(2, 4, 2, 5)).withSeed(1).withPrefill(9)
                        .withChunk(4).withDecode(3).withSinks(2).withNeedle(5, 1)).trace(),
                TraceGenerator.random(new TraceShape(1, 3, 3, 1), 2),
                oddFloats())) {
            String text = TraceText.print(t);
            assertEquals(t, TraceText.parse(text), text);
            assertEquals(text, TraceText.print(TraceText.parse(text)));
        }
    }

    /** Floats whose decimal form is easy to get wrong: subnormals, extremes, -0, values without a short decimal. */
    private static Trace oddFloats() {
        TraceShape s = new TraceShape(1, 1, 1, 8);
        float[] k = {Float.MIN_VALUE, -Float.MAX_VALUE, -0.0f, 0.1f, 1f / 3, 16777217f, 1e-38f, 123456.79f};
        float[] v = {Float.MIN_NORMAL, Float.MAX_VALUE, 0f, -1f, (float) Math.PI, 2e10f, 1.0000001f, 7e-45f};
        float[] q = {3.4e38f, -1.17549435E-38f, 100f, 1e7f, 1.5e-7f, 0.30000001f, -2.5f, 65504f};
        return new Trace(s, List.of(new Trace.Prefill(new StepData(s, 1, new float[][] {k}, new float[][] {v}, new float[][] {q}))));
    }

    @Test
    void printsOneReadableLinePerLayerAndToken() throws TraceFormatException {
        String printed = TraceText.print(TraceText.parse(EXAMPLE));
        assertEquals("""
                shape layers=1 heads=2 kv_heads=1 head_dim=2
                attr source hand written, for the test
                prefill
                  layer 0 token 0 k 0.1 0.2 v 1 0 q 0.5 0.5 | 0.5 0.5
                  layer 0 token 1 k 0 1 v 0 1 q 1 0 | 0 1
                decode
                  layer 0 k -1.5 0.002 v 3 4 q 1 1 | -1 -1
                """, printed);
    }

    @Test
    void acceptsCrLfAndBlankLines() throws TraceFormatException {
        String crlf = EXAMPLE.replace("\n", "\r\n\r\n");
        assertEquals(TraceText.parse(EXAMPLE), TraceText.parse(crlf));
    }

    @Test
    void mutatedTextNeverFailsWithAnythingButAFormatError() throws TraceFormatException {
        String text = TraceText.print(TraceGenerator.generate(TraceGenerator.Options.of(new TraceShape(2, 2, 1, 2))
                .withSeed(3).withPrefill(3).withChunk(2).withDecode(2)).trace());
        String alphabet = " \n|#-.e0123456789kvqlayertokn=";
        java.util.SplittableRandom r = new java.util.SplittableRandom(5);
        int parsed = 0;
        for (int i = 0; i < 2000; i++) {
            StringBuilder b = new StringBuilder(text);
            for (int m = 0; m < 1 + r.nextInt(3); m++) {
                int at = r.nextInt(b.length());
                switch (r.nextInt(3)) {
                    case 0 -> b.deleteCharAt(at);
                    case 1 -> b.insert(at, alphabet.charAt(r.nextInt(alphabet.length())));
                    default -> b.setCharAt(at, alphabet.charAt(r.nextInt(alphabet.length())));
                }
            }
            try {
                Trace t = TraceText.parse(b.toString());
                assertEquals(t, TraceText.parse(TraceText.print(t)), "whatever parses also round-trips");
                parsed++;
            } catch (TraceFormatException e) {
                assertTrue(e.line() >= 1 && e.column() >= 1, e.getMessage());
            }
        }
        assertTrue(parsed > 0 && parsed < 2000, "some mutations still parse (a digit changed), most do not: " + parsed);
    }

    private record Bad(String name, String text, int line, int column, String fragment) {
    }

    private static final String SHAPE = "shape layers=1 heads=2 kv_heads=1 head_dim=2\n";
    private static final String ROW0 = "  layer 0 token 0 k 1 2 v 3 4 q 5 6 7 8\n";

    @TestFactory
    Stream<DynamicTest> errorsNameLineAndColumn() {
        List<Bad> cases = List.of(
                new Bad("no shape first", "# c\nprefill\n", 2, 1, "expected 'shape"),
                new Bad("only comments", "# c\n\n  # d  \n", 3, 6, "no 'shape' line"),
                new Bad("empty text", "", 1, 1, "no 'shape' line"),
                new Bad("shape lacks a size", "shape layers=1 heads=2 kv_heads=1\n", 1, 34, "lacks head_dim=N"),
                new Bad("shape bad number", "shape layers=1 heads=two kv_heads=1 head_dim=2\n", 1, 22, "heads needs a whole number"),
                new Bad("shape unknown word", "shape layers=1 heads=2 kv_heads=1 head_dim=2 dim=3\n", 1, 46, "expected one of"),
                new Bad("shape twice a size", "shape layers=1 layers=2\n", 1, 16, "layers given twice"),
                new Bad("shape not divisible", "shape layers=1 heads=3 kv_heads=2 head_dim=2\n", 1, 7, "not a multiple"),
                new Bad("second shape", SHAPE + "shape layers=1 heads=1 kv_heads=1 head_dim=1\n", 2, 1, "a second 'shape'"),
                new Bad("no steps", SHAPE + "attr a b\n", 2, 9, "no steps"),
                new Bad("row before a step", SHAPE + ROW0, 2, 3, "before any 'prefill'"),
                new Bad("unknown keyword", SHAPE + "prefil\n", 2, 1, "expected 'attr', 'prefill'"),
                new Bad("step header with words", SHAPE + "prefill 3\n", 2, 9, "stands alone"),
                new Bad("decode first", SHAPE + "decode\n", 2, 1, "starts with a prefill or a chunk"),
                new Bad("chunk after prefill", SHAPE + "prefill\n" + ROW0 + "chunk\n", 4, 1, "a chunk can only"),
                new Bad("second prefill", SHAPE + "prefill\n" + ROW0 + "prefill\n", 4, 1, "a prefill can only be the first"),
                new Bad("attr after a step", SHAPE + "prefill\n" + ROW0 + "attr a b\n", 4, 1, "attributes come before"),
                new Bad("attr bad key", SHAPE + "attr Key b\n", 2, 6, "attribute key \"Key\""),
                new Bad("attr twice", SHAPE + "attr a 1\nattr a 2\n", 3, 6, "given twice"),
                new Bad("too few k", SHAPE + "prefill\n  layer 0 token 0 k 1 v 3 4 q 5 6 7 8\n", 3, 23,
                        "expected 2 numbers after 'k' (kv_heads 1 x head_dim 2), found 1 then \"v\""),
                new Bad("too many q", SHAPE + "prefill\n  layer 0 token 0 k 1 2 v 3 4 q 5 6 7 8 9\n", 3, 41,
                        "more than 4 numbers after 'q'"),
                new Bad("line ends early", SHAPE + "prefill\n  layer 0 token 0 k 1 2 v 3 4 q 5 6\n", 3, 36,
                        "expected 4 numbers after 'q' (heads 2 x head_dim 2), found 2"),
                new Bad("missing v", SHAPE + "prefill\n  layer 0 token 0 k 1 2 q 5 6 7 8\n", 3, 25, "expected 'v', found \"q\""),
                new Bad("bad number", SHAPE + "prefill\n  layer 0 token 0 k 1 2x v 3 4 q 5 6 7 8\n", 3, 23, "found 1 then \"2x\""),
                new Bad("NaN", SHAPE + "prefill\n  layer 0 token 0 k NaN 2 v 3 4 q 5 6 7 8\n", 3, 21, "found 0 then \"NaN\""),
                new Bad("overflow", SHAPE + "prefill\n  layer 0 token 0 k 1e39 2 v 3 4 q 5 6 7 8\n", 3, 21, "does not fit a float"),
                new Bad("misplaced bar", SHAPE + "prefill\n  layer 0 token 0 k 1 2 v 3 4 q 5 | 6 7 8\n", 3, 35,
                        "'|' separates heads; here it falls after 1"),
                new Bad("leading bar", SHAPE + "prefill\n  layer 0 token 0 k | 1 2 v 3 4 q 5 6 7 8\n", 3, 21, "'|' separates heads"),
                new Bad("layer out of range", SHAPE + "prefill\n  layer 1 token 0 k 1 2 v 3 4 q 5 6 7 8\n", 3, 9, "outside 0..0"),
                new Bad("layer not a number", SHAPE + "prefill\n  layer -1 token 0 k 1 2 v 3 4 q 5 6 7 8\n", 3, 9,
                        "expected a layer number (a whole number), found \"-1\""),
                new Bad("prefill row without token", SHAPE + "prefill\n  layer 0 k 1 2 v 3 4 q 5 6 7 8\n", 3, 11,
                        "expected 'token POSITION'"),
                new Bad("duplicate row", SHAPE + "prefill\n" + ROW0 + ROW0, 4, 17, "given twice (first on line 3)"),
                new Bad("missing row", SHAPE + "prefill\n" + ROW0 + "  layer 0 token 2 k 1 2 v 3 4 q 5 6 7 8\n", 2, 1,
                        "the prefill from line 2 has no line for layer 0 of position 1 (its positions run 0..2)"),
                new Bad("chunk position of an earlier step", SHAPE + "chunk\n" + ROW0 + "chunk\n" + ROW0, 5, 17,
                        "position 0 belongs to an earlier step; this chunk starts at position 1"),
                new Bad("decode at the wrong position", SHAPE + "prefill\n" + ROW0 + "decode\n  layer 0 token 5 k 1 2 v 3 4 q 5 6 7 8\n",
                        5, 17, "this decode step is at position 1, not 5"),
                new Bad("two decode rows for one layer", SHAPE + "prefill\n" + ROW0 + "decode\n  layer 0 k 1 2 v 3 4 q 5 6 7 8\n"
                        + "  layer 0 k 1 2 v 3 4 q 5 6 7 8\n", 6, 9, "given twice"),
                new Bad("empty decode", SHAPE + "prefill\n" + ROW0 + "decode\n", 4, 1, "has no line for layer 0 of position 1"),
                new Bad("junk after q", SHAPE + "prefill\n  layer 0 token 0 k 1 2 v 3 4 q 5 6 7 8 end\n", 3, 41, "unexpected \"end\""));
        return cases.stream().map(c -> DynamicTest.dynamicTest(c.name(), () -> {
            TraceFormatException e = assertThrows(TraceFormatException.class, () -> TraceText.parse(c.text()));
            assertTrue(e.getMessage().contains(c.fragment()), "expected '" + c.fragment() + "' in: " + e.getMessage());
            assertEquals(c.line(), e.line(), e.getMessage());
            assertEquals(c.column(), e.column(), e.getMessage());
            assertTrue(e.getMessage().startsWith("line " + c.line() + ", column " + c.column() + ": "), e.getMessage());
            assertEquals(-1, e.offset());
        }));
    }
}
