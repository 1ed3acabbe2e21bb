package dev.kvpc.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The report kvpc eval writes, from made-up rows (no model): PNGs that decode at the sizes drawn and are not blank,
 * a page that shows the tables and every plot and fetches nothing from elsewhere, and Markdown whose image links
 * resolve beside it.
 */
class EvalReportTest {
    @TempDir
    Path dir;

    static final int[] LENGTHS = {64, 128, 256};

    /** Perplexity {@code base}, {@code base + 1}, ... per bucket; {@code bytes} measured, {@code predicted} predicted. */
    static Eval.Perplexity ppl(double base, long bytes, long predicted) {
        double[] nll = new double[LENGTHS.length];
        long[] tokens = new long[LENGTHS.length];
        for (int i = 0; i < LENGTHS.length; i++) {
            tokens[i] = 64;
            nll[i] = 64 * Math.log(base + i);
        }
        return new Eval.Perplexity(LENGTHS, nll, tokens, 2.0, 256, bytes, predicted);
    }

    static Eval.Grid grid(int hitsEverywhere) {
        int[] lengths = {128, 256};
        double[] depths = {0.1, 0.5, 0.9};
        int[][] hits = new int[lengths.length][depths.length];
        for (int[] row : hits) java.util.Arrays.fill(row, hitsEverywhere);
        return new Eval.Grid(lengths, depths, hits, 2, 1.5, 3000);
    }

    static List<Eval.Row> rows() {
        List<Eval.Row> rows = new ArrayList<>();
        rows.add(new Eval.Row("tiny", new Eval.Policy("full", "full", Map.of(), 1.0), ppl(5, 160_000, -1), grid(2)));
        double[] budgets = {0.125, 0.25, 0.5};
        for (int k = 0; k < budgets.length; k++) {
            double b = budgets[k];
            rows.add(new Eval.Row("tiny", new Eval.Policy("window " + Eval.pct(b), "window", Map.of("size", 32L), b), ppl(9 - k, 20_000 << k, 20_000 << k), grid(0)));
            rows.add(new Eval.Row("tiny", new Eval.Policy("h2o " + Eval.pct(b), "h2o", Map.of("budget", 32L), b), ppl(7 - k, 21_000 << k, 20_500 << k), grid(1)));
        }
        rows.add(new Eval.Row("tiny", new Eval.Policy("kivi 2-bit", "kivi", Map.of("bits", 2L), Double.NaN), ppl(6, 30_000, 30_000), grid(2)));
        // a second model with perplexity only (as stories260K, which is asked no pass keys)
        rows.add(new Eval.Row("other model", new Eval.Policy("full", "full", Map.of(), 1.0), ppl(3, 90_000, -1), null));
        rows.add(new Eval.Row("other model", new Eval.Policy("h2o 25%", "h2o", Map.of("budget", 64L), 0.25), ppl(4, 30_000, 30_000), null));
        return rows;
    }

    static EvalReport.Run run() {
        Map<String, Integer> ctx = new LinkedHashMap<>();
        ctx.put("tiny", 128);
        ctx.put("other model", 256);
        Map<String, String> about = new LinkedHashMap<>();
        about.put("tiny", "made up <for a test>");
        return new EvalReport.Run("./kvpc eval --quick --out report", new long[] {7}, ctx, about, List.of("a note"), rows());
    }

    @Test
    void writesPlotsPageAndMarkdown() throws Exception {
        Files.writeString(dir.resolve("notes.txt"), "kept");
        Files.write(dir.resolve("ppl-budget-gone-1.png"), new byte[] {1});
        List<Path> written = EvalReport.write(dir, run());

        assertFalse(Files.exists(dir.resolve("ppl-budget-gone-1.png")), "plots of an earlier run are removed");
        assertTrue(Files.exists(dir.resolve("notes.txt")), "other files are left alone");
        for (Path p : written) assertTrue(Files.isRegularFile(p) && Files.size(p) > 0, p.toString());

        List<String> pngs = new ArrayList<>();
        for (Path p : written) if (p.toString().endsWith(".png")) pngs.add(p.getFileName().toString());
        // tiny: charts at the trained context (128) and the longest length (256), pass keys, memory; other model: 256 is both
        assertEquals(List.of("ppl-budget-tiny-128.png", "ppl-budget-tiny-256.png", "passkey-tiny.png", "memory-quality-tiny.png",
                "ppl-budget-other_model-256.png", "memory-quality-other_model.png"), pngs);
        for (String f : pngs) {
            BufferedImage img = ImageIO.read(dir.resolve(f).toFile());
            assertNotNull(img, f + " decodes as an image");
            assertTrue(img.getWidth() >= 600 && img.getHeight() >= 250, f + " " + img.getWidth() + "x" + img.getHeight());
            assertTrue(inked(img) > 0.01, f + " has something drawn on it");
        }
        // eight policies with pass keys: panels of 300x260, four to a row
        BufferedImage pk = ImageIO.read(dir.resolve("passkey-tiny.png").toFile());
        assertEquals(4 * 300, pk.getWidth());
        assertEquals(2 * 260, pk.getHeight());
        BufferedImage line = ImageIO.read(dir.resolve("ppl-budget-tiny-128.png").toFile());
        assertEquals(720, line.getWidth());
        assertEquals(460, line.getHeight());

        String page = Files.readString(dir.resolve("index.html"));
        assertTrue(page.startsWith("<!DOCTYPE html>") && page.strip().endsWith("</html>"), page);
        for (String f : pngs) assertTrue(page.contains("<img src=\"" + f + "\""), "the page shows " + f);
        Matcher src = Pattern.compile("(?:src|href)=\"([^\"]*)\"").matcher(page);
        while (src.find()) assertTrue(Files.isRegularFile(dir.resolve(src.group(1))), "the page links " + src.group(1) + ", which is there");
        assertFalse(page.contains("<script") || page.contains("http://") || page.contains("https://") || page.contains("@import"), "self-contained");
        assertTrue(page.contains("./kvpc eval --quick --out report"), "the command");
        assertTrue(page.contains("made up &lt;for a test&gt;"), "escaped");
        // the table: header and a row with its figures (h2o 25%: ppl 6, 7, 8; 42000 bytes measured, 41000 predicted)
        assertTrue(page.contains("<th>ppl@64</th><th>ppl@128</th><th>ppl@256</th><th>passkey</th><th>KV bytes</th>"), page);
        assertTrue(page.contains("<td>h2o 25%</td><td>6.00</td><td>7.00</td><td>8.00</td><td>50%</td><td>42000</td><td>41000</td><td>+2.4%</td>"), page);
        assertTrue(page.contains("<td>full</td><td>5.00</td><td>6.00</td><td>7.00</td><td>100%</td><td>160000</td><td></td><td></td>"), page);

        String md = Files.readString(dir.resolve("results.md"));
        assertTrue(md.contains("| policy | ppl@64 | ppl@128 | ppl@256 | passkey | KV bytes |"), md);
        assertTrue(md.contains("| h2o 25% | 6.00 | 7.00 | 8.00 | 50% | 42000 | 41000 | +2.4% |"), md);
        assertTrue(md.contains("## other model"), md);
        Matcher img = Pattern.compile("!\\[[^\\]]*\\]\\(([^)]+)\\)").matcher(md);
        List<String> linked = new ArrayList<>();
        while (img.find()) {
            linked.add(img.group(1));
            assertTrue(Files.isRegularFile(dir.resolve(img.group(1))), "the Markdown links " + img.group(1) + ", which is beside it");
        }
        assertEquals(pngs, linked, "every plot, once, in order");

        String json = Files.readString(dir.resolve("results.json"));
        assertTrue(json.startsWith("{\n  \"seeds\": [7],"), json);
        assertEquals(rows().size(), json.split("\"model\": ").length - 1, json);
    }

    @Test
    void theMarkdownElsewhereLinksIntoTheResultsFolder() throws Exception {
        Path results = dir.resolve("docs/results"), md = dir.resolve("docs/results.md");
        List<Path> written = EvalReport.write(results, run(), md);
        assertEquals(md, written.getLast());
        String text = Files.readString(md);
        Matcher link = Pattern.compile("\\]\\(([^)]+)\\)").matcher(text);
        int n = 0;
        for (; link.find(); n++) {
            assertTrue(link.group(1).startsWith("results/"), link.group(1));
            assertTrue(Files.isRegularFile(md.getParent().resolve(link.group(1))), "docs/results.md links " + link.group(1) + ", which is there");
        }
        assertEquals(6 + 2, n, "six plots, the JSON and the page");
        assertEquals(Files.readString(results.resolve("results.md")).replace("](", "](results/"), text, "the same report, links prefixed");
    }

    @Test
    void terminalTableHasTheSameCells() {
        String t = EvalCommand.table(rows(), run().contexts());
        assertTrue(t.contains("\ntiny\n") && t.contains("\nother model\n"), t);
        assertTrue(t.matches("(?s).*\\nh2o 25% +6\\.00 +7\\.00 +8\\.00 +50% +42000 +41000 +\\+2\\.4%.*"), t);
        // the second model has no pass-key column
        String other = t.substring(t.indexOf("\nother model\n"));
        assertFalse(other.contains("passkey"), other);
    }

    @Test
    void namesPointsTooCloseToTellApart() {
        var a = new EvalReport.Point("window 25%", 256, 11.45);
        var b = new EvalReport.Point("streaming_llm 25%", 256, 11.43);
        var c = new EvalReport.Point("h2o 25%", 264, 33.8);
        var d = new EvalReport.Point("snapkv 25%", 265, 33.9);
        // axes spanning 0..1024 and 11..34: a and b (0.1% of the y span apart) and c and d (1%) coincide
        assertEquals(" Too close to tell apart here: window 25% and streaming_llm 25%; h2o 25% and snapkv 25%.",
                EvalReport.coinciding(List.of(a, b, c, d), 1024, 23));
        // zoomed in on the y axis (a span of 2), c and d are apart
        assertEquals("", EvalReport.coinciding(List.of(c, d), 1024, 2));
        assertEquals("", EvalReport.coinciding(List.of(a, c), 1024, 23), "apart on both axes");
        assertEquals("", EvalReport.coinciding(List.of(a, new EvalReport.Point("x", 512, 11.45)), 1024, 23), "apart on one axis is apart");
    }

    /** The share of pixels that are not white. */
    static double inked(BufferedImage img) {
        long n = 0;
        for (int y = 0; y < img.getHeight(); y++) for (int x = 0; x < img.getWidth(); x++) if ((img.getRGB(x, y) & 0xffffff) != 0xffffff) n++;
        return n / (double) (img.getWidth() * img.getHeight());
    }
}
