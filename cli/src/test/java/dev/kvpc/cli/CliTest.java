package dev.kvpc.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/** The CLI's contract: exit codes, the diagnostic format, help, and fmt's modes. */
class CliTest {
    @TempDir
    Path tmp;

    @Test
    void checksTheWholeStandardLibrary() throws Exception {
        List<String> args = new ArrayList<>(List.of("check"));
        try (Stream<Path> s = Files.list(CliRunner.root().resolve("stdlib-policies"))) {
            s.filter(p -> p.toString().endsWith(".kvp")).sorted().forEach(p -> args.add(p.toString()));
        }
        CliRunner r = CliRunner.run(args.toArray(String[]::new));
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("0 errors, 0 warnings"), r.err());
    }

    @Test
    void reportsErrorsWithPlaceCaretAndExit65() throws Exception {
        Path f = tmp.resolve("bad.kvp");
        Files.writeString(f, "policy p(budget: int = 64) {\n    on overflow(budget) {\n        keep all\n    }\n}\n");
        CliRunner r = CliRunner.run("check", f.toString());
        assertEquals(65, r.code());
        String[] lines = r.err().split("\n");
        assertTrue(lines[0].matches(".*bad\\.kvp:2:8: error\\[E302\\]: .*"), lines[0]);
        assertEquals(" 2 |     on overflow(budget) {", lines[2]);
        assertEquals("   |        ^^^^^^^^^^^^^^^^", lines[3]);
        assertFalse(r.err().contains("Exception"), r.err());
    }

    @Test
    void reportsSeveralErrorsInOneRun() throws Exception {
        Path f = tmp.resolve("two.kvp");
        Files.writeString(f, "policy p {\n    on decode {\n        keep last(lenn)\n        attend first(x)\n    }\n}\n");
        CliRunner r = CliRunner.run("check", f.toString());
        assertEquals(65, r.code());
        assertTrue(r.err().contains("two.kvp:3:19: error[E100]: unknown name 'lenn'"), r.err());
        assertTrue(r.err().contains("did you mean 'len'?"), r.err());
        assertTrue(r.err().contains("two.kvp:4:22: error[E100]: unknown name 'x'"), r.err());
        assertTrue(r.err().contains("2 errors"), r.err());
    }

    @Test
    void everyCommandAnswersHelpWithItsUsage() {
        for (String c : List.of("check", "fmt", "ir", "memory", "compile", "eval", "trace", "run")) {
            CliRunner r = CliRunner.run(c, "--help");
            assertEquals(0, r.code(), c + ": " + r.err());
            String all = r.out() + r.err();
            assertTrue(all.startsWith("Usage: kvpc " + c + " "), c + ": " + all);
            assertFalse(all.contains("WARN"), c + " help text formats cleanly: " + all);
        }
        assertTrue(CliRunner.run("eval", "--help").out().contains("12.5%, 25% and 50% of the trained context"));
    }

    @Test
    void usageErrorsExit64() {
        assertEquals(64, CliRunner.run("check").code());
        assertEquals(64, CliRunner.run("frobnicate").code());
        assertEquals(64, CliRunner.run("check", "--model", "nonsense", "x.kvp").code());
        assertEquals(64, CliRunner.run().code());
    }

    /** kvpc explain: a code's severity, title and example; an unknown code is a usage error with the nearest one. */
    @Test
    void explainSaysWhatACodeMeans() {
        CliRunner r = CliRunner.run("explain", "w200");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("W200 (warning): lossy:") && r.out().contains("For example: ") && r.out().contains("--Werror"), r.out());
        r = CliRunner.run("explain");
        assertEquals(dev.kvpc.compiler.diag.Code.values().length, r.out().lines().count(), r.out());
        r = CliRunner.run("explain", "E3O1");
        assertEquals(64, r.code());
        assertTrue(r.err().contains("not a kvpc diagnostic code; did you mean E301?"), r.err());
    }

    /** --version names the build: version, commit (from the checkout the CLI was built in), JDK and system. */
    @Test
    void versionNamesCommitAndJdk() {
        CliRunner r = CliRunner.run("--version");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().matches("(?s)kvpc \\S+.*, commit [0-9a-f]{7,}(-dirty)?\\R.*JDK " + Runtime.version().feature() + ".*"), r.out());
    }

    /** A mistyped command or option is named with the nearest one; an option's value that starts with '-' is no option. */
    @Test
    void mistypedWordsGetSuggestions() {
        CliRunner r = CliRunner.run("evl");
        assertEquals(64, r.code());
        assertTrue(r.err().contains("'evl' is not a kvpc command; did you mean 'kvpc eval'?"), r.err());
        r = CliRunner.run("run", "--modle", "models/kvpc-tiny", "--prompt", "x");
        assertEquals(64, r.code());
        assertTrue(r.err().contains("no option '--modle' in kvpc run; did you mean '--model'?"), r.err());
        r = CliRunner.run("run", "--prompt", "-hi", "--modle", "m");
        assertTrue(r.err().contains("no option '--modle'") && !r.err().contains("'-hi'"), r.err());
        r = CliRunner.run("memory", "stdlib-policies/h2o.kvp", "--context=100", "--pormpt", "5");
        assertTrue(r.err().contains("did you mean '--prompt'?"), r.err());
        r = CliRunner.run("check", "--zzzzzzzz", "x.kvp");
        assertTrue(r.err().contains("no option '--zzzzzzzz' in kvpc check") && !r.err().contains("did you mean"), r.err());
    }

    @Test
    void missingFileIsInvalidInputNotACrash() {
        CliRunner r = CliRunner.run("check", tmp.resolve("nope.kvp").toString());
        assertEquals(65, r.code());
        assertTrue(r.err().contains("error[E012]"), r.err());
    }

    /** A file that is not UTF-8 is named with the line and column of its first bad byte, as is an import of one. */
    @Test
    void aFileThatIsNotUtf8IsPlacedAtItsFirstBadByte() throws Exception {
        Path latin = tmp.resolve("latin.kvp");
        java.nio.file.Files.write(latin, "policy p() { }\n// caf\u00e9 au lait\n".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
        CliRunner r = CliRunner.run("check", latin.toString());
        assertEquals(65, r.code(), r.err());
        assertTrue(r.err().contains("latin.kvp:2:7: error[E012]"), r.err());
        assertTrue(r.err().contains("is not UTF-8 text: byte 0xE9 at line 2, column 7"), r.err());
        Path importer = tmp.resolve("importer.kvp");
        java.nio.file.Files.writeString(importer, "import \"latin.kvp\"\npolicy q() { }\n");
        CliRunner i = CliRunner.run("check", importer.toString());
        assertEquals(65, i.code(), i.err());
        assertTrue(i.err().contains("importer.kvp:1:1: error[E010]") && i.err().contains("byte 0xE9 at line 2, column 7"), i.err());
    }

    /** A policy imported from the bundled standard library finds the bundled table its default names. */
    @Test
    void aBundledPolicyFindsItsBundledTable() throws Exception {
        Path f = tmp.resolve("mine.kvp");
        java.nio.file.Files.writeString(f, "import \"duo_attention.kvp\"\npolicy mine = duo_attention(sparsity = 0.5)\n");
        CliRunner r = CliRunner.run("check", f.toString());
        assertEquals(0, r.code(), r.err());
    }

    /** An import must name a file: an empty path, a folder, or "." is E010. */
    @Test
    void anImportThatNamesNoFileIsAnError() throws Exception {
        String empty = checkFails("import \"\"\npolicy p() { }\n");
        assertTrue(empty.contains("imports.kvp:1:1: error[E010]") && empty.contains("an import names a file"), empty);
        for (String target : new String[] {"stdlib-policies/", "."}) {
            String err = checkFails("import \"" + target + "\"\npolicy p() { }\n");
            assertTrue(err.contains("imports.kvp:1:1: error[E010]"), target + ": " + err);
        }
    }

    /** {@code kvpc check} of {@code text} (as imports.kvp) is invalid input; returns what it printed. */
    private String checkFails(String text) throws Exception {
        Path f = tmp.resolve("imports.kvp");
        java.nio.file.Files.writeString(f, text);
        CliRunner r = CliRunner.run("check", f.toString());
        assertEquals(65, r.code(), r.err());
        return r.err();
    }

    @Test
    void helpListsCommands() {
        CliRunner r = CliRunner.run("--help");
        assertEquals(0, r.code());
        assertTrue(r.out().contains("check") && r.out().contains("fmt"), r.out());
        CliRunner h = CliRunner.run("help", "check");
        assertEquals(0, h.code());
        assertTrue(h.out().contains("--model"), h.out());
    }

    @Test
    void fmtPrintsChecksAndWrites() throws Exception {
        Path f = tmp.resolve("ugly.kvp");
        String ugly = "policy w(size:int=8){on overflow(size){keep last(size)}} // end\n";
        Files.writeString(f, ugly);
        CliRunner printed = CliRunner.run("fmt", f.toString());
        assertEquals(0, printed.code());
        String canonical = "policy w(size: int = 8) {\n    on overflow(size) {\n        keep last(size)\n    }\n}  // end\n";
        assertEquals(canonical, printed.out());
        assertEquals(ugly, Files.readString(f), "printing must not touch the file");
        assertEquals(65, CliRunner.run("fmt", "--check", f.toString()).code());
        assertEquals(0, CliRunner.run("fmt", "--write", f.toString()).code());
        assertEquals(canonical, Files.readString(f));
        assertEquals(0, CliRunner.run("fmt", "--check", f.toString()).code());
    }

    @Test
    void fmtLeavesFilesWithSyntaxErrorsAlone() throws Exception {
        Path f = tmp.resolve("broken.kvp");
        String broken = "policy p {\n    on decode { keep last( }\n}\n";
        Files.writeString(f, broken);
        CliRunner r = CliRunner.run("fmt", "--write", f.toString());
        assertEquals(65, r.code());
        assertTrue(r.err().contains("error[E001]"), r.err());
        assertEquals(broken, Files.readString(f));
    }

    @Test
    void modelOptionChangesBudgetChecks() throws Exception {
        Path f = tmp.resolve("deep.kvp");
        Files.writeString(f, "policy d(budget: int = 100) {\n    on overflow(budget - 4 * layer) {\n        keep last(budget - 4 * layer)\n    }\n}\n");
        assertEquals(0, CliRunner.run("check", "--model", "stories260K", f.toString()).code());
        CliRunner r = CliRunner.run("check", f.toString());
        assertEquals(65, r.code());
        assertTrue(r.err().contains("E300"), r.err());
    }
}
