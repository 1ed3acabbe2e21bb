package dev.kvpc.runtime.trace;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.CRC32;

/**
 * The binary trace file (version 1): a short text header anyone can read with {@code head}, then the floats.
 *
 * <pre>
 * header, ASCII lines each ending in '\n':
 *   KVPTRACE 1
 *   shape layers=L heads=H kv_heads=G head_dim=D
 *   steps count=S tokens=N
 *   attr KEY=VALUE                      zero or more, one per attribute, sorted by key
 *   end
 * u32  CRC-32 of the header bytes, from 'K' to the '\n' after "end"
 * S step records:
 *   u8   kind: 'P' prefill, 'C' chunk, 'D' decode
 *   i32  tokens T of the step
 *   for each layer 0..L-1:
 *     f32[T*G*D] keys, f32[T*G*D] values, f32[T*H*D] queries, each in the layout of {@link StepData}
 *   u32  CRC-32 of the record, from its kind byte to its last float
 * end of file
 * </pre>
 * All integers and floats are little-endian. Numbers in the header are decimal, without sign or leading zeros.
 *
 * <p>Reading checks everything: magic, version, the header's syntax and checksum, step order, each record's
 * size and checksum, that every float is finite and that nothing follows the last step. Any problem is a
 * {@link TraceFormatException} naming the byte offset. Sizes are checked against a memory limit before
 * anything is allocated for them, so a corrupt size never turns into an {@link OutOfMemoryError}.
 */
public final class TraceIO {
    /** The first eight bytes of every trace file. */
    public static final String MAGIC = "KVPTRACE";
    /** The version this class writes and reads. */
    public static final int VERSION = 1;

    private static final byte PREFILL = 'P';
    private static final byte CHUNK = 'C';
    private static final byte DECODE = 'D';
    private static final int MAX_HEADER_LINE = 2048;
    private static final int BUFFER = 1 << 16;

    private TraceIO() {
    }

    /** Writes {@code trace} to {@code out} (flushed, not closed). */
    public static void write(Trace trace, OutputStream out) throws IOException {
        byte[] header = header(trace);
        CRC32 crc = new CRC32();
        crc.update(header);
        out.write(header);
        Writer w = new Writer(out);
        w.putInt((int) crc.getValue());
        w.flush();
        for (Trace.Step step : trace.steps()) {
            w.crc.reset();
            w.put(switch (step) {
                case Trace.Prefill _ -> PREFILL;
                case Trace.Chunk _ -> CHUNK;
                case Trace.Decode _ -> DECODE;
            });
            w.putInt(step.tokens());
            StepData d = step.data();
            for (int layer = 0; layer < trace.shape().layers(); layer++) {
                w.putFloats(d.rawK(layer));
                w.putFloats(d.rawV(layer));
                w.putFloats(d.rawQ(layer));
            }
            w.flush();
            w.putInt((int) w.crc.getValue());
            w.flush();
        }
        out.flush();
    }

    /** Writes {@code trace} to a file, replacing it. */
    public static void write(Trace trace, Path file) throws IOException {
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(file), BUFFER)) {
            write(trace, out);
        }
    }

    private static byte[] header(Trace trace) {
        StringBuilder b = new StringBuilder();
        b.append(MAGIC).append(' ').append(VERSION).append('\n');
        b.append("shape ").append(trace.shape()).append('\n');
        b.append("steps count=").append(trace.steps().size()).append(" tokens=").append(trace.length()).append('\n');
        trace.attributes().forEach((k, v) -> b.append("attr ").append(k).append('=').append(v).append('\n'));
        b.append("end\n");
        return b.toString().getBytes(StandardCharsets.US_ASCII);
    }

    /** Exact size of the floats of a trace of {@code tokens} tokens, or {@link Long#MAX_VALUE} past 2^63. */
    public static long payloadBytes(TraceShape shape, long tokens) {
        try {
            long perToken = Math.multiplyExact((long) shape.layers(), 2L * shape.kvWidth() + shape.qWidth());
            return Math.multiplyExact(Math.multiplyExact(perToken, tokens), (long) Float.BYTES);
        } catch (ArithmeticException e) {
            return Long.MAX_VALUE;
        }
    }

    /** The memory limit {@link #read(InputStream)} applies: the heap this JVM can still grow into. */
    public static long defaultLimit() {
        Runtime rt = Runtime.getRuntime();
        return rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
    }

    /** Reads a trace file, with the file name in any error message. */
    public static Trace read(Path file) throws IOException {
        try (InputStream in = new BufferedInputStream(Files.newInputStream(file), BUFFER)) {
            return read(in);
        } catch (TraceFormatException e) {
            throw e.in(file.toString());
        }
    }

    /** Reads one trace, which must extend to the end of {@code in}, under {@link #defaultLimit()}. */
    public static Trace read(InputStream in) throws IOException {
        return read(in, defaultLimit());
    }

    /**
     * Reads one trace, which must extend to the end of {@code in} (not closed).
     *
     * @param maxPayloadBytes a trace whose floats would take more bytes is rejected before they are allocated
     * @throws TraceFormatException if the bytes are not a valid trace (truncated, corrupt, too large)
     * @throws IOException if {@code in} fails
     */
    public static Trace read(InputStream in, long maxPayloadBytes) throws IOException {
        Reader r = new Reader(in);
        try {
            return r.trace(maxPayloadBytes);
        } catch (EOFException e) { // from a stream that signals its end by throwing
            throw TraceFormatException.atByte(r.offset, "truncated: the file ends here");
        }
    }

    /** Buffers little-endian output and keeps a running CRC-32 of what it flushed. */
    private static final class Writer {
        final OutputStream out;
        final ByteBuffer buf = ByteBuffer.allocate(BUFFER).order(ByteOrder.LITTLE_ENDIAN);
        final CRC32 crc = new CRC32();

        Writer(OutputStream out) {
            this.out = out;
        }

        void put(byte b) throws IOException {
            room(1);
            buf.put(b);
        }

        void putInt(int i) throws IOException {
            room(Integer.BYTES);
            buf.putInt(i);
        }

        void putFloats(float[] a) throws IOException {
            int i = 0;
            while (i < a.length) {
                room(Float.BYTES);
                int n = Math.min(a.length - i, buf.remaining() / Float.BYTES);
                buf.asFloatBuffer().put(a, i, n);
                buf.position(buf.position() + n * Float.BYTES);
                i += n;
            }
        }

        private void room(int bytes) throws IOException {
            if (buf.remaining() < bytes) {
                flush();
            }
        }

        void flush() throws IOException {
            crc.update(buf.array(), 0, buf.position());
            out.write(buf.array(), 0, buf.position());
            buf.clear();
        }
    }

    /** Reads with a byte offset, a running CRC-32 and precise errors. */
    private static final class Reader {
        final InputStream in;
        final CRC32 crc = new CRC32();
        final byte[] buf = new byte[BUFFER];
        long offset;

        Reader(InputStream in) {
            this.in = in;
        }

        Trace trace(long maxPayloadBytes) throws IOException {
            magic();
            long at = offset;
            TraceShape shape = shape(line("the shape line"), at);
            at = offset;
            long[] counts = counts(line("the steps line"), at);
            int stepCount = (int) counts[0];
            int tokens = (int) counts[1];
            long bytes = payloadBytes(shape, tokens);
            if (bytes > maxPayloadBytes) {
                throw TraceFormatException.atByte(at, "the header declares " + tokens + " tokens of " + shape + ", "
                        + (bytes == Long.MAX_VALUE ? "over 2^63" : String.valueOf(bytes))
                        + " bytes of floats, more than the limit of " + maxPayloadBytes + " bytes");
            }
            Map<String, String> attributes = attributes();
            long headerCrc = crc.getValue();
            at = offset;
            long stored = u32("the header checksum");
            if (stored != headerCrc) {
                throw TraceFormatException.atByte(at, String.format(
                        "header checksum mismatch: stored %08x, computed %08x; the header is corrupt", stored, headerCrc));
            }
            List<Trace.Step> steps = new ArrayList<>(Math.min(stepCount, 1 << 16));
            int position = 0;
            for (int i = 0; i < stepCount; i++) {
                steps.add(step(shape, i, steps, tokens - position));
                position += steps.getLast().tokens();
            }
            if (position != tokens) {
                throw TraceFormatException.atByte(offset, "the " + stepCount + " steps hold " + position
                        + " tokens, the header declares " + tokens);
            }
            if (in.read() >= 0) {
                throw TraceFormatException.atByte(offset, "unexpected data after the last step");
            }
            try {
                return new Trace(shape, steps, attributes);
            } catch (IllegalArgumentException e) { // every rule was checked above; kept as a safety net
                throw TraceFormatException.atByte(offset, e.getMessage());
            }
        }

        private void magic() throws IOException {
            byte[] m = new byte[MAGIC.length()];
            int n = 0;
            while (n < m.length) {
                int b = in.read();
                if (b < 0) {
                    throw TraceFormatException.atByte(n, n == 0 ? "empty file, expected a kvpc trace"
                            : "truncated: the file ends inside the magic " + MAGIC);
                }
                m[n++] = (byte) b;
            }
            crc.update(m);
            if (!MAGIC.equals(new String(m, StandardCharsets.ISO_8859_1))) {
                throw TraceFormatException.atByte(0, "not a kvpc trace: starts with "
                        + Trace.quote(new String(m, StandardCharsets.ISO_8859_1)) + ", expected " + MAGIC);
            }
            offset = m.length;
            long at = offset;
            String rest = line("the version");
            if (!rest.startsWith(" ") || !isNumber(rest.substring(1))) {
                throw TraceFormatException.atByte(at, "expected ' VERSION' after the magic, found " + Trace.quote(rest));
            }
            if (!rest.substring(1).equals(String.valueOf(VERSION))) {
                throw TraceFormatException.atByte(at + 1, "unsupported trace version " + rest.substring(1)
                        + "; this reader reads version " + VERSION);
            }
        }

        private TraceShape shape(String line, long at) throws TraceFormatException {
            long[] v = fields(line, at, "shape", "layers", "heads", "kv_heads", "head_dim");
            try {
                return new TraceShape((int) v[0], (int) v[1], (int) v[2], (int) v[3]);
            } catch (IllegalArgumentException e) {
                throw TraceFormatException.atByte(at, e.getMessage());
            }
        }

        private long[] counts(String line, long at) throws TraceFormatException {
            long[] v = fields(line, at, "steps", "count", "tokens");
            if (v[0] < 1 || v[1] < 1 || v[0] > v[1]) {
                throw TraceFormatException.atByte(at, "a trace has 1 <= steps <= tokens, the header declares "
                        + v[0] + " steps and " + v[1] + " tokens");
            }
            return v;
        }

        /** Parses {@code word name1=int name2=int ...}, exactly these names in this order. */
        private static long[] fields(String line, long at, String word, String... names) throws TraceFormatException {
            String[] parts = line.split(" ", -1);
            if (parts.length != names.length + 1 || !parts[0].equals(word)) {
                throw TraceFormatException.atByte(at, "expected " + Trace.quote(word + " " + String.join("=N ", names) + "=N")
                        + ", found " + Trace.quote(line));
            }
            long[] values = new long[names.length];
            long col = at + word.length() + 1;
            for (int i = 0; i < names.length; i++) {
                String p = parts[i + 1];
                String prefix = names[i] + "=";
                if (!p.startsWith(prefix) || !isNumber(p.substring(prefix.length()))) {
                    throw TraceFormatException.atByte(col, "expected " + prefix + "N (a decimal number below 2^31), found "
                            + Trace.quote(p));
                }
                values[i] = Long.parseLong(p.substring(prefix.length()));
                col += p.length() + 1;
            }
            return values;
        }

        /** A decimal number without sign or leading zeros that fits an int. */
        private static boolean isNumber(String s) {
            if (s.isEmpty() || s.length() > 10 || (s.length() > 1 && s.charAt(0) == '0')) {
                return false;
            }
            for (int i = 0; i < s.length(); i++) {
                if (s.charAt(i) < '0' || s.charAt(i) > '9') {
                    return false;
                }
            }
            return Long.parseLong(s) <= Integer.MAX_VALUE;
        }

        private Map<String, String> attributes() throws IOException {
            Map<String, String> attributes = new TreeMap<>();
            while (true) {
                long at = offset;
                String line = line("the attributes or 'end'");
                if (line.equals("end")) {
                    return attributes;
                }
                if (!line.startsWith("attr ")) {
                    throw TraceFormatException.atByte(at, "expected 'attr KEY=VALUE' or 'end', found " + Trace.quote(line));
                }
                if (attributes.size() == Trace.MAX_ATTRIBUTES) {
                    throw TraceFormatException.atByte(at, "more than " + Trace.MAX_ATTRIBUTES + " attributes");
                }
                int eq = line.indexOf('=');
                if (eq < 0) {
                    throw TraceFormatException.atByte(at, "attribute without '=': " + Trace.quote(line));
                }
                String key = line.substring(5, eq);
                String value = line.substring(eq + 1);
                String problem = Trace.attributeProblem(key, value);
                if (problem != null) {
                    throw TraceFormatException.atByte(at + 5, problem);
                }
                if (attributes.put(key, value) != null) {
                    throw TraceFormatException.atByte(at + 5, "attribute " + key + " appears twice");
                }
            }
        }

        /** One header line without its '\n': printable ASCII, at most {@link #MAX_HEADER_LINE} bytes. */
        private String line(String what) throws IOException {
            StringBuilder b = new StringBuilder();
            while (true) {
                int c = in.read();
                if (c < 0) {
                    throw TraceFormatException.atByte(offset, "truncated: the file ends inside the header, in " + what);
                }
                crc.update(c);
                if (c == '\n') {
                    offset++;
                    return b.toString();
                }
                if (c < 0x20 || c > 0x7e) {
                    throw TraceFormatException.atByte(offset, String.format(
                            "byte 0x%02x in the header, in %s; the header is printable ASCII lines", c, what));
                }
                if (b.length() == MAX_HEADER_LINE) {
                    throw TraceFormatException.atByte(offset, "header line longer than " + MAX_HEADER_LINE
                            + " bytes, in " + what);
                }
                b.append((char) c);
                offset++;
            }
        }

        private Trace.Step step(TraceShape shape, int index, List<Trace.Step> before, int tokensLeft) throws IOException {
            long start = offset;
            crc.reset();
            fill(5, "the header of step " + index, 0);
            byte kind = buf[0];
            int tokens = ByteBuffer.wrap(buf, 1, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
            String name = switch (kind) {
                case PREFILL -> "prefill";
                case CHUNK -> "chunk";
                case DECODE -> "decode";
                default -> throw TraceFormatException.atByte(start, String.format(
                        "step %d has kind byte 0x%02x; expected 'P' (prefill), 'C' (chunk) or 'D' (decode)", index, kind));
            };
            String step = "step " + index + " (" + name + ")";
            Trace.Step previous = before.isEmpty() ? null : before.getLast();
            String order = switch (kind) {
                case PREFILL -> previous == null ? null : "a prefill can only be the first step";
                case CHUNK -> previous == null || previous instanceof Trace.Chunk ? null
                        : "a chunk can only be the first step or follow a chunk";
                default -> previous != null ? null : "a trace starts with a prefill or a chunk, not a decode step";
            };
            if (order != null) {
                throw TraceFormatException.atByte(start, step + ": " + order);
            }
            if (tokens < 1 || tokens > tokensLeft || (kind == DECODE && tokens != 1)) {
                throw TraceFormatException.atByte(start + 1, step + " declares " + tokens + " tokens; "
                        + (kind == DECODE ? "a decode step has 1" : "1 to " + tokensLeft + " remain of the header's total"));
            }
            int kvFloats;
            int qFloats;
            try {
                kvFloats = StepData.floats(tokens, shape.kvWidth());
                qFloats = StepData.floats(tokens, shape.qWidth());
            } catch (IllegalArgumentException e) {
                throw TraceFormatException.atByte(start + 1, step + ": " + e.getMessage());
            }
            int layers = shape.layers();
            float[][] k = new float[layers][];
            float[][] v = new float[layers][];
            float[][] q = new float[layers][];
            for (int layer = 0; layer < layers; layer++) {
                k[layer] = floats(kvFloats, step + ", layer " + layer + " keys");
                v[layer] = floats(kvFloats, step + ", layer " + layer + " values");
                q[layer] = floats(qFloats, step + ", layer " + layer + " queries");
            }
            long computed = crc.getValue();
            long at = offset;
            long stored = u32("the checksum of " + step);
            if (stored != computed) {
                throw TraceFormatException.atByte(at, String.format(
                        "%s checksum mismatch: stored %08x, computed %08x over bytes %d..%d; the step is corrupt",
                        step, stored, computed, start, at - 1));
            }
            StepData data = StepData.adopt(shape, tokens, k, v, q);
            return switch (kind) {
                case PREFILL -> new Trace.Prefill(data);
                case CHUNK -> new Trace.Chunk(data);
                default -> new Trace.Decode(data);
            };
        }

        private float[] floats(int count, String what) throws IOException {
            float[] out = new float[count];
            int done = 0;
            while (done < count) {
                int n = Math.min(count - done, BUFFER / Float.BYTES);
                long at = offset;
                fill(n * Float.BYTES, what, (long) (count - done - n) * Float.BYTES);
                ByteBuffer.wrap(buf, 0, n * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out, done, n);
                for (int i = done; i < done + n; i++) {
                    if (!Float.isFinite(out[i])) {
                        throw TraceFormatException.atByte(at + (long) (i - done) * Float.BYTES,
                                what + " hold " + out[i] + " at index " + i + "; trace values must be finite");
                    }
                }
                done += n;
            }
            return out;
        }

        private long u32(String what) throws IOException {
            fill(4, what, 0);
            return ByteBuffer.wrap(buf, 0, 4).order(ByteOrder.LITTLE_ENDIAN).getInt() & 0xffffffffL;
        }

        /**
         * Reads exactly {@code n <= BUFFER} bytes into {@link #buf}, updating the CRC and the offset; {@code after}
         * more bytes of the same item follow (for the message when the file ends).
         */
        private void fill(int n, String what, long after) throws IOException {
            int got = 0;
            while (got < n) {
                int r = in.read(buf, got, n - got);
                if (r < 0) {
                    throw TraceFormatException.atByte(offset + got, "truncated: the file ends inside " + what
                            + " (" + (n - got + after) + " more bytes expected)");
                }
                got += r;
            }
            crc.update(buf, 0, n);
            offset += n;
        }
    }
}
