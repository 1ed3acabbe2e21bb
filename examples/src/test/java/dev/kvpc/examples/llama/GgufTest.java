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

        // The metadata claims a wider model than the tensors hold.
        long dim = g.integer("llama.embedding_length");
        int at = indexOfKeyValue(real, "llama.embedding_length");
        byte[] shape = real.clone();
        ByteBuffer.wrap(shape).order(ByteOrder.LITTLE_ENDIAN).putInt(at, (int) dim * 2);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> Llama2cModel.fromGguf(GgufFile.open(write(tmp, "shape.gguf", shape))));
        assertTrue(e.getMessage().contains("shape.gguf") && e.getMessage().contains("shape mismatch"), e.getMessage());
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
