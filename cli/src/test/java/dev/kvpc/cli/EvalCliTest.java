package dev.kvpc.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * kvpc eval on the embedded model, a reduced grid: every row is there, measured KV bytes match kvpc memory's
 * prediction within 5%, the JSON, plots, page and Markdown are written, and two runs with one seed give the same quality
 * figures, bit for bit. The tests run with the Vector API (cli/pom.xml), as {@code ./kvpc eval} does, and the second run
 * finds the engine and the decode kernels compiled by the JIT where the first ran them interpreted at first.
 */
class EvalCliTest {
    @TempDir
    Path dir;

    static String[] args(Path out) {
        Path model = CliRunner.root().resolve("models/kvpc-tiny/kvpc-tiny.gguf");
        return new String[] {"eval", "--model", model.toString(), "--policies", "full,window,h2o,kivi", "--budgets", "0.125", "--lengths", "48,96",
                "--passkey-lengths", "96", "--depths", "0.5", "--samples", "1", "--threads", "1", "--seed", "3", "--out", out.toString(), "--note", "a test run"};
    }

    @Test
    void evaluatesAndIsDeterministic() throws Exception {
        assertTrue(dev.kvpc.backend.jvm.DecodeKernelCompiler.vectorApiAvailable(), "the tests run with --add-modules jdk.incubator.vector (cli/pom.xml)");
        CliRunner a = CliRunner.run(args(dir.resolve("a")));
        assertEquals(0, a.code(), a.err());
        for (String row : new String[] {"full", "window 12.5%", "h2o 12.5%", "kivi 2-bit"}) assertTrue(a.out().contains(row), a.out());
        // everything the report writes is there and named at the end; one model, its trained context among the lengths
        // or not, so one perplexity chart at least, the pass-key panels and the memory scatter
        for (String f : new String[] {"results.json", "index.html", "results.md", "passkey-kvpc-tiny.png", "memory-quality-kvpc-tiny.png", "ppl-budget-kvpc-tiny-96.png"}) {
            Path p = dir.resolve("a").resolve(f);
            assertTrue(Files.isRegularFile(p) && Files.size(p) > 0, p + " written: " + a.out());
            assertTrue(a.out().contains(p.toString()), "the paths written are printed: " + a.out());
        }
        String page = Files.readString(dir.resolve("a/index.html"));
        assertTrue(page.contains("<td>h2o 12.5%</td>") && page.contains("--seed 3") && page.contains("--note 'a test run'"), page);
        assertTrue(page.contains("<li>a test run</li>"), page);
        assertTrue(Files.readString(dir.resolve("a/results.md")).contains("| h2o 12.5% |"), "the Markdown has the table");
        String json = Files.readString(dir.resolve("a/results.json"));
        assertTrue(json.contains("\"policy\": \"h2o 12.5%\""), json);
        assertTrue(json.contains("\"passkey\": ["), json);
        // every pass-key document's key and the model's greedy answer, one document per row
        var doc = java.util.regex.Pattern.compile("\"documents\": \\[\\{\"key\": \"(\\d{5})\", \"answer\": \"([^\"]*)\", \"key_entries\": 10, "
                + "\"key_kept_per_lane\": \\[(\\d+), (\\d+), (\\d+), (\\d+), (\\d+), (\\d+), (\\d+), (\\d+)\\]\\}\\]").matcher(json);
        int docs = 0;
        while (doc.find()) {
            docs++;
            // the key's 10 digit tokens (5 per statement): a 96-token document fits every row's 128 entries, so every lane
            // of every row still holds them all once the prompt is in
            for (int i = 3; i <= 10; i++) assertEquals("10", doc.group(i), json);
        }
        assertEquals(4, docs, "one document per row: " + json);
        // the default 8 text windows, each bucket's perplexity per window beside the total
        var each = java.util.regex.Pattern.compile("\"ppl_per_window\": \\[([^\\]]*)\\]").matcher(json);
        assertTrue(each.find(), json);
        assertEquals(8, each.group(1).split(",").length, json);
        // measured and predicted KV bytes agree within 5% on every row
        var m = java.util.regex.Pattern.compile("\"measured_kv_bytes\": (\\d+), \"predicted_kv_bytes\": (\\d+)").matcher(json);
        int rows = 0;
        while (m.find()) {
            double measured = Double.parseDouble(m.group(1)), predicted = Double.parseDouble(m.group(2));
            assertEquals(predicted, measured, 0.05 * predicted, json);
            rows++;
        }
        assertEquals(4, rows, "every row has a prediction, the full cache too: " + json);
        CliRunner b = CliRunner.run(args(dir.resolve("b")));
        assertEquals(0, b.code(), b.err());
        assertEquals(quality(json), quality(Files.readString(dir.resolve("b/results.json"))), "same seed, same quality figures");
    }

    @Test
    void policyFilesJarsAndAttentionVariantsAreRows() throws Exception {
        Path model = CliRunner.root().resolve("models/kvpc-tiny/kvpc-tiny.gguf");
        Path kvp = Files.writeString(dir.resolve("mine.kvp"), "import \"h2o.kvp\"\npolicy small = h2o(budget = 24)\npolicy big = h2o(budget = 64)\n");
        Path jar = dir.resolve("window.jar");
        CliRunner c = CliRunner.run("compile", CliRunner.root().resolve("stdlib-policies/window.kvp").toString(), "--model", "layers=4,heads=8,kv-heads=2,head-dim=16",
                "--param", "size=32", "-o", jar.toString());
        assertEquals(0, c.code(), c.err());
        CliRunner r = CliRunner.run("eval", "--model", model.toString(), "--policies", "full," + kvp + ":small," + kvp + "," + jar, "--tasks", "perplexity",
                "--lengths", "48,96", "--attention", "standard,sliding(w = 8)", "--threads", "1", "--out", dir.resolve("o").toString());
        assertEquals(0, r.code(), r.err());
        for (String row : new String[] {"full ", "small ", "mine ", "window ", "full @sliding(w = 8)", "small @sliding(w = 8)", "mine @sliding(w = 8)"}) {
            assertTrue(r.out().contains("\n" + row), row + " in\n" + r.out());
        }
        String json = Files.readString(dir.resolve("o/results.json"));
        var m = java.util.regex.Pattern.compile("\"measured_kv_bytes\": (\\d+), \"predicted_kv_bytes\": (\\d+)").matcher(json);
        int rows = 0;
        for (; m.find(); rows++) assertEquals(Double.parseDouble(m.group(2)), Double.parseDouble(m.group(1)), 0.05 * Double.parseDouble(m.group(2)), json);
        assertEquals(7, rows, json);
        // the jar holds 32 entries a lane, small 24 and the file's last policy (big) 64: 4 layers x 2 lanes x 128 B an
        // entry (f32 keys and values of 16 channels), plus H2O's f32 score per entry
        assertTrue(json.contains("\"measured_kv_bytes\": " + 24 * 8 * (128 + 4) + ","), json);
        assertTrue(json.contains("\"measured_kv_bytes\": " + 64 * 8 * (128 + 4) + ","), json);
        assertTrue(json.contains("\"measured_kv_bytes\": " + 32 * 8 * 128 + ","), json);
        // an 8-token window changes what the model attends, so its perplexity
        assertNotEquals(ppl(json, "full"), ppl(json, "full @sliding(w = 8)"));
        // a variant with a jar, or a policy that is not there, stops the run with the reason
        CliRunner bad = CliRunner.run("eval", "--model", model.toString(), "--policies", jar.toString(), "--attention", "softcap", "--out", dir.resolve("p").toString());
        assertEquals(Main.INVALID, bad.code());
        assertTrue(bad.err().contains("a compiled policy jar carries its attention variant"), bad.err());
        bad = CliRunner.run("eval", "--model", model.toString(), "--policies", kvp + ":nope", "--out", dir.resolve("p").toString());
        assertEquals(Main.INVALID, bad.code());
        assertTrue(bad.err().contains("has no policy or config named 'nope'"), bad.err());
    }

    @Test
    void severalSeedsAddDocumentsAndKeepEachSeedsOwn() throws Exception {
        Path model = CliRunner.root().resolve("models/kvpc-tiny/kvpc-tiny.gguf");
        java.util.function.Function<String, CliRunner> run = seeds -> CliRunner.run("eval", "--model", model.toString(), "--policies", "full,window",
                "--budgets", "0.125", "--tasks", "passkey", "--passkey-lengths", "96", "--depths", "0.5", "--samples", "2", "--threads", "1",
                "--seed", seeds, "--out", dir.resolve(seeds.replace(',', '-')).toString());
        CliRunner one = run.apply("3"), two = run.apply("4,3");
        assertEquals(0, one.code(), one.err());
        assertEquals(0, two.code(), two.err());
        String a = Files.readString(dir.resolve("3/results.json")), b = Files.readString(dir.resolve("4-3/results.json"));
        assertTrue(a.startsWith("{\n  \"seeds\": [3],") && b.startsWith("{\n  \"seeds\": [4, 3],"), a + b);
        // per row: seed 4's two documents, then seed 3's, the same as when seed 3 runs alone
        List<String> keysA = keys(a), keysB = keys(b);
        assertEquals(4, keysA.size(), a);
        assertEquals(8, keysB.size(), b);
        assertEquals(keysA.subList(0, 2), keysB.subList(2, 4), "seed 3's documents, full row");
        assertEquals(keysA.subList(2, 4), keysB.subList(6, 8), "seed 3's documents, window row");
        assertNotEquals(keysB.subList(0, 2), keysB.subList(2, 4), "seed 4's documents are others");
        assertFalse(a.contains("passkey_accuracy_per_seed"), a);
        var perSeed = java.util.regex.Pattern.compile("\"passkey_accuracy_per_seed\": \\[([0-9.]+), ([0-9.]+)\\]").matcher(b);
        assertTrue(perSeed.find(), b);
        // the table: the accuracy over all four documents and its range over the seeds
        double lo = Math.min(Double.parseDouble(perSeed.group(1)), Double.parseDouble(perSeed.group(2)));
        double hi = Math.max(Double.parseDouble(perSeed.group(1)), Double.parseDouble(perSeed.group(2)));
        String cell = String.format(java.util.Locale.ROOT, "%.0f%% (%.0f-%.0f)", 50 * (lo + hi), 100 * lo, 100 * hi);
        assertTrue(two.out().lines().anyMatch(l -> l.startsWith("full ") && l.contains(cell)), cell + " in\n" + two.out());
        assertTrue(Files.readString(dir.resolve("4-3/results.md")).contains("- seeds 4, 3 ("), "the report names the seeds");
        CliRunner twice = run.apply("3,3");
        assertEquals(Main.USAGE, twice.code());
        assertTrue(twice.err().contains("--seed: [3, 3] names a seed twice"), twice.err());
    }

    @Test
    void corePoliciesTakeArgumentsForTheirOtherParameters() throws Exception {
        Path model = CliRunner.root().resolve("models/kvpc-tiny/kvpc-tiny.gguf");
        CliRunner r = CliRunner.run("eval", "--model", model.toString(), "--policies", "h2o,h2o(recent = 0.25),kivi(bits = 4, residual = 16)",
                "--budgets", "0.03125", "--tasks", "perplexity", "--lengths", "48,96", "--windows", "1", "--threads", "1", "--out", dir.resolve("args").toString());
        assertEquals(0, r.code(), r.err());
        for (String row : new String[] {"h2o 3.125% ", "h2o(recent = 0.25) 3.125% ", "kivi(residual = 16) 4-bit "}) {
            assertTrue(r.out().contains("\n" + row), row + " in\n" + r.out());
        }
        String json = Files.readString(dir.resolve("args/results.json"));
        assertTrue(json.contains("\"params\": {\"budget\": 32, \"recent\": 0.25}"), json);
        assertTrue(json.contains("\"params\": {\"bits\": 4, \"group\": 16, \"residual\": 16}"), json);
        // the same budget: the same bytes (32 entries a lane, 4 layers x 2 lanes, 128 B an entry and H2O's f32 score)
        var bytes = java.util.regex.Pattern.compile("\"measured_kv_bytes\": (\\d+)").matcher(json);
        assertTrue(bytes.find() && bytes.group(1).equals(String.valueOf(32 * 8 * (128 + 4))), json);
        assertTrue(bytes.find() && bytes.group(1).equals(String.valueOf(32 * 8 * (128 + 4))), json);
        // a parameter the budget sets, one the policy does not have, and a value that is not one: said before any work
        CliRunner budget = CliRunner.run("eval", "--model", model.toString(), "--policies", "h2o(budget = 5)", "--out", dir.resolve("x").toString());
        assertEquals(Main.INVALID, budget.code());
        assertTrue(budget.err().contains("'h2o(budget = 5)': budget is set from --budgets for h2o"), budget.err());
        CliRunner unknown = CliRunner.run("eval", "--model", model.toString(), "--policies", "h2o(recnt = 0.1)", "--budgets", "0.25", "--out", dir.resolve("x").toString());
        assertEquals(Main.INVALID, unknown.code());
        assertTrue(unknown.err().contains("<--policies>:") && unknown.err().contains("error[E105]: 'h2o' has no parameter 'recnt'")
                && unknown.err().contains("did you mean 'recent'?"), unknown.err());
        CliRunner value = CliRunner.run("eval", "--model", model.toString(), "--policies", "h2o(recent = half)", "--out", dir.resolve("x").toString());
        assertEquals(Main.INVALID, value.code());
        assertTrue(value.err().contains("'half' is not a number, true, false or a \"string\""), value.err());
    }

    /** Every pass-key document's key, in order. */
    private static List<String> keys(String json) {
        var m = java.util.regex.Pattern.compile("\\{\"key\": \"(\\d{5})\"").matcher(json);
        List<String> keys = new java.util.ArrayList<>();
        while (m.find()) keys.add(m.group(1));
        return keys;
    }

    /** The first perplexity figure of a row. */
    private static String ppl(String json, String policy) {
        var m = java.util.regex.Pattern.compile("\"policy\": \"" + java.util.regex.Pattern.quote(policy) + "\".*?\"ppl\": ([0-9.]+)").matcher(json);
        assertTrue(m.find(), policy + " in " + json);
        return m.group(1);
    }

    @Test
    void outMustBeADirectory() throws Exception {
        Path file = Files.writeString(dir.resolve("taken"), "x");
        CliRunner r = CliRunner.run(args(file));
        assertEquals(Main.USAGE, r.code(), r.err());
        assertTrue(r.err().contains("is a file, not a directory"), r.err());
    }

    /** The JSON without the timing figures. */
    static String quality(String json) {
        return json.replaceAll("\"(decode|prompt)_tokens_per_s\": [0-9.Ee+-]+", "");
    }
}
