package dev.kvpc.cli;

import org.knowm.xchart.HeatMapChart;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.internal.chartpart.Chart;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.lines.SeriesLines;
import org.knowm.xchart.style.markers.Marker;
import org.knowm.xchart.style.markers.SeriesMarkers;

import javax.imageio.ImageIO;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * The files {@code kvpc eval --out DIR} writes from its rows: {@code results.json}; PNG plots drawn with XChart
 * (perplexity against budget per model, pass-key accuracy by depth and length per policy, KV bytes against
 * perplexity); {@code index.html}, one self-contained page with the tables, the plots and the command; and
 * {@code results.md}, the same as Markdown with image links relative to it.
 */
final class EvalReport {
    private EvalReport() {}

    /**
     * What one run of {@code kvpc eval} produced: the command line that ran it, its seed, each model's trained
     * context and a line about it (in model order), notes on the run, and the rows.
     */
    record Run(String command, long[] seeds, Map<String, Integer> contexts, Map<String, String> about, List<String> notes, List<Eval.Row> rows) {}

    /** A results table for one model: a header and rows of formatted cells; the first column is the policy. */
    record Table(String model, List<String> header, List<List<String>> rows) {}

    /** An image written, a short name for it and what it shows. */
    record Plot(String model, String file, String alt, String caption) {}

    /** The plot files this class writes (and removes from the directory before writing a new set). */
    private static final Pattern OWN_PLOT = Pattern.compile("(ppl-budget|passkey|memory-quality)-.*\\.png");

    private static final Color[] PALETTE = {
            new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c), new Color(0xff7f0e), new Color(0x9467bd),
            new Color(0x8c564b), new Color(0xe377c2), new Color(0x17becf), new Color(0xbcbd22), new Color(0x7f7f7f)};
    private static final Marker[] MARKERS = {SeriesMarkers.CIRCLE, SeriesMarkers.SQUARE, SeriesMarkers.DIAMOND, SeriesMarkers.TRIANGLE_UP,
            SeriesMarkers.TRIANGLE_DOWN, SeriesMarkers.CROSS};

    /** Writes everything into {@code dir} (created if need be); returns the paths written, the JSON first. */
    static List<Path> write(Path dir, Run run) throws IOException {
        return write(dir, run, null);
    }

    /** As above, and the Markdown also at {@code markdown} (null: not), its links relative to where it is. */
    static List<Path> write(Path dir, Run run, Path markdown) throws IOException {
        System.setProperty("java.awt.headless", "true");
        Files.createDirectories(dir);
        try (var old = Files.list(dir)) {
            for (Path p : old.filter(p -> OWN_PLOT.matcher(p.getFileName().toString()).matches()).toList()) Files.delete(p);
        }
        List<Path> written = new ArrayList<>();
        Path json = dir.resolve("results.json");
        Files.writeString(json, json(run.seeds(), run.rows()));
        written.add(json);
        List<Plot> plots = new ArrayList<>();
        for (var e : byModel(run.rows()).entrySet()) {
            String model = e.getKey();
            List<Eval.Row> rows = e.getValue();
            int ctx = run.contexts().getOrDefault(model, 0);
            Map<String, Color> colours = colours(rows);
            plots.addAll(perplexityPlots(dir, model, ctx, rows, colours));
            plots.addAll(passkeyPlots(dir, model, rows));
            plots.addAll(memoryPlots(dir, model, ctx, rows, colours));
        }
        for (Plot p : plots) written.add(dir.resolve(p.file()));
        Path html = dir.resolve("index.html");
        Files.writeString(html, html(run, plots));
        written.add(html);
        Path md = dir.resolve("results.md");
        Files.writeString(md, markdown(run, plots, ""));
        written.add(md);
        if (markdown != null) {
            Path parent = markdown.toAbsolutePath().getParent();
            if (parent != null) Files.createDirectories(parent);
            String rel = parent == null ? "" : parent.relativize(dir.toAbsolutePath()).toString().replace('\\', '/');
            Files.writeString(markdown, markdown(run, plots, rel.isEmpty() ? "" : rel + "/"));
            written.add(markdown);
        }
        return written;
    }

    // ------------------------------------------------------------------------------------------- data

    static Map<String, List<Eval.Row>> byModel(List<Eval.Row> rows) {
        Map<String, List<Eval.Row>> out = new LinkedHashMap<>();
        for (Eval.Row r : rows) out.computeIfAbsent(r.model(), k -> new ArrayList<>()).add(r);
        return out;
    }

    /** The index of the perplexity bucket at the trained context: that length, else the longest below it, else the first. */
    static int trainedIndex(int[] lengths, int context) {
        int best = 0;
        for (int i = 0; i < lengths.length; i++) if (lengths[i] <= context) best = i;
        return best;
    }

    /** Which tokens bucket {@code i} covers, 1-based: "1-64", "65-128". */
    static String span(int[] lengths, int i) {
        return (i == 0 ? 1 : lengths[i - 1] + 1) + "-" + lengths[i];
    }

    static String json(long[] seeds, List<Eval.Row> rows) {
        StringBuilder sb = new StringBuilder("{\n  \"seeds\": " + java.util.Arrays.toString(seeds) + ",\n  \"rows\": [\n");
        for (int i = 0; i < rows.size(); i++) {
            sb.append("    ").append(EvalCommand.Json.write(Eval.json(rows.get(i)))).append(i + 1 < rows.size() ? ",\n" : "\n");
        }
        return sb.append("  ]\n}\n").toString();
    }

    /** The results tables, one per model; the terminal table, the page and the Markdown all show these. */
    static List<Table> tables(List<Eval.Row> rows) {
        List<Table> out = new ArrayList<>();
        for (var e : byModel(rows).entrySet()) {
            Eval.Row first = e.getValue().getFirst();
            List<String> header = new ArrayList<>(List.of("policy"));
            if (first.perplexity() != null) for (int l : first.perplexity().lengths()) header.add("ppl@" + l);
            if (first.grid() != null) header.add("passkey");
            header.addAll(List.of("KV bytes", "predicted", "diff", "decode/s", "x full", "prompt/s", "x full"));
            // throughput as a ratio to the full cache's in the same run
            double fullDecode = Double.NaN, fullPrompt = Double.NaN;
            for (Eval.Row r : e.getValue()) {
                if (!r.policy().full()) continue;
                if (r.perplexity() != null) fullDecode = r.perplexity().decoded() / r.perplexity().decodeSeconds();
                if (r.grid() != null) fullPrompt = r.grid().promptTokens() / r.grid().promptSeconds();
            }
            List<List<String>> cells = new ArrayList<>();
            for (Eval.Row r : e.getValue()) {
                List<String> c = new ArrayList<>(List.of(r.policy().label()));
                Eval.Perplexity p = r.perplexity();
                if (first.perplexity() != null) {
                    for (int i = 0; i < first.perplexity().lengths().length; i++) c.add(p == null || i >= p.lengths().length ? "" : f("%.2f", p.ppl(i)));
                }
                if (first.grid() != null) c.add(r.grid() == null ? "" : passkey(r.grid()));
                if (p != null) {
                    c.add(Long.toString(p.measuredBytes()));
                    c.add(p.predictedBytes() < 0 ? "" : Long.toString(p.predictedBytes()));
                    c.add(p.predictedBytes() <= 0 ? "" : f("%+.1f%%", 100.0 * (p.measuredBytes() - p.predictedBytes()) / p.predictedBytes()));
                    double rate = p.decoded() / p.decodeSeconds();
                    c.add(f("%.1f", rate));
                    c.add(Double.isNaN(fullDecode) ? "" : f("%.2f", rate / fullDecode));
                } else {
                    c.addAll(List.of("", "", "", "", ""));
                }
                double prompt = r.grid() == null ? Double.NaN : r.grid().promptTokens() / r.grid().promptSeconds();
                c.add(Double.isNaN(prompt) ? "" : f("%.1f", prompt));
                c.add(Double.isNaN(prompt) || Double.isNaN(fullPrompt) ? "" : f("%.2f", prompt / fullPrompt));
                cells.add(c);
            }
            out.add(new Table(e.getKey(), header, cells));
        }
        return out;
    }

    /** "seed 1", or "seeds 1, 2, 3" with a word on how the table uses them. */
    static String seeds(long[] seeds) {
        if (seeds.length == 1) return "seed " + seeds[0];
        StringBuilder sb = new StringBuilder("seeds ");
        for (int i = 0; i < seeds.length; i++) sb.append(i == 0 ? "" : ", ").append(seeds[i]);
        return sb.append(" (the pass-key documents of each; passkey is over all of them, its range from seed to seed in brackets)").toString();
    }

    /** The table's pass-key cell: the accuracy, and with several seeds its lowest and highest seed's. */
    static String passkey(Eval.Grid g) {
        double[] bySeed = g.accuracyBySeed();
        if (bySeed == null) return f("%.0f%%", 100 * accuracy(g));
        double lo = java.util.Arrays.stream(bySeed).min().orElseThrow(), hi = java.util.Arrays.stream(bySeed).max().orElseThrow();
        return f("%.0f%% (%.0f-%.0f)", 100 * accuracy(g), 100 * lo, 100 * hi);
    }

    static double accuracy(Eval.Grid g) {
        int hits = 0, n = 0;
        for (int[] row : g.hits()) {
            for (int h : row) {
                hits += h;
                n += g.samples();
            }
        }
        return n == 0 ? 0 : hits / (double) n;
    }

    private static String f(String format, Object... args) {
        return String.format(Locale.ROOT, format, args);
    }

    static String fileName(String model) {
        return model.replaceAll("[^A-Za-z0-9._-]", "_");
    }

    // ------------------------------------------------------------------------------------------- plots

    /** A colour per policy name (the full cache black), the same in every chart of a model. */
    static Map<String, Color> colours(List<Eval.Row> rows) {
        Map<String, Color> out = new LinkedHashMap<>();
        out.put("full", Color.BLACK);
        for (Eval.Row r : rows) if (!r.policy().full()) out.computeIfAbsent(r.policy().family(), k -> PALETTE[(out.size() - 1) % PALETTE.length]);
        return out;
    }

    /** Perplexity against budget, one line per policy family; the full cache and budget-free policies as flat lines. */
    private static List<Plot> perplexityPlots(Path dir, String model, int ctx, List<Eval.Row> rows, Map<String, Color> colours) throws IOException {
        Eval.Row withPpl = rows.stream().filter(r -> r.perplexity() != null).findFirst().orElse(null);
        if (withPpl == null) return List.of();
        int[] lengths = withPpl.perplexity().lengths();
        int trained = trainedIndex(lengths, ctx);
        List<Integer> which = new ArrayList<>(List.of(trained));
        if (lengths.length - 1 != trained) which.add(lengths.length - 1);
        List<Plot> out = new ArrayList<>();
        for (int i : which) {
            XYChart chart = new XYChart(720, 460);
            chart.setTitle(model + ": perplexity of tokens " + span(lengths, i) + " against KV budget");
            chart.setXAxisTitle("budget (fraction of the trained context" + (ctx > 0 ? ", " + ctx + " tokens" : "") + ")");
            chart.setYAxisTitle("perplexity, tokens " + span(lengths, i));
            style(chart);
            chart.getStyler().setXAxisMin(0.0).setXAxisMax(1.0);
            Map<String, List<Eval.Row>> families = new LinkedHashMap<>();
            int marker = 0;
            List<Point> points = new ArrayList<>();
            List<Double> ys = new ArrayList<>();
            for (Eval.Row r : rows) {
                if (r.perplexity() == null || i >= r.perplexity().lengths().length || !finite(r.perplexity().ppl(i))) continue;
                if (r.policy().full() || Double.isNaN(r.policy().budget())) {
                    double y = r.perplexity().ppl(i);
                    ys.add(y);
                    XYSeries s = chart.addSeries(r.policy().full() ? "full cache" : r.policy().label(), new double[] {0, 1}, new double[] {y, y});
                    s.setMarker(SeriesMarkers.NONE);
                    s.setLineColor(colours.get(r.policy().family()));
                    s.setLineStyle(r.policy().full() ? SeriesLines.DASH_DASH : SeriesLines.DOT_DOT);
                } else {
                    families.computeIfAbsent(r.policy().family(), k -> new ArrayList<>()).add(r);
                }
            }
            for (var fam : families.entrySet()) {
                List<Eval.Row> fr = new ArrayList<>(fam.getValue());
                fr.sort((a, b) -> Double.compare(a.policy().budget(), b.policy().budget()));
                double[] x = new double[fr.size()], y = new double[fr.size()];
                for (int k = 0; k < fr.size(); k++) {
                    x[k] = fr.get(k).policy().budget();
                    y[k] = fr.get(k).perplexity().ppl(i);
                    points.add(new Point(fr.get(k).policy().label(), x[k], y[k]));
                    ys.add(y[k]);
                }
                XYSeries s = chart.addSeries(fam.getKey(), x, y);
                s.setMarker(MARKERS[marker++ % MARKERS.length]);
                s.setMarkerColor(colours.get(fam.getKey()));
                s.setLineColor(colours.get(fam.getKey()));
            }
            if (chart.getSeriesMap().isEmpty()) continue;
            String file = "ppl-budget-" + fileName(model) + "-" + lengths[i] + ".png";
            save(chart, dir.resolve(file));
            String at = i == trained ? "at the trained context" : "at the longest length";
            out.add(new Plot(model, file, model + ": perplexity against budget, tokens " + span(lengths, i),
                    "Perplexity of tokens " + span(lengths, i) + " (" + at + ") against the KV budget, one line per policy; "
                    + "the full cache dashed, budget-free policies dotted." + coinciding(points, 1.0, span(ys))));
        }
        return out;
    }

    /** Pass-key accuracy by depth (x) and length (y), one small heatmap per policy, side by side in one image. */
    private static List<Plot> passkeyPlots(Path dir, String model, List<Eval.Row> rows) throws IOException {
        List<HeatMapChart> charts = new ArrayList<>();
        for (Eval.Row r : rows) {
            Eval.Grid g = r.grid();
            if (g == null) continue;
            // the constructor without a theme leaves the styler's fonts and colours unset, and draws nothing but the values
            HeatMapChart h = new HeatMapChart(300, 260, Styler.ChartTheme.XChart);
            h.setTitle(r.policy().label());
            h.setXAxisTitle("depth");
            h.setYAxisTitle("length");
            List<String> xs = new ArrayList<>(), ys = new ArrayList<>();
            for (double d : g.depths()) xs.add(f("%.2f", d).replaceFirst("0+$", "").replaceFirst("\\.$", ".0"));
            for (int l : g.lengths()) ys.add(Integer.toString(l));
            List<Number[]> cells = new ArrayList<>();
            for (int li = 0; li < g.lengths().length; li++) {
                for (int di = 0; di < g.depths().length; di++) cells.add(new Number[] {di, li, g.hits()[li][di] / (double) g.samples()});
            }
            h.addSeries("accuracy", xs, ys, cells);
            var st = h.getStyler();
            st.setChartBackgroundColor(Color.WHITE);
            st.setLegendVisible(false);
            st.setMin(0).setMax(1);
            st.setRangeColors(new Color[] {new Color(0xd73027), new Color(0xfee08b), new Color(0x1a9850)});
            st.setShowValue(true);
            st.setHeatMapValueDecimalPattern("0%");
            st.setValueFont(new Font(Font.SANS_SERIF, Font.BOLD, 13));
            st.setValueFontColor(Color.BLACK);
            charts.add(h);
        }
        if (charts.isEmpty()) return List.of();
        String file = "passkey-" + fileName(model) + ".png";
        grid(charts, dir.resolve(file));
        int samples = rows.stream().filter(r -> r.grid() != null).findFirst().orElseThrow().grid().samples();
        return List.of(new Plot(model, file, model + ": pass-key accuracy by depth and length", "Pass-key accuracy by depth of the key (x) and document length in tokens (y), one panel per policy; "
                + samples + " document" + (samples == 1 ? "" : "s") + " per cell."));
    }

    /** Measured KV bytes against perplexity at the trained context, one point per policy. */
    private static List<Plot> memoryPlots(Path dir, String model, int ctx, List<Eval.Row> rows, Map<String, Color> colours) throws IOException {
        XYChart chart = new XYChart(720, 460);
        Eval.Row withPpl = rows.stream().filter(r -> r.perplexity() != null).findFirst().orElse(null);
        if (withPpl == null) return List.of();
        int[] lengths = withPpl.perplexity().lengths();
        int i = trainedIndex(lengths, ctx);
        chart.setTitle(model + ": KV memory against perplexity");
        chart.setXAxisTitle("measured KV bytes after " + lengths[lengths.length - 1] + " tokens (KiB)");
        chart.setYAxisTitle("perplexity, tokens " + span(lengths, i));
        style(chart);
        chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
        chart.getStyler().setXAxisMin(0.0);
        chart.getStyler().setMarkerSize(11);
        Map<Double, Integer> budgetMarker = new TreeMap<>();
        for (Eval.Row r : rows) if (!Double.isNaN(r.policy().budget()) && !r.policy().full()) budgetMarker.putIfAbsent(r.policy().budget(), 0);
        int m = 0;
        for (var e : budgetMarker.entrySet()) e.setValue(m++);
        List<Point> points = new ArrayList<>();
        for (Eval.Row r : rows) {
            Eval.Perplexity p = r.perplexity();
            if (p == null || i >= p.lengths().length || !finite(p.ppl(i))) continue;
            XYSeries s = chart.addSeries(r.policy().label(), new double[] {p.measuredBytes() / 1024.0}, new double[] {p.ppl(i)});
            points.add(new Point(r.policy().label(), p.measuredBytes(), p.ppl(i)));
            s.setMarkerColor(colours.get(r.policy().family()));
            Integer b = r.policy().full() ? null : budgetMarker.get(r.policy().budget());
            s.setMarker(r.policy().full() ? SeriesMarkers.CIRCLE : b == null ? SeriesMarkers.CROSS : MARKERS[b % MARKERS.length]);
        }
        if (chart.getSeriesMap().isEmpty()) return List.of();
        String file = "memory-quality-" + fileName(model) + ".png";
        save(chart, dir.resolve(file));
        return List.of(new Plot(model, file, model + ": KV bytes against perplexity", "Measured KV bytes at the end of the longest perplexity run against perplexity of tokens " + span(lengths, i)
                + " (the trained context): colour by policy, marker by budget."
                + coinciding(points, points.stream().mapToDouble(Point::x).max().orElse(1), span(points.stream().map(Point::y).toList()))));
    }

    /** A point drawn, for telling which ones hide each other. */
    record Point(String label, double x, double y) {}

    /**
     * A sentence naming the points that lie on one another in a plot whose axes span {@code xSpan} and {@code ySpan}
     * (within 1.5% of the span on both axes, about a marker's width), which the plot cannot show apart; empty when
     * there are none.
     */
    static String coinciding(List<Point> points, double xSpan, double ySpan) {
        List<List<String>> groups = new ArrayList<>();
        boolean[] taken = new boolean[points.size()];
        for (int a = 0; a < points.size(); a++) {
            if (taken[a]) continue;
            List<String> g = new ArrayList<>(List.of(points.get(a).label()));
            for (int b = a + 1; b < points.size(); b++) {
                Point p = points.get(a), q = points.get(b);
                if (!taken[b] && Math.abs(p.x() - q.x()) <= 0.015 * xSpan && Math.abs(p.y() - q.y()) <= 0.015 * ySpan) {
                    taken[b] = true;
                    g.add(q.label());
                }
            }
            if (g.size() > 1) groups.add(g);
        }
        if (groups.isEmpty()) return "";
        StringBuilder sb = new StringBuilder(" Too close to tell apart here: ");
        for (int k = 0; k < groups.size(); k++) sb.append(k > 0 ? "; " : "").append(String.join(" and ", groups.get(k)));
        return sb.append('.').toString();
    }

    /** The span of the values, at least a tiny positive amount. */
    private static double span(List<Double> values) {
        double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
        for (double v : values) {
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
        }
        return values.isEmpty() ? 1e-12 : Math.max(1e-12, hi - lo);
    }

    private static boolean finite(double d) {
        return !Double.isNaN(d) && !Double.isInfinite(d);
    }

    private static void style(XYChart chart) {
        var st = chart.getStyler();
        st.setChartBackgroundColor(Color.WHITE);
        st.setLegendPosition(Styler.LegendPosition.OutsideE);
        st.setMarkerSize(8);
        st.setPlotGridLinesVisible(true);
    }

    private static void save(Chart<?, ?> chart, Path file) throws IOException {
        BufferedImage img = new BufferedImage(chart.getWidth(), chart.getHeight(), BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        try {
            chart.paint(g, chart.getWidth(), chart.getHeight());
        } finally {
            g.dispose();
        }
        png(img, file);
    }

    /** Charts of one size in a grid, at most four to a row. */
    private static void grid(List<? extends Chart<?, ?>> charts, Path file) throws IOException {
        int w = charts.getFirst().getWidth(), h = charts.getFirst().getHeight();
        int cols = Math.min(4, charts.size()), rowsN = (charts.size() + cols - 1) / cols;
        BufferedImage img = new BufferedImage(cols * w, rowsN * h, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        try {
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, img.getWidth(), img.getHeight());
            for (int k = 0; k < charts.size(); k++) {
                Graphics2D cell = (Graphics2D) g.create((k % cols) * w, (k / cols) * h, w, h);
                try {
                    charts.get(k).paint(cell, w, h);
                } finally {
                    cell.dispose();
                }
            }
        } finally {
            g.dispose();
        }
        png(img, file);
    }

    private static void png(BufferedImage img, Path file) throws IOException {
        if (!ImageIO.write(img, "png", file.toFile())) throw new IOException(file + ": no PNG writer in this JDK");
    }

    // ------------------------------------------------------------------------------------------- page and Markdown

    static String html(Run run, List<Plot> plots) {
        StringBuilder sb = new StringBuilder();
        sb.append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>kvpc eval</title>\n<style>\n")
                .append("body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }\n")
                .append("table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }\n")
                .append("th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }\n")
                .append("th:first-child, td:first-child { text-align: left; }\n")
                .append("th { background: #eee; }\n")
                .append("pre { background: #f4f4f4; padding: 0.6em; overflow-x: auto; }\n")
                .append("figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #ddd; }\n")
                .append("</style>\n</head>\n<body>\n<h1>kvpc eval</h1>\n");
        sb.append("<p>Produced by:</p>\n<pre><code>").append(esc(run.command())).append("</code></pre>\n");
        sb.append("<ul>\n<li>").append(seeds(run.seeds())).append("</li>\n");
        for (var e : run.about().entrySet()) sb.append("<li>").append(esc(e.getKey())).append(": ").append(esc(e.getValue())).append("</li>\n");
        for (String n : run.notes()) sb.append("<li>").append(esc(n)).append("</li>\n");
        sb.append("</ul>\n");
        sb.append("<p>ppl@N: perplexity of the tokens after the previous length up to N, decoded token by token under the policy. passkey: ")
                .append("share of pass-key documents answered. KV bytes: measured after the longest perplexity run; predicted: <code>kvpc memory</code>'s figure. ")
                .append("decode/s and prompt/s: tokens per second (x full: as a ratio to the full cache's in the same run). Raw figures: <a href=\"results.json\">results.json</a>.</p>\n");
        for (Table t : tables(run.rows())) {
            sb.append("<h2>").append(esc(t.model())).append("</h2>\n<table>\n<tr>");
            for (String h : t.header()) sb.append("<th>").append(esc(h)).append("</th>");
            sb.append("</tr>\n");
            for (List<String> row : t.rows()) {
                sb.append("<tr>");
                for (String c : row) sb.append("<td>").append(esc(c)).append("</td>");
                sb.append("</tr>\n");
            }
            sb.append("</table>\n");
            List<String> found = EvalFindings.of(byModel(run.rows()).get(t.model()), run.contexts().getOrDefault(t.model(), 0));
            if (!found.isEmpty()) {
                sb.append("<p>Findings, computed from this run's rows:</p>\n<ul>\n");
                for (String x : found) sb.append("<li>").append(esc(x)).append("</li>\n");
                sb.append("</ul>\n");
            }
            for (Plot p : plots) {
                if (!p.model().equals(t.model())) continue;
                sb.append("<figure><img src=\"").append(esc(p.file())).append("\" alt=\"").append(esc(p.alt())).append("\">")
                        .append("<figcaption>").append(esc(p.caption())).append("</figcaption></figure>\n");
            }
        }
        sb.append("</body>\n</html>\n");
        return sb.toString();
    }

    static String markdown(Run run, List<Plot> plots) {
        return markdown(run, plots, "");
    }

    /** The Markdown report; {@code prefix} leads every link to the results folder ("" when it is written there). */
    static String markdown(Run run, List<Plot> plots, String prefix) {
        StringBuilder sb = new StringBuilder("# kvpc eval results\n\n");
        sb.append("Produced by:\n\n```\n").append(run.command()).append("\n```\n\n");
        sb.append("- ").append(seeds(run.seeds())).append('\n');
        for (var e : run.about().entrySet()) sb.append("- ").append(e.getKey()).append(": ").append(e.getValue()).append('\n');
        for (String n : run.notes()) sb.append("- ").append(n).append('\n');
        sb.append("\nppl@N: perplexity of the tokens after the previous length up to N, decoded token by token under the policy. passkey: share of ")
                .append("pass-key documents answered. KV bytes: measured after the longest perplexity run; predicted: `kvpc memory`'s figure. ")
                .append("decode/s and prompt/s: tokens per second (x full: as a ratio to the full cache's in the same run). Raw figures: [results.json](" + prefix + "results.json); the same as a page: [index.html](" + prefix + "index.html).\n");
        for (Table t : tables(run.rows())) {
            sb.append("\n## ").append(t.model()).append("\n\n|");
            for (String h : t.header()) sb.append(' ').append(mdCell(h)).append(" |");
            sb.append("\n|");
            for (int k = 0; k < t.header().size(); k++) sb.append(k == 0 ? "---|" : "---:|");
            sb.append('\n');
            for (List<String> row : t.rows()) {
                sb.append('|');
                for (String c : row) sb.append(' ').append(mdCell(c)).append(" |");
                sb.append('\n');
            }
            List<String> found = EvalFindings.of(byModel(run.rows()).get(t.model()), run.contexts().getOrDefault(t.model(), 0));
            if (!found.isEmpty()) {
                sb.append("\nFindings, computed from this run's rows:\n\n");
                for (String x : found) sb.append("- ").append(x).append('\n');
            }
            for (Plot p : plots) {
                if (!p.model().equals(t.model())) continue;
                sb.append('\n').append(p.caption()).append("\n\n![").append(p.alt().replace("]", ")").replace("[", "(")).append("](").append(prefix).append(p.file()).append(")\n");
            }
        }
        return sb.toString();
    }

    private static String mdCell(String s) {
        return s.replace("|", "\\|");
    }

    static String esc(String s) {
        StringBuilder sb = new StringBuilder();
        for (char c : s.toCharArray()) {
            switch (c) {
                case '<' -> sb.append("&lt;");
                case '>' -> sb.append("&gt;");
                case '&' -> sb.append("&amp;");
                case '"' -> sb.append("&quot;");
                default -> sb.append(c);
            }
        }
        return sb.toString();
    }
}
