package dev.kvpc.examples.llama;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes GGUF v3 files (metadata of integers, floats, booleans, strings and lists of strings, floats or integers;
 * tensors as given bytes, or made chunk by chunk while the file is written, for files larger than memory) and quantises
 * floats into GGML's block layouts, written from the GGUF specification: F16 as IEEE halves; Q8_0 as blocks of 34
 * bytes (an f16 scale {@code amax / 127}, then 32 signed quants {@code round(w / scale)}); Q4_0 as blocks of 18 bytes
 * (an f16 scale {@code max / -8}, max the weight of largest magnitude with its sign, then 16 bytes, byte {@code k}
 * holding weight {@code k}'s quant in its low nibble and weight {@code k + 16}'s in its high nibble, quants
 * {@code w / scale + 8} truncated after adding 0.5 and clamped to 0..15); the K-quants and BF16 by {@link BlockCodec}.
 * {@link #dequantise} reads them back by the same specification, independently of {@link GgufFile}. The project's
 * tests write their files with it, and {@code kvpc synth-model} ({@link SynthModel}).
 */
public final class GgufWriter {
    private final Map<String, Object> meta = new LinkedHashMap<>();
    private final List<Tensor> tensors = new ArrayList<>();

    /** The bytes of a tensor made while the file is written: {@code chunk(i)} for {@code i} in {@code 0..chunks-1}, in order. */
    public interface Chunks {
        int chunks();

        byte[] chunk(int i);
    }

    private record Tensor(String name, GgufFile.TensorType type, long[] dims, long bytes, Chunks data) {
    }

    public GgufWriter put(String key, Object value) {
        meta.put(key, value);
        return this;
    }

    /** A tensor of {@code dims} (innermost first) of {@code type} holding {@code bytes} (its GGML encoding). */
    public GgufWriter tensor(String name, GgufFile.TensorType type, byte[] bytes, long... dims) {
        return tensor(name, type, bytes.length, new Chunks() {
            public int chunks() {
                return 1;
            }

            public byte[] chunk(int i) {
                return bytes;
            }
        }, dims);
    }

    /** A tensor of floats encoded as {@code type}. */
    public GgufWriter tensor(String name, GgufFile.TensorType type, float[] values, long... dims) {
        return tensor(name, type, encode(type, values), dims);
    }

    /** A tensor of {@code bytes} made by {@code data} when the file is written. */
    public GgufWriter tensor(String name, GgufFile.TensorType type, long bytes, Chunks data, long... dims) {
        tensors.add(new Tensor(name, type, dims.clone(), bytes, data));
        return this;
    }


    /** {@code w} in {@code type}'s encoding (a whole number of its blocks). */
    public static byte[] encode(GgufFile.TensorType type, float[] w) {
        ByteBuffer b;
        switch (type) {
            case F32 -> {
                b = ByteBuffer.allocate(4 * w.length).order(ByteOrder.LITTLE_ENDIAN);
                for (float f : w) b.putFloat(f);
            }
            case F16 -> {
                b = ByteBuffer.allocate(2 * w.length).order(ByteOrder.LITTLE_ENDIAN);
                for (float f : w) b.putShort(Float.floatToFloat16(f));
            }
            case Q8_0 -> {
                b = ByteBuffer.allocate(w.length / 32 * 34).order(ByteOrder.LITTLE_ENDIAN);
                for (int blk = 0; blk < w.length / 32; blk++) {
                    float amax = 0;
                    for (int i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(w[blk * 32 + i]));
                    float d = amax / 127, id = d != 0 ? 1 / d : 0;
                    b.putShort(Float.floatToFloat16(d));
                    for (int i = 0; i < 32; i++) b.put((byte) Math.round(w[blk * 32 + i] * id));
                }
            }
            case Q4_0 -> {
                b = ByteBuffer.allocate(w.length / 32 * 18).order(ByteOrder.LITTLE_ENDIAN);
                for (int blk = 0; blk < w.length / 32; blk++) {
                    float amax = 0, max = 0;
                    for (int i = 0; i < 32; i++) {
                        float v = w[blk * 32 + i];
                        if (Math.abs(v) > amax) {
                            amax = Math.abs(v);
                            max = v;
                        }
                    }
                    float d = max / -8, id = d != 0 ? 1 / d : 0;
                    b.putShort(Float.floatToFloat16(d));
                    for (int i = 0; i < 16; i++) {
                        int lo = Math.min(15, (int) (w[blk * 32 + i] * id + 8.5f));
                        int hi = Math.min(15, (int) (w[blk * 32 + 16 + i] * id + 8.5f));
                        b.put((byte) (lo | hi << 4));
                    }
                }
            }
            default -> {
                return type.codec.encode(w);
            }
        }
        return b.array();
    }

    /** The floats a GGML encoding stands for: quant times the block's scale (the scale an f16). */
    static float[] dequantise(GgufFile.TensorType type, byte[] bytes, int n) {
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[n];
        if (type.codec != null) {
            type.codec.decode(bytes, 0, out, 0, n);
            return out;
        }
        for (int i = 0; i < n; i++) {
            out[i] = switch (type) {
                case F32 -> b.getFloat(4 * i);
                case F16 -> Float.float16ToFloat(b.getShort(2 * i));
                case Q8_0 -> b.get(i / 32 * 34 + 2 + i % 32) * Float.float16ToFloat(b.getShort(i / 32 * 34));
                case Q4_0 -> {
                    int k = i % 32, byt = b.get(i / 32 * 18 + 2 + k % 16) & 0xff;
                    yield ((k < 16 ? byt & 15 : byt >> 4) - 8) * Float.float16ToFloat(b.getShort(i / 32 * 18));
                }
                default -> throw new AssertionError(type);
            };
        }
        return out;
    }

    /** Writes the file; {@code progress} hears the bytes of tensor data written so far after each chunk. */
    public void write(Path file) throws IOException {
        write(file, done -> { });
    }

    public void write(Path file, java.util.function.LongConsumer progress) throws IOException {
        Header h = new Header();
        h.putInt(0x46554747).putInt(3).putLong(tensors.size()).putLong(meta.size());
        for (var e : meta.entrySet()) {
            h.string(e.getKey());
            switch (e.getValue()) {
                case Integer i -> h.putInt(4).putInt(i);
                case Long l -> h.putInt(10).putLong(l);
                case Float f -> h.putInt(6).putFloat(f);
                case String s -> h.putInt(8).string(s);
                case Boolean b -> h.putInt(7).put((byte) (b ? 1 : 0));
                case List<?> l when !l.isEmpty() && l.getFirst() instanceof Float -> {
                    h.putInt(9).putInt(6).putLong(l.size());
                    for (Object f : l) h.putFloat((Float) f);
                }
                case List<?> l when !l.isEmpty() && l.getFirst() instanceof Integer -> {
                    h.putInt(9).putInt(5).putLong(l.size());
                    for (Object i : l) h.putInt((Integer) i);
                }
                case List<?> l -> {
                    h.putInt(9).putInt(8).putLong(l.size());
                    for (Object s : l) h.string((String) s);
                }
                default -> throw new IllegalArgumentException("metadata '" + e.getKey() + "' of " + e.getValue().getClass().getSimpleName());
            }
        }
        long offset = 0;
        for (Tensor t : tensors) {
            h.string(t.name());
            h.putInt(t.dims().length);
            for (long d : t.dims()) h.putLong(d);
            h.putInt(t.type().code);
            h.putLong(offset);
            offset += (t.bytes() + 31) / 32 * 32;
        }
        while (h.size() % 32 != 0) h.put((byte) 0);
        try (java.io.OutputStream out = new java.io.BufferedOutputStream(Files.newOutputStream(file), 1 << 20)) {
            h.writeTo(out);
            long done = 0;
            for (Tensor t : tensors) {
                long written = 0;
                for (int i = 0; i < t.data().chunks(); i++) {
                    byte[] b = t.data().chunk(i);
                    out.write(b);
                    written += b.length;
                    progress.accept(done + written);
                }
                if (written != t.bytes()) throw new IllegalStateException("tensor '" + t.name() + "' made " + written + " bytes, not " + t.bytes());
                out.write(new byte[(int) ((t.bytes() + 31) / 32 * 32 - t.bytes())]);
                done += written;
            }
        }
    }

    /** The header, little-endian, in a buffer that grows (a large vocabulary takes megabytes). */
    private static final class Header {
        private ByteBuffer b = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);

        private Header room(int n) {
            if (b.remaining() < n) {
                ByteBuffer bigger = ByteBuffer.allocate(Math.max(2 * b.capacity(), b.position() + n)).order(ByteOrder.LITTLE_ENDIAN);
                b.flip();
                bigger.put(b);
                b = bigger;
            }
            return this;
        }

        Header putInt(int v) {
            room(4).b.putInt(v);
            return this;
        }

        Header putLong(long v) {
            room(8).b.putLong(v);
            return this;
        }

        Header putFloat(float v) {
            room(4).b.putFloat(v);
            return this;
        }

        Header put(byte v) {
            room(1).b.put(v);
            return this;
        }

        Header string(String s) {
            byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
            putLong(bytes.length);
            room(bytes.length).b.put(bytes);
            return this;
        }

        int size() {
            return b.position();
        }

        void writeTo(java.io.OutputStream out) throws IOException {
            out.write(b.array(), 0, b.position());
        }
    }
}
