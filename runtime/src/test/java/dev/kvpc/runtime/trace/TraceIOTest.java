package dev.kvpc.runtime.trace;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.zip.CRC32;

import static org.junit.jupiter.api.Assertions.*;

class TraceIOTest {
    private static final TraceShape SHAPE = new TraceShape(2, 4, 2, 3);

    /** A small trace with chunks, decodes and attributes: every part of the format. */
    private static Trace small() {
        return TraceGenerator.generate(TraceGenerator.Options.of(SHAPE).withSeed(11).withPrefill(5).withChunk(3)
                .withDecode(2).withSinks(1)).trace();
    }

    static byte[] bytes(Trace t) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        TraceIO.write(t, out);
        return out.toByteArray();
    }

    private static Trace read(byte[] b) throws IOException {
        return TraceIO.read(new ByteArrayInputStream(b));
    }

    private static TraceFormatException rejected(byte[] b) {
        return assertThrows(TraceFormatException.class, () -> read(b));
    }

    private static int headerLength(byte[] file) {
        String s = new String(file, StandardCharsets.ISO_8859_1);
        return s.indexOf("\nend\n") + 5;
    }

    /** A file with the given header text (CRC fixed up) and body bytes. */
    private static byte[] withHeader(String header, byte[] body) {
        byte[] h = header.getBytes(StandardCharsets.US_ASCII);
        CRC32 crc = new CRC32();
        crc.update(h);
        ByteBuffer b = ByteBuffer.allocate(h.length + 4 + body.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put(h).putInt((int) crc.getValue()).put(body);
        return b.array();
    }

    @Test
    void roundTrips() throws IOException {
        for (Trace t : List.of(small(),
                TraceGenerator.random(new TraceShape(1, 1, 1, 1), 3),
                TraceGenerator.generate(TraceGenerator.Options.of(new TraceShape(3, 8, 2, 16)).withSeed(4).withPrefill(70)
                        .withDecode(9).withHeavyHitters(3).withNeedle(30, 2).withRepeat(40, 5, 60)).trace(),
                new Trace(SHAPE, List.of(new Trace.Prefill(TraceTest.labelled(SHAPE, 2))), java.util.Map.of()))) {
            byte[] b = bytes(t);
            Trace back = read(b);
            assertEquals(t, back);
            assertArrayEquals(b, bytes(back), "writing what was read gives the same bytes");
        }
    }

    @Test
    void headerIsTextAndTheBodyFollowsTheDocumentedLayout() throws IOException {
        Trace t = small();
        byte[] b = bytes(t);
        int h = headerLength(b);
        String header = new String(b, 0, h, StandardCharsets.US_ASCII);
        assertEquals("KVPTRACE 1\n"
                + "shape layers=2 heads=4 kv_heads=2 head_dim=3\n"
                + "steps count=4 tokens=7\n"
                + "attr generator=TraceGenerator seed=11 prefill=5 chunk=3 decode=2\n"
                + "attr planted.sinks=0..0 logit=8.0\n"
                + "end\n", header);
        ByteBuffer body = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        CRC32 crc = new CRC32();
        crc.update(b, 0, h);
        assertEquals((int) crc.getValue(), body.getInt(h));
        int at = h + 4;
        int kv = SHAPE.kvWidth();
        int q = SHAPE.qWidth();
        for (int s = 0; s < t.steps().size(); s++) {
            Trace.Step step = t.steps().get(s);
            int start = at;
            assertEquals("CCDD".charAt(s), (char) b[at], "kind of step " + s);
            assertEquals(step.tokens(), body.getInt(at + 1));
            at += 5;
            for (int layer = 0; layer < SHAPE.layers(); layer++) {
                // the first and the last key, value and query of the layer, little-endian, in layout order
                assertEquals(step.k(layer, 0, 0, 0), body.getFloat(at));
                assertEquals(step.k(layer, step.tokens() - 1, 1, 2), body.getFloat(at + (step.tokens() * kv - 1) * 4));
                at += step.tokens() * kv * 4;
                assertEquals(step.v(layer, 0, 0, 0), body.getFloat(at));
                at += step.tokens() * kv * 4;
                assertEquals(step.q(layer, 0, 0, 0), body.getFloat(at));
                assertEquals(step.q(layer, step.tokens() - 1, 3, 2), body.getFloat(at + (step.tokens() * q - 1) * 4));
                at += step.tokens() * q * 4;
            }
            crc.reset();
            crc.update(b, start, at - start);
            assertEquals((int) crc.getValue(), body.getInt(at), "checksum of step " + s);
            at += 4;
        }
        assertEquals(b.length, at, "nothing but the steps after the header");
        assertEquals(h + 4 + 4 * 9 + TraceIO.payloadBytes(SHAPE, 7), b.length, "compact: 9 bytes of framing per step");
    }

    @Test
    void truncationAtEveryOffsetIsReportedWhereTheFileEnds() throws IOException {
        byte[] b = bytes(small());
        for (int n = 0; n < b.length; n++) {
            TraceFormatException e = rejected(Arrays.copyOf(b, n));
            assertEquals(n, e.offset(), "cut at " + n + ": " + e.getMessage());
            assertTrue(e.getMessage().startsWith("at byte " + n + ": "), e.getMessage());
            assertTrue(e.getMessage().contains(n == 0 ? "empty file" : "truncated"), e.getMessage());
        }
        String inFloats = rejected(Arrays.copyOf(b, headerLength(b) + 4 + 5 + 10)).getMessage();
        assertTrue(inFloats.contains("step 0 (chunk), layer 0 keys (") && inFloats.contains("more bytes expected"), inFloats);
    }

    @Test
    void everySingleByteCorruptionIsDetected() throws IOException {
        byte[] b = bytes(small());
        for (int i = 0; i < b.length; i++) {
            for (int flip : new int[] {0x01, 0x80, 0xff}) {
                byte[] c = b.clone();
                c[i] ^= (byte) flip;
                TraceFormatException e = assertThrows(TraceFormatException.class, () -> read(c),
                        "byte " + i + " xor " + flip + " went unnoticed");
                assertTrue(e.offset() >= 0 && e.offset() <= b.length, e.getMessage());
            }
        }
    }

    @Test
    void randomGarbageNeverEscapesAsAnotherException() {
        SplittableRandom r = new SplittableRandom(99);
        byte[] prefix = "KVPTRACE 1\nshape layers=1 heads=1 kv_heads=1 head_dim=1\n".getBytes(StandardCharsets.US_ASCII);
        for (int i = 0; i < 500; i++) {
            byte[] g = new byte[r.nextInt(200)];
            r.nextBytes(g);
            if (i % 2 == 0) { // half of them past the magic
                byte[] withPrefix = Arrays.copyOf(prefix, prefix.length + g.length);
                System.arraycopy(g, 0, withPrefix, prefix.length, g.length);
                g = withPrefix;
            }
            byte[] input = g;
            assertThrows(TraceFormatException.class, () -> read(input));
        }
    }

    @Test
    void badMagicAndVersion() throws IOException {
        byte[] b = bytes(small());
        byte[] magic = b.clone();
        magic[3] = 'X';
        TraceFormatException e = rejected(magic);
        assertEquals(0, e.offset());
        assertTrue(e.getMessage().contains("not a kvpc trace: starts with \"KVPXRACE\""), e.getMessage());
        assertTrue(rejected("GIF89a....".getBytes(StandardCharsets.US_ASCII)).getMessage().contains("not a kvpc trace"));

        String text = new String(b, StandardCharsets.ISO_8859_1).replaceFirst("KVPTRACE 1", "KVPTRACE 2");
        e = rejected(text.getBytes(StandardCharsets.ISO_8859_1));
        assertEquals(9, e.offset());
        assertTrue(e.getMessage().contains("unsupported trace version 2; this reader reads version 1"), e.getMessage());
        e = rejected("KVPTRACE one\n".getBytes(StandardCharsets.US_ASCII));
        assertEquals(8, e.offset());
        e = rejected("KVPTRACE 01\n".getBytes(StandardCharsets.US_ASCII));
        assertTrue(e.getMessage().contains("expected ' VERSION'"), e.getMessage());
    }

    @Test
    void absurdSizesAreRejectedBeforeAllocating() {
        // terabytes: would be an OutOfMemoryError if anything were allocated for them
        String shape = "KVPTRACE 1\nshape layers=32 heads=32 kv_heads=8 head_dim=128\n";
        TraceFormatException e = rejected(withHeader(shape + "steps count=1 tokens=2000000000\nend\n", new byte[0]));
        assertEquals(shape.length(), e.offset(), e.getMessage());
        assertTrue(e.getMessage().contains("the header declares 2000000000 tokens of layers=32 heads=32 kv_heads=8 head_dim=128, "
                + "1572864000000000 bytes of floats, more than the limit"), e.getMessage());
        e = rejected(withHeader("KVPTRACE 1\nshape layers=2147483647 heads=32768 kv_heads=32768 head_dim=65535\n"
                + "steps count=1 tokens=2147483647\nend\n", new byte[0]));
        assertTrue(e.getMessage().contains("over 2^63 bytes of floats"), e.getMessage());
        e = rejected(withHeader("KVPTRACE 1\nshape layers=1 heads=65536 kv_heads=1 head_dim=32768\n", new byte[0]));
        assertEquals(11, e.offset(), e.getMessage());
        assertTrue(e.getMessage().contains("exceed what one Java array holds"), e.getMessage());
        // a number that overflows an int is not a number here
        e = rejected(withHeader("KVPTRACE 1\nshape layers=2147483648 heads=1 kv_heads=1 head_dim=1\n", new byte[0]));
        assertEquals(17, e.offset(), e.getMessage());
        assertTrue(e.getMessage().contains("expected layers=N"), e.getMessage());
    }

    @Test
    void limitIsAppliedToTheDeclaredSize() throws IOException {
        byte[] b = bytes(small());
        long payload = TraceIO.payloadBytes(SHAPE, 7);
        assertEquals(small(), TraceIO.read(new ByteArrayInputStream(b), payload));
        TraceFormatException e = assertThrows(TraceFormatException.class,
                () -> TraceIO.read(new ByteArrayInputStream(b), payload - 1));
        assertTrue(e.getMessage().contains(payload + " bytes of floats, more than the limit of " + (payload - 1)), e.getMessage());
        assertEquals(Long.MAX_VALUE, TraceIO.payloadBytes(new TraceShape(65536, 32768, 32768, 65535), Integer.MAX_VALUE));
    }

    @Test
    void stepSizesAreCheckedAgainstTheHeader() throws IOException {
        byte[] b = bytes(small());
        int first = headerLength(b) + 4;
        for (int tokens : new int[] {0, -1, 8, Integer.MAX_VALUE}) {
            byte[] c = b.clone();
            ByteBuffer.wrap(c).order(ByteOrder.LITTLE_ENDIAN).putInt(first + 1, tokens);
            TraceFormatException e = rejected(c);
            assertEquals(first + 1, e.offset());
            assertTrue(e.getMessage().contains("step 0 (chunk) declares " + tokens + " tokens; 1 to 7 remain"), e.getMessage());
        }
        // more steps in the header than in the file; fewer tokens than declared
        String more = new String(b, StandardCharsets.ISO_8859_1);
        byte[] body = Arrays.copyOfRange(b, headerLength(b) + 4, b.length);
        String header = more.substring(0, headerLength(b));
        TraceFormatException e = rejected(withHeader(header.replace("steps count=4 tokens=7", "steps count=4 tokens=8"), body));
        assertTrue(e.getMessage().contains("the 4 steps hold 7 tokens, the header declares 8"), e.getMessage());
        assertEquals(b.length, e.offset());
        e = rejected(withHeader(header.replace("steps count=4 tokens=7", "steps count=3 tokens=7"), body));
        assertTrue(e.getMessage().contains("the 3 steps hold 6 tokens"), e.getMessage());
        e = rejected(withHeader(header.replace("steps count=4 tokens=7", "steps count=9 tokens=7"), body));
        assertTrue(e.getMessage().contains("1 <= steps <= tokens"), e.getMessage());
    }

    @Test
    void stepOrderIsChecked() throws IOException {
        byte[] b = bytes(small());
        int first = headerLength(b) + 4;
        byte[] c = b.clone();
        c[first] = 'D';
        assertTrue(rejected(c).getMessage().contains("step 0 (decode): a trace starts with a prefill or a chunk"));
        c[first] = 'Q';
        assertTrue(rejected(c).getMessage().contains("step 0 has kind byte 0x51"), rejected(c).getMessage());
    }

    @Test
    void nonFiniteFloatsAreRejectedEvenWithAValidChecksum() throws IOException {
        byte[] b = bytes(small());
        int step = headerLength(b) + 4;
        int floatAt = step + 5 + 8;
        ByteBuffer buf = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        buf.putFloat(floatAt, Float.NaN);
        int stepBytes = 5 + (int) (3 * SHAPE.layers() * (2 * SHAPE.kvWidth() + SHAPE.qWidth()) * 4L);
        CRC32 crc = new CRC32();
        crc.update(b, step, stepBytes);
        buf.putInt(step + stepBytes, (int) crc.getValue());
        TraceFormatException e = rejected(b);
        assertEquals(floatAt, e.offset());
        assertTrue(e.getMessage().contains("layer 0 keys hold NaN at index 2; trace values must be finite"), e.getMessage());
    }

    @Test
    void checksumsNameTheCorruptPart() throws IOException {
        byte[] b = bytes(small());
        byte[] c = b.clone();
        c[c.length - 20] ^= 0x04; // a float of the last step
        TraceFormatException e = rejected(c);
        assertTrue(e.getMessage().contains("step 3 (decode) checksum mismatch"), e.getMessage());
        assertEquals(b.length - 4, e.offset());
        byte[] h = b.clone();
        int digit = new String(b, StandardCharsets.ISO_8859_1).indexOf("head_dim=3") + 9;
        h[digit] = '4';
        e = rejected(h);
        assertTrue(e.getMessage().contains("header checksum mismatch"), e.getMessage());
        assertEquals(headerLength(b), e.offset());
    }

    @Test
    void headerSyntaxErrors() throws IOException {
        byte[] body = new byte[0];
        assertEquals(11, rejected(withHeader("KVPTRACE 1\nshape layers=1 heads=1 kv_heads=1\n", body)).offset());
        TraceFormatException e = rejected(withHeader("KVPTRACE 1\nshape layers=1 heads=1 kv_heads=1 head_dim=x1\n", body));
        assertEquals("KVPTRACE 1\nshape layers=1 heads=1 kv_heads=1 ".length(), e.offset());
        assertTrue(e.getMessage().contains("found \"head_dim=x1\""), e.getMessage());
        e = rejected(withHeader("KVPTRACE 1\nshape layers=1 heads=3 kv_heads=2 head_dim=1\n", body));
        assertTrue(e.getMessage().contains("not a multiple"), e.getMessage());
        String ok = "KVPTRACE 1\nshape layers=1 heads=1 kv_heads=1 head_dim=1\nsteps count=1 tokens=1\n";
        e = rejected(withHeader(ok + "attr a=1\nattr a=2\nend\n", body));
        assertTrue(e.getMessage().contains("attribute a appears twice"), e.getMessage());
        e = rejected(withHeader(ok + "attr Bad=1\nend\n", body));
        assertTrue(e.getMessage().contains("attribute key \"Bad\""), e.getMessage());
        e = rejected(withHeader(ok + "comment\nend\n", body));
        assertTrue(e.getMessage().contains("expected 'attr KEY=VALUE' or 'end'"), e.getMessage());
        e = rejected((ok + "attr x=caf\u00e9\nend\n").getBytes(StandardCharsets.ISO_8859_1));
        assertTrue(e.getMessage().contains("byte 0xe9 in the header"), e.getMessage());
        assertEquals(ok.length() + 10, e.offset());
        e = rejected((ok + "attr x=" + "y".repeat(5000)).getBytes(StandardCharsets.US_ASCII));
        assertTrue(e.getMessage().contains("header line longer than 2048 bytes"), e.getMessage());
    }

    @Test
    void trailingDataIsRejected() throws IOException {
        byte[] b = bytes(small());
        byte[] c = Arrays.copyOf(b, b.length + 1);
        TraceFormatException e = rejected(c);
        assertEquals(b.length, e.offset());
        assertTrue(e.getMessage().contains("unexpected data after the last step"));
    }

    @Test
    void streamsThatThrowAtTheirEndStillGiveAFormatError() throws IOException {
        byte[] b = Arrays.copyOf(bytes(small()), 100);
        InputStream throwing = new InputStream() {
            int i;

            @Override
            public int read() throws IOException {
                if (i == b.length) {
                    throw new EOFException("no more");
                }
                return b[i++] & 0xff;
            }
        };
        TraceFormatException e = assertThrows(TraceFormatException.class, () -> TraceIO.read(throwing));
        assertTrue(e.getMessage().contains("truncated"), e.getMessage());
    }

    @Test
    void filesCarryTheirNameIntoErrors(@TempDir Path dir) throws IOException {
        Path good = dir.resolve("good.kvptrace");
        TraceIO.write(small(), good);
        assertEquals(small(), TraceIO.read(good));
        Path bad = dir.resolve("bad.kvptrace");
        Files.write(bad, Arrays.copyOf(Files.readAllBytes(good), 30));
        TraceFormatException e = assertThrows(TraceFormatException.class, () -> TraceIO.read(bad));
        assertTrue(e.getMessage().startsWith(bad + ": at byte 30: truncated"), e.getMessage());
        assertEquals(bad.toString(), e.source());
        assertEquals(30, e.offset());
    }
}
