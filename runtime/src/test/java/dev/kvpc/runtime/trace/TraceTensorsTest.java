package dev.kvpc.runtime.trace;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Traces from tensors a Python user saves: a generated trace written as safetensors (with metadata), as an .npz and as
 * a folder of .npy files reads back equal to itself, steps and attributes; float16 storage gives the values rounded to
 * float16; what is missing or malformed is refused naming the file and the reason.
 */
class TraceTensorsTest {
    static final TraceShape SHAPE = new TraceShape(2, 4, 2, 8);
    static Trace trace;
    static final int PREFILL = 12, DECODE = 5, TOKENS = PREFILL + DECODE;

    @BeforeAll
    static void generate() {
        trace = TraceGenerator.generate(TraceGenerator.Options.of(SHAPE).withSeed(3).withPrefill(PREFILL).withDecode(DECODE)).trace()
                .withAttribute("rope.theta", "10000");
    }

    /** Tensor {@code t} of the trace as [layers, tokens, heads, headDim], C order. */
    static float[] array(Trace tr, String t) {
        int heads = t.equals("q") ? SHAPE.heads() : SHAPE.kvHeads(), d = SHAPE.headDim();
        float[] out = new float[SHAPE.layers() * TOKENS * heads * d];
        int i = 0;
        for (int l = 0; l < SHAPE.layers(); l++) {
            for (int p = 0; p < TOKENS; p++) {
                for (int h = 0; h < heads; h++) {
                    for (int c = 0; c < d; c++) {
                        out[i++] = switch (t) {
                            case "q" -> tr.q(l, p, h, c);
                            case "k" -> tr.k(l, p, h, c);
                            default -> tr.v(l, p, h, c);
                        };
                    }
                }
            }
        }
        return out;
    }

    static long[] shapeOf(String t) {
        return new long[] {SHAPE.layers(), TOKENS, t.equals("q") ? SHAPE.heads() : SHAPE.kvHeads(), SHAPE.headDim()};
    }

    static byte[] values(float[] a, String dtype) {
        ByteBuffer b = ByteBuffer.allocate(a.length * (dtype.equals("F16") ? 2 : dtype.equals("F64") ? 8 : 4)).order(ByteOrder.LITTLE_ENDIAN);
        for (float x : a) {
            switch (dtype) {
                case "F16" -> b.putShort(Float.floatToFloat16(x));
                case "F64" -> b.putDouble(x);
                default -> b.putFloat(x);
            }
        }
        return b.array();
    }

    static byte[] safetensors(String dtype, String metadata, String... tensors) throws IOException {
        StringBuilder h = new StringBuilder("{\"__metadata__\":{" + metadata + "}");
        ByteArrayOutputStream data = new ByteArrayOutputStream();
        for (String t : tensors) {
            byte[] v = values(array(trace, t), dtype);
            long[] s = shapeOf(t);
            h.append(",\"").append(t).append("\":{\"dtype\":\"").append(dtype).append("\",\"shape\":[").append(s[0]).append(',').append(s[1]).append(',')
                    .append(s[2]).append(',').append(s[3]).append("],\"data_offsets\":[").append(data.size()).append(',').append(data.size() + v.length).append("]}");
            data.write(v);
        }
        h.append('}');
        byte[] head = h.toString().getBytes(StandardCharsets.UTF_8);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(head.length).array());
        out.write(head);
        out.write(data.toByteArray());
        return out.toByteArray();
    }

    static byte[] npy(String descr, long[] shape, byte[] data, boolean fortran) throws IOException {
        StringBuilder s = new StringBuilder();
        for (long d : shape) s.append(d).append(", ");
        String header = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': (" + s.toString().strip() + "), }";
        int total = 10 + header.length() + 1;
        header += " ".repeat((64 - total % 64) % 64) + "\n";
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(0x93);
        out.write("NUMPY".getBytes(StandardCharsets.US_ASCII));
        out.write(new byte[] {1, 0});
        out.write(ByteBuffer.allocate(2).order(ByteOrder.LITTLE_ENDIAN).putShort((short) header.length()).array());
        out.write(header.getBytes(StandardCharsets.US_ASCII));
        out.write(data);
        return out.toByteArray();
    }

    static byte[] npyOf(String t, String dtype) throws IOException {
        return npy(dtype.equals("F64") ? "<f8" : dtype.equals("F16") ? "<f2" : "<f4", shapeOf(t), values(array(trace, t), dtype), false);
    }

    static byte[] prefillNpy(long n) throws IOException {
        return npy("<i8", new long[0], ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(n).array(), false);
    }

    @Test
    void safetensorsReadsBackTheTrace(@TempDir Path tmp) throws Exception {
        Path f = tmp.resolve("t.safetensors");
        StringBuilder meta = new StringBuilder("\"format\":\"pt\",\"prefill\":\"12\"");
        trace.attributes().forEach((k, v) -> meta.append(",\"").append(k).append("\":\"").append(v).append('"'));
        Files.write(f, safetensors("F32", meta.toString(), "q", "k", "v"));
        Trace back = TraceSpec.open(f.toString(), SHAPE);
        assertEquals(trace, back);
        assertEquals(PREFILL, back.prefillLength());
        assertEquals(DECODE, back.decodeSteps());
        assertEquals("10000", back.attributes().get("rope.theta"));
        assertFalse(back.attributes().containsKey("format"));
    }

    @Test
    void npzAndFolderReadBackTheTrace(@TempDir Path tmp) throws Exception {
        Path z = tmp.resolve("t.npz");
        try (ZipOutputStream out = new ZipOutputStream(Files.newOutputStream(z))) {
            for (String t : new String[] {"q", "k", "v"}) {
                out.putNextEntry(new ZipEntry(t + ".npy"));
                out.write(npyOf(t, "F32"));
            }
            out.putNextEntry(new ZipEntry("prefill.npy"));
            out.write(prefillNpy(PREFILL));
        }
        Trace back = TraceSpec.open(z.toString(), SHAPE);
        assertEquals(trace.steps(), back.steps());
        Path dir = Files.createDirectories(tmp.resolve("arrays"));
        for (String t : new String[] {"q", "k", "v"}) Files.write(dir.resolve(t + ".npy"), npyOf(t, "F64"));
        Files.write(dir.resolve("prefill.npy"), prefillNpy(PREFILL));
        assertEquals(trace.steps(), TraceSpec.open(dir.toString(), SHAPE).steps());
        // without prefill.npy: every token in one prefill step
        Files.delete(dir.resolve("prefill.npy"));
        Trace whole = TraceSpec.open(dir.toString(), SHAPE);
        assertEquals(1, whole.steps().size());
        assertEquals(TOKENS, whole.prefillLength());
    }

    @Test
    void float16IsRoundedToFloat16(@TempDir Path tmp) throws Exception {
        Path f = tmp.resolve("h.safetensors");
        Files.write(f, safetensors("F16", "\"prefill\":\"12\"", "q", "k", "v"));
        Trace back = TraceTensors.read(f);
        for (int l = 0; l < SHAPE.layers(); l++) {
            for (int p = 0; p < TOKENS; p++) {
                assertEquals(Float.float16ToFloat(Float.floatToFloat16(trace.k(l, p, 1, 3))), back.k(l, p, 1, 3));
                assertEquals(Float.float16ToFloat(Float.floatToFloat16(trace.q(l, p, 2, 5))), back.q(l, p, 2, 5));
            }
        }
    }

    @Test
    void whatCannotBeReadIsNamed(@TempDir Path tmp) throws Exception {
        Path f = tmp.resolve("missing.safetensors");
        Files.write(f, safetensors("F32", "", "q", "k"));
        assertTrue(refused(f).contains("missing.safetensors") && refused(f).contains("no tensor 'v'"), refused(f));
        Files.write(f, safetensors("F32", "\"prefill\":\"40\"", "q", "k", "v"));
        assertTrue(refused(f).contains("prefill is 40; it must be 1 to the 17 tokens"), refused(f));
        Files.write(f, safetensors("F32", "\"prefill\":\"x\"", "q", "k", "v"));
        assertTrue(refused(f).contains("not a whole number"), refused(f));
        byte[] bytes = safetensors("F32", "", "q", "k", "v");
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putFloat(bytes.length - 4, Float.NaN);
        Files.write(f, bytes);
        assertTrue(refused(f).contains("NaN") || refused(f).contains("finite"), refused(f));
        Files.write(f, java.util.Arrays.copyOf(safetensors("F32", "", "q", "k", "v"), 200));
        assertTrue(refused(f).contains("does not fit") || refused(f).contains("inside the file"), refused(f));
        Path dir = Files.createDirectories(tmp.resolve("bad"));
        Files.write(dir.resolve("q.npy"), npy("<f4", shapeOf("q"), values(array(trace, "q"), "F32"), true));
        Files.write(dir.resolve("k.npy"), npyOf("k", "F32"));
        Files.write(dir.resolve("v.npy"), npyOf("v", "F32"));
        assertTrue(refused(dir).contains("Fortran order"), refused(dir));
        Files.write(dir.resolve("q.npy"), npy("<i2", shapeOf("q"), new byte[2 * array(trace, "q").length], false));
        assertTrue(refused(dir).contains("q.npy is of type <i2"), refused(dir));
        Files.write(dir.resolve("q.npy"), npyOf("q", "F32"));
        Files.write(dir.resolve("k.npy"), npy("<f4", new long[] {2, TOKENS, 4, 4}, values(array(trace, "k"), "F32"), false));
        assertTrue(refused(dir).contains("k has shape [2, 17, 4, 4] but v [2, 17, 2, 8]"), refused(dir));
    }

    static String refused(Path p) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TraceSpec.open(p.toString(), SHAPE));
        return e.getMessage();
    }
}
