package dev.kvpc.cli;

import dev.kvpc.examples.llama.GgufFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code kvpc synth-model}: writes a model of a named shape that kvpc's GGUF reader opens with that shape's metadata;
 * an unknown shape or weight type, a layer count out of range, or weights whose blocks do not divide the shape's rows
 * is a usage error naming the choices, and leaves no file behind.
 */
class SynthModelCliTest {
    @Test
    void writesTheShapeAsked(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("m.gguf");
        CliRunner r = CliRunner.run("synth-model", "--shape", "smollm-135m", "--layers", "1", "--weights", "q8_0", "--seed", "3", "-o", out.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("random, seed 3") && r.out().contains("not quality"), r.out());
        assertTrue(r.err().contains("100%"), "progress reaches the end: " + r.err());
        GgufFile g = GgufFile.open(out);
        assertEquals(576L, ((Number) g.metadata().get("llama.embedding_length")).longValue());
        assertEquals(1L, ((Number) g.metadata().get("llama.block_count")).longValue());
        assertEquals(GgufFile.TensorType.Q8_0, g.tensors().get("blk.0.attn_q.weight").type());
        assertFalse(Files.exists(tmp.resolve("m.gguf.part")), "no partial file left");
    }

    @Test
    void badChoicesAreUsageErrors(@TempDir Path tmp) {
        Path out = tmp.resolve("x.gguf");
        CliRunner r = CliRunner.run("synth-model", "--shape", "gpt-5", "-o", out.toString());
        assertEquals(Main.USAGE, r.code());
        assertTrue(r.err().contains("llama3-8b") && r.err().contains("smollm-135m"), r.err());
        r = CliRunner.run("synth-model", "--shape", "smollm-135m", "--weights", "q3_k", "-o", out.toString());
        assertEquals(Main.USAGE, r.code());
        assertTrue(r.err().contains("q4_k"), r.err());
        r = CliRunner.run("synth-model", "--shape", "smollm-135m", "--layers", "31", "-o", out.toString());
        assertEquals(Main.USAGE, r.code());
        assertTrue(r.err().contains("--layers"), r.err());
        r = CliRunner.run("synth-model", "--shape", "smollm-135m", "--weights", "q4_k", "-o", out.toString());
        assertEquals(Main.USAGE, r.code());
        assertTrue(r.err().contains("not whole Q4_K blocks"), r.err());
        assertFalse(Files.exists(out) || Files.exists(tmp.resolve("x.gguf.part")), "nothing written");
    }
}
