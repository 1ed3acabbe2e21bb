package dev.kvpc.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Model files that load but could not give a meaningful figure: a NaN in one weight of stories260K made kvpc report a
 * perplexity of 16.11 against 10.52 with exit 0. Such a model is refused (exit 65, naming the tensor), or loaded with
 * a warning under --allow-nonfinite; a device is refused before it is read.
 */
class ModelFileCliTest {
    private static final Path STORIES = CliRunner.root().resolveSibling("shared").resolve("models/stories260K");

    @TempDir
    Path dir;

    /** stories260K with a NaN at weight 5 of layer 0's wq (after the 28-byte header, the embedding and the attention norms). */
    private Path withNaN() throws Exception {
        byte[] b = Files.readAllBytes(STORIES.resolve("stories260K.bin"));
        ByteBuffer h = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        int dim = h.getInt(0), layers = h.getInt(8), vocab = Math.abs(h.getInt(20));
        h.putFloat(28 + 4 * (vocab * dim + layers * dim + 5), Float.NaN);
        Path f = dir.resolve("nan.bin");
        Files.write(f, b);
        Files.copy(STORIES.resolve("tok512.bin"), dir.resolve("tok512.bin"));
        return f;
    }

    @Test
    void aModelWithNonFiniteWeightsIsRefusedOrLoadedWithAWarning() throws Exception {
        // stories260K is third-party and lives in ../shared, not in the repository; CI's checkout has it beside it
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isRegularFile(STORIES.resolve("stories260K.bin")), "stories260K is beside the checkout");
        Path nan = withNaN();
        CliRunner r = CliRunner.run("run", "--model", nan.toString(), "-n", "4");
        assertEquals(Main.INVALID, r.code(), r.err());
        assertTrue(r.err().contains("nan.bin: wq of layer 0 holds 1 non-finite value (NaN or infinite); --allow-nonfinite loads it anyway"), r.err());
        CliRunner allowed = CliRunner.run("run", "--model", nan.toString(), "-n", "4", "--allow-nonfinite");
        assertEquals(Main.OK, allowed.code(), allowed.err());
        assertTrue(allowed.err().contains("kvpc: warning: ") && allowed.err().contains("wq of layer 0 holds 1 non-finite value"), allowed.err());
    }

    /** A model trained on one token: the default lengths would be 0 (it exited 70); now a message before any work. */
    @Test
    void aContextTooShortForTheDefaultLengthsIsSaidSo() throws Exception {
        byte[] b = Files.readAllBytes(CliRunner.root().resolve("models/kvpc-tiny/kvpc-tiny.gguf"));
        byte[] key = "llama.context_length".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        int at = -1;
        for (int i = 0; i + key.length <= b.length && at < 0; i++) if (java.util.Arrays.equals(b, i, i + key.length, key, 0, key.length)) at = i;
        assertTrue(at > 0, "kvpc-tiny has llama.context_length");
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(at + key.length + 4, 1); // after the u32 type: the value
        Path one = dir.resolve("one.gguf");
        Files.write(one, b);
        CliRunner r = CliRunner.run("eval", "--quick", "--model", one.toString(), "--policies", "full", "--out", dir.resolve("out").toString());
        assertEquals(Main.INVALID, r.code(), r.err());
        assertTrue(r.err().contains("one: its trained context is 1 token, too short for the default lengths (at least 64)"), r.err());
    }

    @Test
    void aDeviceIsNotAModel() {
        // a device to name: /dev/zero exists on every Linux (CI's Debian included), not on every system
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.exists(Path.of("/dev/zero")), "/dev/zero exists");
        CliRunner r = CliRunner.run("run", "--model", "/dev/zero", "-n", "4");
        assertEquals(Main.INVALID, r.code(), r.err());
        assertTrue(r.err().contains("not a regular file"), r.err());
        assertFalse(r.err().contains("\tat "), r.err());
    }
}
