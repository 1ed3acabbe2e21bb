package dev.kvpc.examples.llama;

import dev.kvpc.runtime.pool.PagePool;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The GGUF reader on stories260K.gguf (llama.cpp's F32 conversion of the same checkpoint) and on broken copies. */
class GgufTest {
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"scalar", "vector"})
    void ggufHoldsTheSameWeightsAndGeneratesTheReferenceText(String kernel) throws Exception {
        Path dir = Stories260KTest.models();
        GgufFile g = GgufFile.open(dir.resolve("stories260K.gguf"));
        Llama2cModel fromGguf = Llama2cModel.fromGguf(g);
        Llama2cModel fromBin = Llama2cModel.load(dir.resolve("stories260K.bin"));
        assertEquals(fromBin.dim, fromGguf.dim);
        assertEquals(fromBin.hidden, fromGguf.hidden);
        assertEquals(fromBin.layers, fromGguf.layers);
        assertEquals(fromBin.heads, fromGguf.heads);
        assertEquals(fromBin.kvHeads, fromGguf.kvHeads);
        assertEquals(fromBin.vocab, fromGguf.vocab);
        assertEquals(GgufFile.TensorType.F32, fromGguf.embedding.type());
        assertArrayEquals(fromBin.embedding.toFloats(), fromGguf.embedding.toFloats());
        assertArrayEquals(fromBin.rmsFinal, fromGguf.rmsFinal);
        for (int l = 0; l < fromBin.layers; l++) {
            assertArrayEquals(fromBin.wq[l].toFloats(), fromGguf.wq[l].toFloats(), "wq " + l);
            assertArrayEquals(fromBin.wk[l].toFloats(), fromGguf.wk[l].toFloats(), "wk " + l);
            assertArrayEquals(fromBin.w2[l].toFloats(), fromGguf.w2[l].toFloats(), "w2 " + l);
        }
        Llama2cTokenizer tok = Llama2cTokenizer.fromGguf(g, fromGguf.vocab);
        String expected = Files.readString(dir.resolve("expected_greedy_t0_n200.txt"), StandardCharsets.UTF_8);
        try (PagePool pool = new PagePool(); LlamaEngine engine = new LlamaEngine(fromGguf, LlamaEngine.fullCache(), pool, Stories260KTest.kernel(kernel))) {
            String got = new String(LlamaEngine.generateGreedy(engine, tok, 200), StandardCharsets.UTF_8);
            assertEquals(expected.strip(), got.strip());
        }
    }

    @Test
    void brokenFilesAreRefusedWithTheFileAndTheReason(@TempDir Path tmp) throws Exception {
        byte[] real = Files.readAllBytes(Stories260KTest.models().resolve("stories260K.gguf"));

        byte[] magic = real.clone();
        magic[0] = 'X';
        assertRefused(tmp, "magic.gguf", magic, "bad magic");

        byte[] version = real.clone();
        ByteBuffer.wrap(version).order(ByteOrder.LITTLE_ENDIAN).putInt(4, 99);
        assertRefused(tmp, "version.gguf", version, "unsupported GGUF version 99");

        assertRefused(tmp, "header.gguf", Arrays.copyOf(real, 200), "truncated");
        assertRefused(tmp, "data.gguf", Arrays.copyOf(real, real.length - 1000), "truncated");

        GgufFile g = GgufFile.open(write(tmp, "ok.gguf", real));
        // A tensor type this reader does not know: patch the first tensor's type field.
        GgufFile.Tensor first = g.tensors().values().iterator().next();
        int typeAt = indexOfTensorType(real, first);
        byte[] type = real.clone();
        ByteBuffer.wrap(type).order(ByteOrder.LITTLE_ENDIAN).putInt(typeAt, 77);
        assertRefused(tmp, "type.gguf", type, "unsupported tensor type 77");

        // A tensor offset past the data (it used to overflow the bounds check and fail later, exit 70), one not aligned,
        // and two tensors on the same bytes.
        int offsetAt = typeAt + 4;
        byte[] far = real.clone();
        ByteBuffer.wrap(far).order(ByteOrder.LITTLE_ENDIAN).putLong(offsetAt, Long.MAX_VALUE - 8);
        assertRefused(tmp, "offset.gguf", far, "needs");
        byte[] unaligned = real.clone();
        ByteBuffer.wrap(unaligned).order(ByteOrder.LITTLE_ENDIAN).putLong(offsetAt, first.offset() + 4);
        assertRefused(tmp, "unaligned.gguf", unaligned, "not a multiple of the alignment");
        GgufFile.Tensor second = null;
        for (GgufFile.Tensor t : g.tensors().values()) if (t != first && t.offset() > first.offset() && (second == null || t.offset() < second.offset())) second = t;
        byte[] overlap = real.clone();
        ByteBuffer.wrap(overlap).order(ByteOrder.LITTLE_ENDIAN).putLong(indexOfTensorType(real, second) + 4, first.offset());
        assertRefused(tmp, "overlap.gguf", overlap, "overlap");
        // A dimension whose product with the others passes 2^63.
        byte[] huge = real.clone();
        ByteBuffer.wrap(huge).order(ByteOrder.LITTLE_ENDIAN).putLong(typeAt - 8, 1L << 62);
        assertRefused(tmp, "huge.gguf", huge, "tensor '" + first.name() + "'");

        // The metadata claims a wider model than the tensors hold.
        long dim = g.integer("llama.embedding_length");
        int at = indexOfKeyValue(real, "llama.embedding_length");
        byte[] shape = real.clone();
        ByteBuffer.wrap(shape).order(ByteOrder.LITTLE_ENDIAN).putInt(at, (int) dim * 2);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> Llama2cModel.fromGguf(GgufFile.open(write(tmp, "shape.gguf", shape))));
        assertTrue(e.getMessage().contains("shape.gguf") && e.getMessage().contains("shape mismatch"), e.getMessage());
    }

    /**
     * llama2.c headers that do not fit their file: a dimension of 10^9 (it used to overflow the size computed from it,
     * exit 70) and a vocabulary of -1 (a shared classifier of 1 token, which read a 512-token model as 1).
     */
    @Test
    void brokenLlama2cHeadersAreRefused(@TempDir Path tmp) throws Exception {
        byte[] real = Files.readAllBytes(Stories260KTest.models().resolve("stories260K.bin"));
        byte[] dim = real.clone();
        ByteBuffer.wrap(dim).order(ByteOrder.LITTLE_ENDIAN).putInt(0, 1_000_000_000);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> Llama2cModel.load(write(tmp, "dim.bin", dim)));
        assertTrue(e.getMessage().contains("dim.bin: not a llama2.c checkpoint (header dim=1000000000"), e.getMessage());
        byte[] vocab = real.clone();
        ByteBuffer.wrap(vocab).order(ByteOrder.LITTLE_ENDIAN).putInt(20, -1);
        e = assertThrows(ModelFormatException.class, () -> Llama2cModel.load(write(tmp, "vocab.bin", vocab)));
        assertTrue(e.getMessage().contains("vocab.bin: the header") && e.getMessage().contains("not this file's header"), e.getMessage());
        assertEquals(512, Llama2cModel.load(write(tmp, "ok.bin", real)).vocab);
    }

    /** A device, a folder or a FIFO is refused before it is read: /dev/zero never ends, a FIFO blocks for ever. */
    @Test
    void filesThatAreNotRegularAreRefused(@TempDir Path tmp) throws Exception {
        List<Path> odd = new java.util.ArrayList<>(List.of(tmp));
        if (Files.exists(Path.of("/dev/zero"))) odd.add(Path.of("/dev/zero"));
        Path fifo = tmp.resolve("model.fifo");
        try {
            if (new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor() == 0) odd.add(fifo);
        } catch (java.io.IOException noMkfifo) {
            // no mkfifo here: the device and the folder still count
        }
        for (Path p : odd) {
            ModelFormatException g = assertThrows(ModelFormatException.class, () -> GgufFile.open(p), p.toString());
            assertTrue(g.getMessage().contains("not a regular file"), g.getMessage());
            ModelFormatException b = assertThrows(ModelFormatException.class, () -> Llama2cModel.load(p), p.toString());
            assertTrue(b.getMessage().contains("not a regular file"), b.getMessage());
        }
    }

    private static void assertRefused(Path tmp, String name, byte[] bytes, String reason) throws Exception {
        Path f = write(tmp, name, bytes);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> Llama2cModel.fromGguf(GgufFile.open(f)));
        assertTrue(e.getMessage().contains(name) && e.getMessage().contains(reason), e.getMessage());
    }

    private static Path write(Path tmp, String name, byte[] bytes) throws Exception {
        Path f = tmp.resolve(name);
        Files.write(f, bytes);
        return f;
    }

    /** Where a tensor's type code sits: after its name (u64 length + bytes), n_dims (u32) and the dims (u64 each). */
    private static int indexOfTensorType(byte[] file, GgufFile.Tensor t) {
        byte[] name = t.name().getBytes(StandardCharsets.UTF_8);
        int i = indexOf(file, name);
        return i + name.length + 4 + 8 * t.dims().length;
    }

    /** Where a u32 metadata value sits: after its key and the u32 type. */
    private static int indexOfKeyValue(byte[] file, String key) {
        byte[] k = key.getBytes(StandardCharsets.UTF_8);
        int i = indexOf(file, k);
        assertEquals(4, ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN).getInt(i + k.length), key + " should be a u32");
        return i + k.length + 4;
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) if (hay[i + j] != needle[j]) continue outer;
            return i;
        }
        throw new AssertionError("not found: " + new String(needle, StandardCharsets.UTF_8));
    }
}
