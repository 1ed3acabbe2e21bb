package dev.kvpc.cli;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** kvpc ir, memory and trace: what they print and how they fail. */
class IrMemoryTraceCliTest {
    private static String stdlib(String name) {
        return CliRunner.root().resolve("stdlib-policies/" + name + ".kvp").toString();
    }

    /**
     * A table given with --param ("a string", the file's path) is read as the table, by every command that takes
     * parameters (each exited 70 before) and by check; a path is read from the current folder.
     */
    @Test
    void aTableGivenAsAParameterIsRead(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) throws Exception {
        java.nio.file.Path table = tmp.resolve("my_gates.tsv");
        java.nio.file.Files.copy(CliRunner.root().resolve("stdlib-policies/duo_gates.tsv"), table);
        String given = "gates=\"" + table + "\"";
        CliRunner ir = CliRunner.run("ir", stdlib("duo_attention"), "--param", given);
        assertEquals(0, ir.code(), ir.err());
        assertTrue(ir.out().contains("policy full") && ir.out().contains("policy streaming_llm"), ir.out());
        CliRunner memory = CliRunner.run("memory", stdlib("duo_attention"), "--context", "4096", "--param", given);
        assertEquals(0, memory.code(), memory.err());
        CliRunner compile = CliRunner.run("compile", stdlib("duo_attention"), "--param", given, "-o", tmp.resolve("duo.jar").toString());
        assertEquals(0, compile.code(), compile.err());
        assertTrue(java.nio.file.Files.isRegularFile(tmp.resolve("duo.jar")));
        CliRunner check = CliRunner.run("check", stdlib("duo_attention"), "--param", given);
        assertEquals(0, check.code(), check.err());
        CliRunner missing = CliRunner.run("check", stdlib("duo_attention"), "--param", "gates=\"" + tmp.resolve("none.tsv") + "\"");
        assertEquals(65, missing.code(), missing.err());
        assertTrue(missing.err().contains("error[E502]"), missing.err());
        CliRunner unknown = CliRunner.run("check", stdlib("duo_attention"), "--param", "bogus=1");
        assertEquals(64, unknown.code(), unknown.err());
        assertTrue(unknown.err().contains("has no parameter bogus"), unknown.err());
        // relative to where the command runs: the test's working folder holds the module's pom.xml
        assertEquals(java.nio.file.Path.of("pom.xml").toAbsolutePath().normalize().toString(), Commands.literal("\"pom.xml\""));
        assertEquals("duo_gates.tsv", Commands.literal("\"duo_gates.tsv\""), "a name with no file here is left to the policy's folder and the stdlib");
    }

    @Test
    void irDumpsEveryPassInOrder() {
        CliRunner r = CliRunner.run("ir", "--dump-after=all", stdlib("h2o"));
        assertEquals(0, r.code(), r.err());
        int last = -1;
        for (String pass : new String[] {"specialize", "cse", "fuse-statistics", "dead-code", "incrementalize", "amortize-eviction", "select-algorithm"}) {
            int at = r.out().indexOf("// ---- after " + pass);
            assertTrue(at > last, pass + " missing or out of order");
            last = at;
        }
        assertTrue(r.out().contains("kernelstat attn sum over query, group"), "H2O's column sums are fused into the kernel");
    }

    @Test
    void irLoopLevelAndErrors() {
        CliRunner loop = CliRunner.run("ir", "--level", "loop", stdlib("snapkv"));
        assertEquals(0, loop.code(), loop.err());
        assertTrue(loop.out().contains("for t in 0 .. #len {"), loop.out());
        assertEquals(64, CliRunner.run("ir", "--dump-after=nonsense", stdlib("h2o")).code());
        assertEquals(64, CliRunner.run("ir", "--level", "assembly", stdlib("h2o")).code());
    }

    @Test
    void memoryTableAndJson() {
        CliRunner r = CliRunner.run("memory", stdlib("h2o"), "--context", "4096", "--model", "llama3-8b");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("ratio 0.1260"), r.out());
        CliRunner j = CliRunner.run("memory", stdlib("kivi"), "--context", "4096", "--model", "llama3-8b", "--json");
        assertEquals(0, j.code(), j.err());
        assertTrue(j.out().contains("\"total_steady_bytes\": " + 446464L * 256), j.out().substring(0, Math.min(400, j.out().length())));
        assertEquals(64, CliRunner.run("memory", stdlib("h2o")).code(), "--context is required");
    }

    @Test
    void aModelFileOrFolderGivesItsShape() {
        String folder = CliRunner.root().resolve("models/kvpc-tiny").toString();
        // kvpc-tiny: 4 layers, 2 KV heads of 16 channels; f16 keys and values: 4 * 2 * 2 * 16 * 2 bytes = 512 per token
        CliRunner r = CliRunner.run("memory", stdlib("full"), "--context", "1024", "--model", folder);
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("full on kvpc-tiny (layers=4, heads=8, kv-heads=2, head-dim=16), context 1024"), r.out());
        assertTrue(r.out().contains("full cache 512.0 KiB; ratio 1.0000"), r.out());
        // without --context, a model file's trained context (1024 tokens for kvpc-tiny): the same table
        CliRunner trained = CliRunner.run("memory", stdlib("full"), "--model", folder);
        assertEquals(0, trained.code(), trained.err());
        assertEquals(r.out(), trained.out());
        CliRunner noContext = CliRunner.run("memory", stdlib("full"), "--model", "stories260K");
        assertEquals(Main.USAGE, noContext.code());
        assertTrue(noContext.err().contains("--context is needed (or a --model file, whose trained context is the default)"), noContext.err());
        CliRunner check = CliRunner.run("check", stdlib("h2o"), "--model", folder + "/kvpc-tiny.gguf");
        assertEquals(0, check.code(), check.err());
        assertTrue(check.err().contains("checked 1 file for kvpc-tiny: 0 errors"), check.err());
        // a preset is still a preset; a name that is neither a preset nor a file says both
        CliRunner preset = CliRunner.run("memory", stdlib("full"), "--context", "8", "--model", "stories260K");
        assertEquals(0, preset.code(), preset.err());
        assertTrue(preset.out().startsWith("full on stories260K"), preset.out());
        CliRunner missing = CliRunner.run("memory", stdlib("full"), "--context", "8", "--model", "no-such-model");
        assertEquals(Main.USAGE, missing.code());
        assertTrue(missing.err().contains("unknown model 'no-such-model'") && missing.err().contains("no file or folder 'no-such-model'"), missing.err());
        // a file that is not a model is invalid input, as kvpc run says, for every command that reads a shape from it
        for (String command : new String[] {"compile", "check", "memory", "ir"}) {
            CliRunner notAModel = CliRunner.run(command, stdlib("full"), "--model", CliRunner.root().resolve("README.md").toString());
            assertEquals(Main.INVALID, notAModel.code(), command + ": " + notAModel.err());
            assertTrue(notAModel.err().contains("README.md: not a llama2.c checkpoint") && !notAModel.err().contains("internal error"), notAModel.err());
        }
    }

    @Test
    void aValueGivenWithParamIsCheckedInPlaceOfTheDefault() {
        // kivi's default group of 32 channels does not divide heads of 48; --param group=16 does
        String shape = "layers=2,heads=4,kv-heads=2,head-dim=48";
        CliRunner defaults = CliRunner.run("memory", stdlib("kivi"), "--context", "256", "--model", shape);
        assertEquals(Main.INVALID, defaults.code());
        assertTrue(defaults.err().contains("error[E501]: group(32) does not divide the head dimension 48"), defaults.err());
        for (String command : new String[] {"memory", "ir", "compile"}) {
            java.util.List<String> args = new java.util.ArrayList<>(java.util.List.of(command, stdlib("kivi"), "--model", shape, "--param", "group=16"));
            if (command.equals("memory")) args.addAll(java.util.List.of("--context", "256"));
            if (command.equals("compile")) args.addAll(java.util.List.of("--emit=asm"));
            CliRunner given = CliRunner.run(args.toArray(String[]::new));
            assertEquals(0, given.code(), command + ": " + given.err());
            assertFalse(given.err().contains("E501"), given.err());
        }
        // a value of the wrong kind is a diagnostic at the parameter (it crashed specialisation before); no value at all is a usage error
        CliRunner floatForInt = CliRunner.run("ir", stdlib("h2o"), "--param", "budget=1e2");
        assertEquals(Main.INVALID, floatForInt.code());
        assertTrue(floatForInt.err().contains("error[E200]: parameter 'budget' is int but the value given for it, 100.0, is not"), floatForInt.err());
        assertFalse(floatForInt.err().contains("internal error"), floatForInt.err());
        CliRunner notAValue = CliRunner.run("ir", stdlib("h2o"), "--param", "budget=abc");
        assertEquals(Main.USAGE, notAValue.code());
        assertTrue(notAValue.err().contains("--param: 'abc' is not a number, true, false or a \"string\""), notAValue.err());
        // a given value is still checked: 16 channels in groups of 5 do not divide
        CliRunner bad = CliRunner.run("memory", stdlib("kivi"), "--context", "256", "--model", shape, "--param", "group=5");
        assertEquals(Main.INVALID, bad.code());
        assertTrue(bad.err().contains("error[E501]: group(5) does not divide the head dimension 48"), bad.err());
    }

    @Test
    void traceRunsAndRejectsBadTraces() {
        CliRunner r = CliRunner.run("trace", stdlib("window"), "--param", "size=8", "--trace", "random:seed=2,prefill=10,decode=2", "--lanes", "1");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("step 2 (decode, context 12)"), r.out());
        assertTrue(r.out().contains("8 entries [4..11]"), r.out());
        CliRunner bad = CliRunner.run("trace", stdlib("window"), "--trace", "random:prefil=10");
        assertEquals(65, bad.code());
        assertTrue(bad.err().contains("unknown trace option 'prefil'"), bad.err());
        assertEquals(65, CliRunner.run("trace", stdlib("window"), "--trace", "no-such-file.kvptrace").code());
    }

    @Test
    void aParameterWithoutDefaultNeedsParam(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        java.nio.file.Path f = dir.resolve("p.kvp");
        java.nio.file.Files.writeString(f, "policy p(size: int) {\n    on overflow(size) {\n        keep last(size)\n    }\n}\n");
        CliRunner r = CliRunner.run("ir", f.toString());
        assertEquals(64, r.code());
        assertTrue(r.err().contains("p needs a value for size: give it with --param size=VALUE"), r.err());
        assertEquals(0, CliRunner.run("ir", f.toString(), "--param", "size=8").code());
        assertEquals(0, CliRunner.run("memory", f.toString(), "--context", "64", "--param", "size=8").code());
    }
}
