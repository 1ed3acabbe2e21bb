package dev.kvpc.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * kvpc eval on the embedded model, a reduced grid: every row is there, measured KV bytes match kvpc memory's
 * prediction within 5%, the JSON, plots, page and Markdown are written, and two runs with one seed give the same quality
 * figures.
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
