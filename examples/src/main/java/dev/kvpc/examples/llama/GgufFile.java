package dev.kvpc.examples.llama;

import java.io.IOException;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A GGUF file (versions 2 and 3): its metadata, its tensor directory, and tensors read as floats (F16, BF16, Q8_0,
 * Q4_0 and the K-quants Q4_K, Q5_K, Q6_K dequantised on read) or as {@link Matrix matrices} in their stored type. Every malformed file is refused with a {@link ModelFormatException} naming the
 * file and what is wrong: bad magic, unsupported version, truncated header or data, unknown value or tensor type,
 * tensors outside the file, a missing key or tensor, or a tensor of the wrong shape.
 */
public final class GgufFile {
    /** GGML tensor types this reader dequantises, by their GGUF code. */
    public enum TensorType {
        F32(0, 1, 4), F16(1, 1, 2), Q4_0(2, 32, 18), Q8_0(8, 32, 34),
        Q4_K(12, BlockCodec.Q4_K), Q5_K(13, BlockCodec.Q5_K), Q6_K(14, BlockCodec.Q6_K), BF16(30, BlockCodec.BF16);

        final int code, block, blockBytes;
        /** The codec that decodes a row, for the types the engine holds as {@link Matrix.Blocks}; null for the others. */
        public final BlockCodec codec;

        TensorType(int code, int block, int blockBytes) {
            this.code = code;
            this.block = block;
            this.blockBytes = blockBytes;
            this.codec = null;
        }

        TensorType(int code, BlockCodec codec) {
            this.code = code;
            this.block = codec.block;
            this.blockBytes = codec.bytes;
            this.codec = codec;
        }

        /** Bytes of {@code n} weights (whole blocks) in this type. */
        public long bytes(long n) {
            return n / block * blockBytes;
        }
    }

    /** A tensor's directory entry: {@code dims[0]} is the innermost (contiguous) dimension, as GGUF stores it. */
    public record Tensor(String name, long[] dims, TensorType type, long offset) {
        /** The product of the dimensions; an ArithmeticException past 2^63 (a damaged header). */
        public long elements() {
            long n = 1;
            for (long d : dims) n = Math.multiplyExact(n, d);
            return n;
        }
    }

    private final Path file;
    private final int version;
    private final Map<String, Object> metadata;
    private final Map<String, Tensor> tensors;
    private final ByteBuffer data;

    private GgufFile(Path file, int version, Map<String, Object> metadata, Map<String, Tensor> tensors, ByteBuffer data) {
        this.file = file;
        this.version = version;
        this.metadata = metadata;
        this.tensors = tensors;
        this.data = data;
    }

    public static GgufFile open(Path file) throws ModelFormatException {
        Llama2cModel.regularFile(file);
        ByteBuffer b;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            if (ch.size() > Integer.MAX_VALUE) throw new ModelFormatException(file + ": larger than 2 GiB, which this reader does not map");
            b = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size()).order(ByteOrder.LITTLE_ENDIAN);
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot read: " + e.getMessage());
        }
        try {
            return parse(file, b);
        } catch (BufferUnderflowException e) {
            throw new ModelFormatException(file + ": truncated: the header ends before byte " + (b.position() + 8) + " (file is " + b.limit() + " bytes)");
        }
    }

    private static GgufFile parse(Path file, ByteBuffer b) throws ModelFormatException {
        if (b.limit() < 4 || b.getInt(0) != 0x46554747) throw new ModelFormatException(file + ": bad magic: not a GGUF file (it does not start with \"GGUF\")");
        b.position(4);
        int version = b.getInt();
        if (version != 2 && version != 3) throw new ModelFormatException(file + ": unsupported GGUF version " + version + " (this reader reads 2 and 3)");
        long nTensors = b.getLong(), nKv = b.getLong();
        if (nTensors < 0 || nTensors > 1_000_000 || nKv < 0 || nKv > 1_000_000)
            throw new ModelFormatException(file + ": implausible header: " + nTensors + " tensors, " + nKv + " metadata entries");
        Map<String, Object> meta = new LinkedHashMap<>();
        for (long i = 0; i < nKv; i++) {
            String key = string(file, b);
            int type = b.getInt();
            if (meta.put(key, value(file, b, type, key)) != null) throw new ModelFormatException(file + ": metadata key '" + key + "' given twice");
        }
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (long i = 0; i < nTensors; i++) {
            String name = string(file, b);
            int nd = b.getInt();
            if (nd < 1 || nd > 4) throw new ModelFormatException(file + ": tensor '" + name + "' has " + nd + " dimensions (1 to 4 allowed)");
            long[] dims = new long[nd];
            for (int d = 0; d < nd; d++) {
                dims[d] = b.getLong();
                if (dims[d] <= 0) throw new ModelFormatException(file + ": tensor '" + name + "' has dimension " + dims[d]);
            }
            int code = b.getInt();
            TensorType type = null;
            for (TensorType t : TensorType.values()) if (t.code == code) type = t;
            if (type == null) {
                throw new ModelFormatException(file + ": tensor '" + name + "' has unsupported tensor type " + code + " (this reader reads "
                        + java.util.Arrays.toString(TensorType.values()) + ")");
            }
            long offset = b.getLong();
            Tensor t = new Tensor(name, dims, type, offset);
            if (dims[0] % type.block != 0) throw new ModelFormatException(file + ": tensor '" + name + "' rows of " + dims[0] + " are not whole " + type + " blocks");
            if (tensors.put(name, t) != null) throw new ModelFormatException(file + ": tensor '" + name + "' listed twice");
        }
        long alignment = meta.get("general.alignment") instanceof Number n ? n.longValue() : 32;
        if (alignment <= 0 || (alignment & (alignment - 1)) != 0) throw new ModelFormatException(file + ": general.alignment " + alignment + " is not a power of two");
        long start = (b.position() + alignment - 1) / alignment * alignment;
        if (start > b.limit()) throw new ModelFormatException(file + ": truncated: no tensor data after the header");
        ByteBuffer data = b.slice((int) start, b.limit() - (int) start).order(ByteOrder.LITTLE_ENDIAN);
        // every tensor within the data section, at an aligned offset, and no two sharing a byte
        List<Tensor> byOffset = new ArrayList<>(tensors.values());
        byOffset.sort(java.util.Comparator.comparingLong(Tensor::offset));
        Tensor previous = null;
        long previousEnd = 0;
        for (Tensor t : byOffset) {
            long bytes;
            try {
                bytes = Math.multiplyExact(t.elements() / t.type.block, (long) t.type.blockBytes);
            } catch (ArithmeticException e) {
                throw new ModelFormatException(file + ": tensor '" + t.name + "' has dimensions " + java.util.Arrays.toString(t.dims) + ", more bytes than any file holds");
            }
            if (t.offset < 0 || t.offset > data.limit() || bytes > data.limit() - t.offset)
                throw new ModelFormatException(file + ": truncated: tensor '" + t.name + "' needs " + bytes + " bytes from offset " + t.offset
                        + " of the data section, which holds " + data.limit());
            if (t.offset % alignment != 0)
                throw new ModelFormatException(file + ": tensor '" + t.name + "' starts at offset " + t.offset + ", not a multiple of the alignment " + alignment);
            if (previous != null && t.offset < previousEnd)
                throw new ModelFormatException(file + ": tensors '" + previous.name + "' and '" + t.name + "' overlap (bytes " + t.offset + ".." + previousEnd + ")");
            previous = t;
            previousEnd = t.offset + bytes;
        }
        return new GgufFile(file, version, Collections.unmodifiableMap(meta), Collections.unmodifiableMap(tensors), data);
    }

    private static String string(Path file, ByteBuffer b) throws ModelFormatException {
        long n = b.getLong();
        if (n < 0 || n > b.remaining()) throw new ModelFormatException(file + ": truncated: a string of " + n + " bytes at byte " + (b.position() - 8));
        byte[] s = new byte[(int) n];
        b.get(s);
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(s)).toString();
        } catch (CharacterCodingException e) {
            // Token pieces may be byte fragments; keep them byte for byte.
            return new String(s, StandardCharsets.ISO_8859_1);
        }
    }

    private static Object value(Path file, ByteBuffer b, int type, String key) throws ModelFormatException {
        return switch (type) {
            case 0 -> (long) (b.get() & 0xff);
            case 1 -> (long) b.get();
            case 2 -> (long) (b.getShort() & 0xffff);
            case 3 -> (long) b.getShort();
            case 4 -> b.getInt() & 0xffffffffL;
            case 5 -> (long) b.getInt();
            case 6 -> (double) b.getFloat();
            case 7 -> b.get() != 0;
            case 8 -> string(file, b);
            case 9 -> {
                int et = b.getInt();
                long n = b.getLong();
                if (et == 9) throw new ModelFormatException(file + ": metadata '" + key + "': nested arrays are not supported");
                if (n < 0 || n > b.remaining()) throw new ModelFormatException(file + ": truncated: metadata '" + key + "' claims " + n + " elements");
                List<Object> list = new ArrayList<>((int) n);
                for (long i = 0; i < n; i++) list.add(value(file, b, et, key));
                yield Collections.unmodifiableList(list);
            }
            case 10, 11 -> b.getLong();
            case 12 -> b.getDouble();
            default -> throw new ModelFormatException(file + ": metadata '" + key + "' has unknown value type " + type);
        };
    }

    public Path file() {
        return file;
    }

    public int version() {
        return version;
    }

    public Map<String, Object> metadata() {
        return metadata;
    }

    public Map<String, Tensor> tensors() {
        return tensors;
    }

    /** An integer metadata value; a missing key or another type is a format error. */
    public long integer(String key) throws ModelFormatException {
        if (metadata.get(key) instanceof Long l) return l;
        throw missing(key, "an integer");
    }

    public double real(String key, double orElse) throws ModelFormatException {
        Object v = metadata.get(key);
        if (v == null) return orElse;
        if (v instanceof Number n) return n.doubleValue();
        throw missing(key, "a number");
    }

    /** A string-array metadata value. */
    public List<String> strings(String key) throws ModelFormatException {
        if (metadata.get(key) instanceof List<?> l && l.stream().allMatch(x -> x instanceof String)) {
            @SuppressWarnings("unchecked") List<String> s = (List<String>) l;
            return s;
        }
        throw missing(key, "an array of strings");
    }

    /** A number-array metadata value as floats, or null when absent. */
    public float[] floatsOrNull(String key) throws ModelFormatException {
        Object v = metadata.get(key);
        if (v == null) return null;
        if (v instanceof List<?> l && l.stream().allMatch(x -> x instanceof Number)) {
            float[] f = new float[l.size()];
            for (int i = 0; i < f.length; i++) f[i] = ((Number) l.get(i)).floatValue();
            return f;
        }
        throw missing(key, "an array of numbers");
    }

    private ModelFormatException missing(String key, String what) {
        return new ModelFormatException(file + ": metadata '" + key + "' " + (metadata.containsKey(key) ? "is not " : "is missing; expected ") + what);
    }

    public boolean has(String name) {
        return tensors.containsKey(name);
    }

    private Tensor tensor(String name, long... expected) throws ModelFormatException {
        Tensor t = tensors.get(name);
        if (t == null) throw new ModelFormatException(file + ": tensor '" + name + "' is missing");
        if (!java.util.Arrays.equals(t.dims, expected))
            throw new ModelFormatException(file + ": shape mismatch: tensor '" + name + "' is " + java.util.Arrays.toString(t.dims)
                    + ", the model's metadata needs " + java.util.Arrays.toString(expected));
        if (t.elements() > Integer.MAX_VALUE - 8) throw new ModelFormatException(file + ": tensor '" + name + "' is too large for one array");
        return t;
    }

    /**
     * A 2-D tensor of shape {@code [cols, rows]} (innermost first) as a {@link Matrix} in its stored type: F32 and F16
     * values copied as they are, BF16 widened to F32 (exactly), the K-quants' blocks kept as they are
     * ({@link Matrix.Blocks}), Q8_0 and Q4_0 blocks split into their quants (bytes, or packed nibble bytes) and their
     * f16 scales (held as the floats they convert to exactly).
     */
    public Matrix matrix(String name, long cols, long rows) throws ModelFormatException {
        Tensor t = tensor(name, cols, rows);
        int r = (int) rows, c = (int) cols, n = (int) t.elements(), p = (int) t.offset;
        return switch (t.type) {
            case F32 -> {
                float[] w = new float[n];
                data.slice(p, 4 * n).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(w);
                yield new Matrix.F32(r, c, w);
            }
            case F16 -> {
                short[] w = new short[n];
                data.slice(p, 2 * n).order(ByteOrder.LITTLE_ENDIAN).asShortBuffer().get(w);
                yield new Matrix.F16(r, c, w);
            }
            case Q8_0 -> {
                byte[] q = new byte[n];
                float[] d = new float[n / 32];
                for (int blk = 0; blk < d.length; blk++, p += 34) {
                    d[blk] = Float.float16ToFloat(data.getShort(p));
                    data.get(p + 2, q, blk * 32, 32);
                }
                yield new Matrix.Q8_0(r, c, q, d);
            }
            case Q4_0 -> {
                byte[] q = new byte[n / 2];
                float[] d = new float[n / 32];
                for (int blk = 0; blk < d.length; blk++, p += 18) {
                    d[blk] = Float.float16ToFloat(data.getShort(p));
                    data.get(p + 2, q, blk * 16, 16);
                }
                yield new Matrix.Q4_0(r, c, q, d);
            }
            case BF16 -> {
                // widened at load, exactly: a BF16 weight is the high half of its float
                float[] w = new float[n];
                byte[] raw = new byte[2 * n];
                data.get(p, raw);
                BlockCodec.BF16.decode(raw, 0, w, 0, n);
                yield new Matrix.F32(r, c, w);
            }
            case Q4_K, Q5_K, Q6_K -> {
                byte[] raw = new byte[Math.toIntExact(t.type.bytes(n))];
                data.get(p, raw);
                yield new Matrix.Blocks(r, c, t.type, raw);
            }
        };
    }

    /**
     * The tensor's elements as floats, row-major with {@code dims[0]} contiguous, after checking its shape is
     * {@code expected} (innermost first).
     */
    public float[] floats(String name, long... expected) throws ModelFormatException {
        Tensor t = tensor(name, expected);
        long n = t.elements();
        float[] out = new float[(int) n];
        int p = (int) t.offset;
        switch (t.type) {
            case F32 -> { for (int i = 0; i < out.length; i++) out[i] = data.getFloat(p + 4 * i); }
            case F16 -> { for (int i = 0; i < out.length; i++) out[i] = Float.float16ToFloat(data.getShort(p + 2 * i)); }
            case Q8_0 -> {
                for (int blk = 0; blk < out.length / 32; blk++, p += 34) {
                    float d = Float.float16ToFloat(data.getShort(p));
                    for (int i = 0; i < 32; i++) out[blk * 32 + i] = data.get(p + 2 + i) * d;
                }
            }
            case Q4_0 -> {
                for (int blk = 0; blk < out.length / 32; blk++, p += 18) {
                    float d = Float.float16ToFloat(data.getShort(p));
                    for (int i = 0; i < 16; i++) {
                        int q = data.get(p + 2 + i) & 0xff;
                        out[blk * 32 + i] = ((q & 15) - 8) * d;
                        out[blk * 32 + i + 16] = ((q >> 4) - 8) * d;
                    }
                }
            }
            case Q4_K, Q5_K, Q6_K, BF16 -> {
                byte[] raw = new byte[Math.toIntExact(t.type.bytes(n))];
                data.get(p, raw);
                t.type.codec.decode(raw, 0, out, 0, out.length);
            }
        }
        return out;
    }
}
