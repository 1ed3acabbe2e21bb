package dev.kvpc.runtime.trace;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

/**
 * A trace from the arrays a Python user has: three tensors {@code q} ({@code [layers, tokens, heads, headDim]}),
 * {@code k} and {@code v} ({@code [layers, tokens, kvHeads, headDim]}), float32, float16, bfloat16 or float64, in
 * <ul>
 *   <li>a safetensors file ({@code .safetensors}): tensors named {@code q}, {@code k}, {@code v}; its
 *       {@code __metadata__} strings become the trace's attributes ({@code rope.theta}, ...), except {@code prefill}
 *       (below) and {@code format};</li>
 *   <li>a NumPy archive ({@code .npz}, {@code numpy.savez}) or a folder, holding {@code q.npy}, {@code k.npy},
 *       {@code v.npy} (C order) and optionally {@code prefill.npy} (an integer).</li>
 * </ul>
 * The first {@code prefill} tokens (default: all) are the prefill step; each later token is a decode step. Where the
 * attributes give RoPE ({@code rope.theta}), queries and keys are unrotated, their channels in interleaved pairs
 * (2i, 2i + 1) as {@link dev.kvpc.runtime.Rope} rotates them; otherwise as the model attended with them.
 * What cannot be read is an {@link IllegalArgumentException} naming the file and the reason.
 */
public final class TraceTensors {
    private TraceTensors() {
    }

    /** Whether {@code p} is a file or folder this class reads (by name: {@code .safetensors}, {@code .npz}, or a folder with {@code q.npy}). */
    public static boolean handles(Path p) {
        String n = p.getFileName() == null ? "" : p.getFileName().toString();
        return n.endsWith(".safetensors") || n.endsWith(".npz") || Files.isDirectory(p) && Files.isRegularFile(p.resolve("q.npy"));
    }

    /** An array read from a file: its shape and its values as floats. */
    private record Array(long[] shape, float[] values) {
    }

    public static Trace read(Path p) {
        try {
            String n = p.getFileName().toString();
            Map<String, Array> arrays = new LinkedHashMap<>();
            Map<String, String> attributes = new LinkedHashMap<>();
            Integer prefill = null;
            if (n.endsWith(".safetensors")) {
                readSafetensors(p, arrays, attributes);
                String pf = attributes.remove("prefill");
                attributes.remove("format");
                if (pf != null) {
                    try {
                        prefill = Integer.parseInt(pf.strip());
                    } catch (NumberFormatException e) {
                        throw new IllegalArgumentException("metadata prefill is '" + pf + "', not a whole number");
                    }
                }
            } else if (n.endsWith(".npz")) {
                try (ZipFile z = new ZipFile(p.toFile())) {
                    for (String t : List.of("q", "k", "v", "prefill")) {
                        ZipEntry e = z.getEntry(t + ".npy");
                        if (e == null) continue;
                        try (InputStream in = z.getInputStream(e)) {
                            arrays.put(t, npy(in.readAllBytes(), t + ".npy"));
                        }
                    }
                }
            } else {
                for (String t : List.of("q", "k", "v", "prefill")) {
                    Path f = p.resolve(t + ".npy");
                    if (Files.isRegularFile(f)) arrays.put(t, npy(Files.readAllBytes(f), t + ".npy"));
                }
            }
            Array pa = arrays.remove("prefill");
            if (pa != null) {
                if (pa.values.length != 1) throw new IllegalArgumentException("prefill.npy holds " + pa.values.length + " values, not one integer");
                prefill = (int) pa.values[0];
            }
            return build(arrays, prefill, attributes);
        } catch (IOException e) {
            throw new IllegalArgumentException(p + ": cannot read: " + e.getMessage(), e);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(p + ": " + e.getMessage(), e);
        }
    }

    private static Trace build(Map<String, Array> arrays, Integer prefill, Map<String, String> attributes) {
        for (String t : List.of("q", "k", "v")) {
            if (!arrays.containsKey(t)) throw new IllegalArgumentException("no tensor '" + t + "' (q, k and v are needed)");
            if (arrays.get(t).shape.length != 4) {
                throw new IllegalArgumentException("tensor '" + t + "' has shape " + Arrays.toString(arrays.get(t).shape) + "; it must be [layers, tokens, "
                        + (t.equals("q") ? "heads" : "kv_heads") + ", head_dim]");
            }
        }
        long[] q = arrays.get("q").shape, k = arrays.get("k").shape, v = arrays.get("v").shape;
        if (!Arrays.equals(k, v)) throw new IllegalArgumentException("k has shape " + Arrays.toString(k) + " but v " + Arrays.toString(v));
        if (q[0] != k[0] || q[1] != k[1] || q[3] != k[3]) {
            throw new IllegalArgumentException("q has shape " + Arrays.toString(q) + " and k " + Arrays.toString(k) + ": layers, tokens and head_dim must agree");
        }
        TraceShape shape = new TraceShape(Math.toIntExact(q[0]), Math.toIntExact(q[2]), Math.toIntExact(k[2]), Math.toIntExact(q[3]));
        int tokens = Math.toIntExact(q[1]);
        if (tokens < 1) throw new IllegalArgumentException("the tensors hold no tokens");
        int pre = prefill == null ? tokens : prefill;
        if (pre < 1 || pre > tokens) throw new IllegalArgumentException("prefill is " + pre + "; it must be 1 to the " + tokens + " tokens");
        float[] qa = arrays.get("q").values, ka = arrays.get("k").values, va = arrays.get("v").values;
        List<Trace.Step> steps = new ArrayList<>();
        int kvRow = shape.kvWidth(), qRow = shape.qWidth();
        for (int start = 0; start < tokens; ) {
            int n = start == 0 ? pre : 1;
            float[][] ks = new float[shape.layers()][], vs = new float[shape.layers()][], qs = new float[shape.layers()][];
            for (int l = 0; l < shape.layers(); l++) {
                // [layer][token][head][channel], C order: a step's rows of a layer are contiguous
                int kvFrom = (l * tokens + start) * kvRow, qFrom = (l * tokens + start) * qRow;
                ks[l] = Arrays.copyOfRange(ka, kvFrom, kvFrom + n * kvRow);
                vs[l] = Arrays.copyOfRange(va, kvFrom, kvFrom + n * kvRow);
                qs[l] = Arrays.copyOfRange(qa, qFrom, qFrom + n * qRow);
            }
            StepData d;
            try {
                d = StepData.adopt(shape, n, ks, vs, qs);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("tokens " + start + ".." + (start + n - 1) + ": " + e.getMessage(), e);
            }
            steps.add(start == 0 ? new Trace.Prefill(d) : new Trace.Decode(d));
            start += n;
        }
        return new Trace(shape, steps, attributes);
    }

    // ------------------------------------------------------------------------------------------- safetensors

    private static final Pattern ENTRY = Pattern.compile("\"((?:[^\"\\\\]|\\\\.)*)\"\\s*:\\s*\\{([^{}]*)\\}");
    private static final Pattern DTYPE = Pattern.compile("\"dtype\"\\s*:\\s*\"([A-Z0-9]+)\"");
    private static final Pattern SHAPE = Pattern.compile("\"shape\"\\s*:\\s*\\[([^\\]]*)\\]");
    private static final Pattern OFFSETS = Pattern.compile("\"data_offsets\"\\s*:\\s*\\[\\s*(\\d+)\\s*,\\s*(\\d+)\\s*\\]");
    private static final Pattern STRING_PAIR = Pattern.compile("\"((?:[^\"\\\\]|\\\\.)*)\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"");

    private static void readSafetensors(Path p, Map<String, Array> arrays, Map<String, String> attributes) throws IOException {
        try (var ch = java.nio.channels.FileChannel.open(p)) {
            long size = ch.size();
            if (size < 8) throw new IllegalArgumentException("too short for a safetensors file");
            ByteBuffer lb = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(lb, 0);
            long headerLength = lb.getLong(0);
            if (headerLength < 2 || headerLength > Math.min(size - 8, 100L << 20)) {
                throw new IllegalArgumentException("its header length, " + headerLength + ", does not fit the file of " + size + " bytes");
            }
            ByteBuffer hb = ByteBuffer.allocate((int) headerLength);
            ch.read(hb, 8);
            String header = new String(hb.array(), StandardCharsets.UTF_8);
            long base = 8 + headerLength;
            Matcher m = ENTRY.matcher(header);
            while (m.find()) {
                String name = m.group(1), body = m.group(2);
                if (name.equals("__metadata__")) {
                    Matcher s = STRING_PAIR.matcher(body);
                    while (s.find()) attributes.put(s.group(1), s.group(2));
                    continue;
                }
                if (!List.of("q", "k", "v").contains(name)) continue;
                Matcher dt = DTYPE.matcher(body), sh = SHAPE.matcher(body), off = OFFSETS.matcher(body);
                if (!dt.find() || !sh.find() || !off.find()) throw new IllegalArgumentException("tensor '" + name + "' lacks dtype, shape or data_offsets");
                long[] shape = sh.group(1).isBlank() ? new long[0] : Arrays.stream(sh.group(1).split(",")).mapToLong(x -> Long.parseLong(x.strip())).toArray();
                long from = Long.parseLong(off.group(1)), to = Long.parseLong(off.group(2));
                Kind kind = Kind.of(dt.group(1), "tensor '" + name + "'");
                long count = count(shape, name);
                if (to - from != count * kind.bytes || from < 0 || base + to > size) {
                    throw new IllegalArgumentException("tensor '" + name + "': data_offsets [" + from + ", " + to + "] do not hold " + count + " " + dt.group(1)
                            + " values inside the file");
                }
                ByteBuffer data = ch.map(java.nio.channels.FileChannel.MapMode.READ_ONLY, base + from, to - from).order(ByteOrder.LITTLE_ENDIAN);
                arrays.put(name, new Array(shape, kind.floats(data, (int) count)));
            }
        }
    }

    private static long count(long[] shape, String name) {
        long c = 1;
        for (long d : shape) {
            if (d < 0) throw new IllegalArgumentException(name + ": negative dimension in " + Arrays.toString(shape));
            c = Math.multiplyExact(c, d);
        }
        if (c > Integer.MAX_VALUE - 8) throw new IllegalArgumentException(name + ": " + c + " values, more than one array holds");
        return c;
    }

    /** The element types read, with their sizes; floats made from each little-endian. */
    private enum Kind {
        F32(4), F16(2), BF16(2), F64(8), I64(8), I32(4);

        final int bytes;

        Kind(int bytes) {
            this.bytes = bytes;
        }

        static Kind of(String dtype, String what) {
            return switch (dtype) {
                case "F32", "<f4" -> F32;
                case "F16", "<f2" -> F16;
                case "BF16" -> BF16;
                case "F64", "<f8" -> F64;
                case "<i8", "I64" -> I64;
                case "<i4", "I32" -> I32;
                default -> throw new IllegalArgumentException(what + " is of type " + dtype + "; traces are float32, float16, bfloat16 or float64");
            };
        }

        float[] floats(ByteBuffer b, int n) {
            float[] out = new float[n];
            for (int i = 0; i < n; i++) {
                out[i] = switch (this) {
                    case F32 -> b.getFloat(4 * i);
                    case F16 -> Float.float16ToFloat(b.getShort(2 * i));
                    case BF16 -> Float.intBitsToFloat((b.getShort(2 * i) & 0xffff) << 16);
                    case F64 -> (float) b.getDouble(8 * i);
                    case I64 -> b.getLong(8 * i);
                    case I32 -> b.getInt(4 * i);
                };
            }
            return out;
        }
    }

    // ------------------------------------------------------------------------------------------- npy

    private static final Pattern NPY_DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']*)'");
    private static final Pattern NPY_FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
    private static final Pattern NPY_SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

    private static Array npy(byte[] b, String name) {
        if (b.length < 10 || (b[0] & 0xff) != 0x93 || !new String(b, 1, 5, StandardCharsets.US_ASCII).equals("NUMPY")) {
            throw new IllegalArgumentException(name + " is not a .npy array (no \\x93NUMPY magic)");
        }
        int major = b[6];
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        int headerLength = major == 1 ? bb.getShort(8) & 0xffff : bb.getInt(8);
        int start = major == 1 ? 10 : 12;
        if (headerLength < 0 || start + headerLength > b.length) throw new IllegalArgumentException(name + ": its header runs past the file");
        String header = new String(b, start, headerLength, StandardCharsets.ISO_8859_1);
        Matcher d = NPY_DESCR.matcher(header), f = NPY_FORTRAN.matcher(header), s = NPY_SHAPE.matcher(header);
        if (!d.find() || !f.find() || !s.find()) throw new IllegalArgumentException(name + ": its header lacks descr, fortran_order or shape: " + header.strip());
        if (f.group(1).equals("True")) throw new IllegalArgumentException(name + " is in Fortran order; save a C-ordered array (numpy.ascontiguousarray)");
        String descr = d.group(1).replace('|', '<').replace('=', '<');
        Kind kind = Kind.of(descr, name);
        long[] shape = Arrays.stream(s.group(1).split(",")).map(String::strip).filter(x -> !x.isEmpty()).mapToLong(Long::parseLong).toArray();
        long count = count(shape, name);
        int dataStart = start + headerLength;
        if ((long) b.length - dataStart != count * kind.bytes) {
            throw new IllegalArgumentException(name + ": " + (b.length - dataStart) + " bytes of data for shape " + Arrays.toString(shape) + " of " + descr);
        }
        return new Array(shape, kind.floats(ByteBuffer.wrap(b, dataStart, b.length - dataStart).slice().order(ByteOrder.LITTLE_ENDIAN), (int) count));
    }
}
