package dev.kvpc.cli;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** `kvpc run` on stories260K (from shared/models beside the checkout, skipped with the reason when absent). */
class RunCliTest {
    static Path models() {
        for (Path p = CliRunner.root(); p != null && p.getParent() != null; p = p.getParent()) {
            Path m = p.resolveSibling("shared").resolve("models").resolve("stories260K");
            if (Files.isDirectory(m)) return m;
        }
        // Skip, not fail: the model is not part of the project; a clone made away from the shared folder has nothing to run.
        Assumptions.assumeTrue(false, "no shared/models/stories260K beside the checkout");
        return null;
    }

    @Test
    void generatesWithTheFullCacheAndReportsSpeedAndBytes() {
        CliRunner r = CliRunner.run("run", "--model", models().toString(), "--prompt", "The cat", "-n", "40");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("The cat and a boy were playing in the park."), r.out());
        assertTrue(r.err().matches("(?s).*40 positions in .* tokens/s; KV cache 50\\.0 KiB measured, 50\\.0 KiB for the full cache at f32 \\(100\\.0%; pages of \\d+ entries\\).*"), r.err());
    }

    @Test
    void theMatrixKernelsAreChosenByName() {
        CliRunner r = CliRunner.run("run", "--model", models().toString(), "--prompt", "The cat", "-n", "40", "--matmul", "scalar", "--threads", "2");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("The cat and a boy were playing in the park."), r.out());
        r = CliRunner.run("run", "--model", models().toString(), "--prompt", "The cat", "-n", "40", "--matmul", "vector");
        if (dev.kvpc.examples.llama.Matmul.vectorAvailable()) {
            assertEquals(0, r.code(), r.err());
            assertTrue(r.out().startsWith("The cat and a boy were playing in the park."), r.out());
        } else {
            assertEquals(Main.USAGE, r.code(), r.err());
            assertTrue(r.err().contains("--add-modules jdk.incubator.vector"), r.err());
        }
        r = CliRunner.run("run", "--model", models().toString(), "--threads", "0");
        assertEquals(Main.USAGE, r.code(), r.err());
        assertTrue(r.err().contains("--threads must be from 1 to 256, not 0"), r.err());
        r = CliRunner.run("run", "--model", models().toString(), "--matmul", "gpu");
        assertEquals(Main.USAGE, r.code(), r.err());
        assertTrue(r.err().contains("--matmul is auto, vector or scalar, not 'gpu'"), r.err());
    }

    @Test
    void aPolicyShrinksTheMeasuredCache() {
        Path policy = CliRunner.root().resolve("stdlib-policies/streaming_llm.kvp");
        CliRunner r = CliRunner.run("run", "--model", models().resolve("stories260K.gguf").toString(), "--policy", policy.toString(),
                "--param", "sinks=4", "--param", "window=28", "-n", "128");
        assertEquals(0, r.code(), r.err());
        // 32 of 128 positions per lane: 25% of the full cache.
        assertTrue(r.err().contains("(25.0%; pages of 8 entries)"), r.err());
    }

    @Test
    void theEmbeddedModelRunsFromItsFolder() {
        // models/kvpc-tiny is committed: no skipping here.
        CliRunner r = CliRunner.run("run", "--model", CliRunner.root().resolve("models/kvpc-tiny").toString(), "--prompt", "The whale", "-n", "40");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("The whale") && r.out().length() > "The whale".length() + 10, r.out());
        assertTrue(r.err().contains("40 positions in "), r.err());
        // without --model: the embedded model, the same text
        CliRunner d = CliRunner.run("run", "--prompt", "The whale", "-n", "40");
        assertEquals(0, d.code(), d.err());
        assertEquals(r.out(), d.out());
    }

    @Test
    void aConfigWithoutAnAttentionClauseRunsUnderStandardAttentionWithoutImportingIt(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        // standard attention is built in; the file imports window.kvp only, not variants.kvp
        Files.copy(CliRunner.root().resolve("stdlib-policies/window.kvp"), dir.resolve("window.kvp"));
        Path config = dir.resolve("win.kvp");
        Files.writeString(config, "import \"window.kvp\"\nconfig win {\n    layers 0.. use window(size = 16)\n}\n");
        String model = CliRunner.root().resolve("models/kvpc-tiny").toString();
        CliRunner viaConfig = CliRunner.run("run", "--model", model, "--policy", config.toString(), "--prompt", "The whale", "-n", "40");
        assertEquals(0, viaConfig.code(), viaConfig.err());
        CliRunner direct = CliRunner.run("run", "--model", model, "--policy", dir.resolve("window.kvp").toString(), "--param", "size=16",
                "--prompt", "The whale", "-n", "40");
        assertEquals(0, direct.code(), direct.err());
        assertEquals(direct.out(), viaConfig.out());
        assertTrue(viaConfig.err().contains("40 positions in "), viaConfig.err());
    }

    @Test
    void aPolicyWhoseDefaultDoesNotFitRunsWithAValueThatDoes(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        // groups of 32 channels by default; kvpc-tiny's heads have 16
        Path policy = dir.resolve("groups.kvp");
        Files.writeString(policy, "policy groups(g: int = 32) {\n    store values as int4 per token group(g)\n}\n");
        String model = CliRunner.root().resolve("models/kvpc-tiny").toString();
        CliRunner defaults = CliRunner.run("run", "--model", model, "--policy", policy.toString(), "--prompt", "The whale", "-n", "20");
        assertEquals(Main.INVALID, defaults.code());
        assertTrue(defaults.err().contains("group(32) does not divide the head dimension 16"), defaults.err());
        CliRunner given = CliRunner.run("run", "--model", model, "--policy", policy.toString(), "--param", "g=16", "--prompt", "The whale", "-n", "20");
        assertEquals(0, given.code(), given.err());
        assertTrue(given.out().startsWith("The whale"), given.out());
    }

    @Test
    void theStdlibKiviRunsOnTheEmbeddedModelAsItIs() {
        // value groups of min(group, head_dim): 16 channels on kvpc-tiny, whose heads are narrower than the default 32
        String model = CliRunner.root().resolve("models/kvpc-tiny").toString(), kivi = CliRunner.root().resolve("stdlib-policies/kivi.kvp").toString();
        CliRunner run = CliRunner.run("run", "--model", model, "--policy", kivi, "--param", "residual=8", "--prompt", "The whale", "-n", "40");
        assertEquals(0, run.code(), run.err());
        assertTrue(run.out().startsWith("The whale"), run.out());
        assertTrue(run.err().contains("40 positions in "), run.err());
    }

    @Test
    void anAttentionVariantChangesWhatTheModelAttends() {
        String model = CliRunner.root().resolve("models/kvpc-tiny").toString();
        CliRunner standard = CliRunner.run("run", "--model", model, "--prompt", "The whale", "-n", "40");
        assertEquals(0, standard.code(), standard.err());
        // a window wider than the text masks nothing: the same tokens; a 4-token window changes them
        CliRunner wide = CliRunner.run("run", "--model", model, "--prompt", "The whale", "-n", "40", "--attention", "sliding(w = 4096)");
        assertEquals(0, wide.code(), wide.err());
        assertEquals(standard.out(), wide.out());
        CliRunner narrow = CliRunner.run("run", "--model", model, "--prompt", "The whale", "-n", "40", "--attention", "sliding(4)");
        assertEquals(0, narrow.code(), narrow.err());
        assertNotEquals(standard.out(), narrow.out());
        // under a policy, with its parameters
        String h2o = CliRunner.root().resolve("stdlib-policies/h2o.kvp").toString();
        CliRunner both = CliRunner.run("run", "--model", model, "--policy", h2o, "--param", "budget=16", "--prompt", "The whale", "-n", "40",
                "--attention", "softcap(cap = 0.1)");
        assertEquals(0, both.code(), both.err());
        assertNotEquals(standard.out(), both.out());
        // a misspelt variant is reported on the generated text, with a suggestion
        CliRunner bad = CliRunner.run("run", "--model", model, "--attention", "softcapp");
        assertEquals(Main.INVALID, bad.code());
        assertTrue(bad.err().contains("<--attention>:4:15: error[E104]: unknown attention variant 'softcapp'") && bad.err().contains("did you mean 'softcap'"), bad.err());
    }

    @Test
    void badInputIsAClearError() {
        CliRunner r = CliRunner.run("run", "--model", models().resolve("no-such.gguf").toString());
        assertEquals(Main.INVALID, r.code());
        assertTrue(r.err().contains("no-such.gguf: no such file"), r.err());
        Path policy = CliRunner.root().resolve("stdlib-policies/streaming_llm.kvp");
        r = CliRunner.run("run", "--model", models().toString(), "--policy", policy.toString(), "--param", "budget=8");
        assertEquals(Main.INVALID, r.code());
        assertTrue(r.err().contains("has no parameter 'budget'"), r.err());
    }

    @Test
    void anUnknownParameterIsAUsageErrorForEveryCommand() {
        String policy = CliRunner.root().resolve("stdlib-policies/streaming_llm.kvp").toString();
        for (String[] cmd : new String[][] {{"memory", policy, "--context", "64"}, {"ir", policy}, {"trace", policy, "--trace", "random:seed=1,prefill=8,decode=2"}}) {
            String[] args = java.util.Arrays.copyOf(cmd, cmd.length + 2);
            args[cmd.length] = "--param";
            args[cmd.length + 1] = "budget=8";
            CliRunner r = CliRunner.run(args);
            assertEquals(Main.USAGE, r.code(), cmd[0] + ": " + r.err());
            assertTrue(r.err().contains("streaming_llm has no parameter budget (its parameters: sinks, window)"), r.err());
        }
    }

    @Test
    void piecesThatSplitACharacterAreJoinedBeforePrinting() {
        String text = "a\u00e9\u20ac\uD83D\uDE00b";
        byte[] all = text.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        for (int cut = 0; cut <= all.length; cut++) {
            RunCommand.Utf8Pieces p = new RunCommand.Utf8Pieces();
            String got = p.decode(java.util.Arrays.copyOfRange(all, 0, cut)) + p.decode(java.util.Arrays.copyOfRange(all, cut, all.length)) + p.rest();
            assertEquals(text, got, "cut at byte " + cut);
        }
    }
}
