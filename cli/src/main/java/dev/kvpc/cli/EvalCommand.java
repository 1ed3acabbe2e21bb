package dev.kvpc.cli;

import dev.kvpc.examples.llama.BpeTokenizer;
import dev.kvpc.examples.llama.GgufFile;
import dev.kvpc.examples.llama.Llama2cModel;
import dev.kvpc.examples.llama.Llama2cTokenizer;
import dev.kvpc.examples.llama.ModelFormatException;
import dev.kvpc.examples.llama.Tokenizer;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;

@Command(name = "eval", description = {"Evaluate KV-cache policies on real models: long-text perplexity (decoded token by token), pass-key",
        "retrieval by length and depth, measured KV bytes against kvpc memory's prediction, and throughput against the full cache.",
        "With no options: the core policies at 12.5%, 25% and 50% of the trained context on the embedded model,",
        "and on stories260K when ../shared/models/stories260K is present."})
final class EvalCommand implements java.util.concurrent.Callable<Integer> {
    @Option(names = "--model", paramLabel = "M", description = "A model to evaluate (.gguf with its tokenizer, or a llama2.c .bin with tok*.bin beside it); repeatable (default: the embedded model, and stories260K when present).")
    List<Path> models = new ArrayList<>();

    @Option(names = "--policies", split = ",", paramLabel = "P,...", description = "Policies (default: full,window,streaming_llm,h2o,tova,snapkv,pyramidkv,kivi).")
    List<String> policies = new ArrayList<>(List.of("full", "window", "streaming_llm", "h2o", "tova", "snapkv", "pyramidkv", "kivi"));

    @Option(names = "--budgets", split = ",", paramLabel = "F,...", description = "Budgets as fractions of the trained context (default 0.125,0.25,0.5).")
    double[] budgets = {0.125, 0.25, 0.5};

    @Option(names = "--lengths", split = ",", paramLabel = "N,...", description = "Perplexity length buckets in tokens (default: a quarter, half, all and twice the trained context).")
    int[] lengths;

    @Option(names = "--windows", paramLabel = "N", description = "Text windows per perplexity run (default 1).")
    int windows = 1;

    @Option(names = "--passkey-lengths", split = ",", paramLabel = "N,...", description = "Pass-key document lengths (default: a quarter, half and all the trained context).")
    int[] passkeyLengths;

    @Option(names = "--depths", split = ",", paramLabel = "D,...", description = "Depths of the key in the document, 0..1 (default 0.1,0.3,0.5,0.7,0.9).")
    double[] depths = {0.1, 0.3, 0.5, 0.7, 0.9};

    @Option(names = "--samples", paramLabel = "N", description = "Pass-key documents per cell (default 2).")
    int samples = 2;

    @Option(names = "--tasks", split = ",", paramLabel = "T,...", description = "perplexity, passkey (default both).")
    List<String> tasks = new ArrayList<>(List.of("perplexity", "passkey"));

    @Option(names = "--seed", paramLabel = "S", description = "Seed of the pass-key documents (default 1).")
    long seed = 1;

    @Option(names = "--threads", paramLabel = "N", description = "Policies evaluated at once (default: the cores).")
    int threads = Runtime.getRuntime().availableProcessors();

    @Option(names = "--quick", description = "A reduced grid: budget 25% only, lengths up to the trained context, one sample per pass-key cell, three depths.")
    boolean quick;

    @Option(names = "--json", paramLabel = "FILE", description = "Write the results as JSON (default eval-results.json in the current directory).")
    Path json = Path.of("eval-results.json");

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        if (windows < 1 || samples < 1 || threads < 1) throw new CommandLine.ParameterException(spec.commandLine(), "--windows, --samples and --threads must be at least 1");
        for (double b : budgets) if (!(b > 0 && b <= 1)) throw new CommandLine.ParameterException(spec.commandLine(), "--budgets are fractions in (0, 1]");
        for (double d : depths) if (!(d >= 0 && d <= 1)) throw new CommandLine.ParameterException(spec.commandLine(), "--depths are in [0, 1]");
        for (String t : tasks) if (!t.equals("perplexity") && !t.equals("passkey")) throw new CommandLine.ParameterException(spec.commandLine(), "--tasks: perplexity or passkey, not '" + t + "'");
        if (quick) {
            budgets = new double[] {0.25};
            depths = new double[] {0.1, 0.5, 0.9};
            samples = 1;
        }
        List<Eval.Model> ms = new ArrayList<>();
        try {
            if (models.isEmpty()) {
                Path home = home();
                ms.add(load(home.resolve("models/kvpc-tiny/kvpc-tiny.gguf"), home));
                Path stories = home.resolveSibling("shared").resolve("models/stories260K/stories260K.bin");
                if (Files.isRegularFile(stories)) ms.add(load(stories, home));
                else err.println("kvpc eval: stories260K not found beside the checkout (../shared/models/stories260K): evaluating the embedded model only");
            } else {
                for (Path m : models) ms.add(load(m, home()));
            }
        } catch (ModelFormatException e) {
            err.println("kvpc eval: " + e.getMessage());
            return Main.INVALID;
        }
        Path scratch = Files.createTempDirectory("kvpc-eval");
        List<Eval.Row> rows = new ArrayList<>();
        long t0 = System.nanoTime();
        for (Eval.Model m : ms) rows.addAll(evaluate(m, scratch, err));
        err.printf(Locale.ROOT, "%nevaluated %d rows in %.0f s%n", rows.size(), (System.nanoTime() - t0) / 1e9);
        out.print(table(rows));
        writeJson(rows);
        out.println("results: " + json);
        out.flush();
        return Main.OK;
    }

    private List<Eval.Row> evaluate(Eval.Model m, Path scratch, PrintWriter err) throws Exception {
        int ctx = m.trainedContext();
        int[] lens = lengths != null ? lengths : quick ? new int[] {ctx / 4, ctx / 2, ctx} : new int[] {ctx / 4, ctx / 2, ctx, 2 * ctx};
        int[] pk = passkeyLengths != null ? passkeyLengths : quick ? new int[] {ctx / 2, ctx} : new int[] {ctx / 4, ctx / 2, ctx};
        Arrays.sort(lens);
        int[] ids = encode(m, windows * (lens[lens.length - 1] + 1) + 1);
        if (ids.length < lens[lens.length - 1] + 2) throw new IllegalArgumentException(m.name() + ": its text has " + ids.length + " tokens, fewer than the longest length");
        List<String> fillers = Eval.fillers(m.text());
        boolean doPpl = tasks.contains("perplexity"), doPk = tasks.contains("passkey") && m.name().equals("kvpc-tiny");
        List<Eval.Policy> ps = Eval.core(policies, budgets, ctx, m.weights().headSize);
        // units of progress: 64 decoded tokens, one pass-key document
        long perPolicy = (doPpl ? (long) windows * lens[lens.length - 1] / 64 : 0) + (doPk ? (long) pk.length * depths.length * samples : 0);
        Progress progress = new Progress(err, m.name(), perPolicy * ps.size());
        ExecutorService pool = Executors.newFixedThreadPool(Math.min(threads, ps.size()));
        try {
            List<Future<Eval.Row>> fs = new ArrayList<>();
            for (Eval.Policy p : ps) {
                fs.add(pool.submit(() -> {
                    Eval.Compiled c = Eval.compile(p, m.weights().spec(), scratch);
                    progress.status(p.label());
                    Eval.Perplexity ppl = doPpl ? Eval.perplexity(m, c, ids, lens, windows, progress::tick) : null;
                    Eval.Grid grid = doPk ? Eval.grid(m, c, fillers, pk, depths, samples, seed, progress::tick) : null;
                    return new Eval.Row(m.name(), p, ppl, grid);
                }));
            }
            List<Eval.Row> rows = new ArrayList<>();
            for (Future<Eval.Row> f : fs) rows.add(f.get());
            progress.done();
            return rows;
        } finally {
            pool.shutdownNow();
        }
    }

    /**
     * The evaluation text's first {@code need} tokens (or all of them), encoded paragraph by paragraph: llama2.c's
     * merge loop is quadratic in the length it is given.
     */
    static int[] encode(Eval.Model m, int need) {
        List<int[]> parts = new ArrayList<>();
        int n = 0;
        for (String para : m.text().split("\n\n")) {
            if (n >= need) break;
            if (para.isBlank()) continue;
            int[] ids = m.encode().apply((n == 0 ? "" : "\n\n") + para);
            parts.add(ids);
            n += ids.length;
        }
        int[] out = new int[n];
        int o = 0;
        for (int[] p : parts) {
            System.arraycopy(p, 0, out, o, p.length);
            o += p.length;
        }
        return out;
    }

    /** A progress bar on the error stream: done / total units, the policy last started, time left. */
    static final class Progress {
        private final PrintWriter err;
        private final String model;
        private final long total;
        private final AtomicLong done = new AtomicLong();
        private final long start = System.nanoTime();
        private volatile String status = "";
        private long lastDraw;

        Progress(PrintWriter err, String model, long total) {
            this.err = err;
            this.model = model;
            this.total = Math.max(1, total);
        }

        void status(String s) {
            status = s;
            draw(true);
        }

        void tick() {
            done.incrementAndGet();
            draw(false);
        }

        synchronized void draw(boolean force) {
            long now = System.nanoTime();
            if (!force && now - lastDraw < 250_000_000L) return;
            lastDraw = now;
            long d = done.get();
            double frac = Math.min(1, d / (double) total);
            double secs = (now - start) / 1e9;
            String left = d == 0 ? "?" : String.format(Locale.ROOT, "%.0f s", secs / frac - secs);
            int width = 30, fill = (int) Math.round(frac * width);
            err.printf(Locale.ROOT, "\r%s [%s%s] %3.0f%%  %-22s left %s   ", model, "#".repeat(fill), ".".repeat(width - fill), frac * 100, status, left);
            err.flush();
        }

        void done() {
            done.set(total);
            status = "done";
            draw(true);
            err.println();
        }
    }

    private static Path home() {
        try {
            Path jar = Path.of(EvalCommand.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            for (Path p = jar; p != null; p = p.getParent()) if (Files.isDirectory(p.resolve("models/kvpc-tiny"))) return p;
        } catch (Exception ignored) {
            // fall back to the current directory
        }
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !Files.isDirectory(p.resolve("models/kvpc-tiny"))) p = p.getParent();
        return p != null ? p : Path.of("").toAbsolutePath();
    }

    /** A model with its tokenizer and evaluation text (the embedded model's held-out documents). */
    private static Eval.Model load(Path file, Path home) throws ModelFormatException, IOException {
        Path text = home.resolve("models/kvpc-tiny/heldout.txt");
        if (!Files.isRegularFile(text)) throw new ModelFormatException(text + ": the evaluation text is missing");
        String t = Files.readString(text);
        if (file.getFileName().toString().endsWith(".gguf")) {
            GgufFile g = GgufFile.open(file);
            Llama2cModel m = Llama2cModel.fromGguf(g);
            Tokenizer tok = Tokenizer.fromGguf(g, m.vocab);
            Function<String, int[]> enc = tok instanceof BpeTokenizer b ? b::encode : s -> ((Llama2cTokenizer) tok).encode(s, false);
            Object ctx = g.metadata().get("llama.context_length");
            int trained = ctx instanceof Number n ? n.intValue() : m.seqLen;
            String name = file.getFileName().toString().replaceFirst("\\.gguf$", "");
            return new Eval.Model(name, m, tok, enc, trained, t);
        }
        Llama2cModel m = Llama2cModel.load(file);
        Path dir = file.toAbsolutePath().getParent();
        Path tokFile;
        try (var s = Files.list(dir)) {
            tokFile = s.filter(f -> f.getFileName().toString().matches("tok.*\\.bin|tokenizer\\.bin")).sorted().findFirst()
                    .orElseThrow(() -> new ModelFormatException(file + ": no tokenizer.bin or tok*.bin beside it"));
        }
        Llama2cTokenizer tok = Llama2cTokenizer.load(tokFile, m.vocab);
        return new Eval.Model(file.getFileName().toString().replaceFirst("\\.bin$", ""), m, tok, s -> tok.encode(s, false), m.seqLen, t);
    }

    static String table(List<Eval.Row> rows) {
        StringBuilder sb = new StringBuilder();
        String model = null;
        for (Eval.Row r : rows) {
            if (!r.model().equals(model)) {
                model = r.model();
                sb.append('\n').append(model).append('\n');
                sb.append(String.format(Locale.ROOT, "%-20s", "policy"));
                if (r.perplexity() != null) for (int l : r.perplexity().lengths()) sb.append(String.format(Locale.ROOT, "%10s", "ppl@" + l));
                if (r.grid() != null) sb.append(String.format(Locale.ROOT, "%10s", "passkey"));
                sb.append(String.format(Locale.ROOT, "%12s%12s%8s%10s%10s%n", "KV bytes", "predicted", "diff", "decode/s", "prompt/s"));
            }
            sb.append(String.format(Locale.ROOT, "%-20s", r.policy().label()));
            Eval.Perplexity p = r.perplexity();
            if (p != null) for (int i = 0; i < p.lengths().length; i++) sb.append(String.format(Locale.ROOT, "%10.2f", p.ppl(i)));
            if (r.grid() != null) {
                int hits = 0, n = 0;
                for (int[] row : r.grid().hits()) for (int h : row) {
                    hits += h;
                    n += r.grid().samples();
                }
                sb.append(String.format(Locale.ROOT, "%9.0f%%", 100.0 * hits / n));
            }
            if (p != null) {
                String diff = p.predictedBytes() <= 0 ? "" : String.format(Locale.ROOT, "%+.1f%%", 100.0 * (p.measuredBytes() - p.predictedBytes()) / p.predictedBytes());
                sb.append(String.format(Locale.ROOT, "%12d%12s%8s%10.1f", p.measuredBytes(), p.predictedBytes() < 0 ? "" : Long.toString(p.predictedBytes()), diff,
                        p.decoded() / p.decodeSeconds()));
            } else {
                sb.append(String.format(Locale.ROOT, "%12s%12s%8s%10s", "", "", "", ""));
            }
            sb.append(r.grid() == null ? "" : String.format(Locale.ROOT, "%10.1f", r.grid().promptTokens() / r.grid().promptSeconds()));
            sb.append('\n');
        }
        return sb.toString();
    }

    private void writeJson(List<Eval.Row> rows) throws IOException {
        StringBuilder sb = new StringBuilder("{\n  \"seed\": " + seed + ",\n  \"rows\": [\n");
        for (int i = 0; i < rows.size(); i++) {
            sb.append("    ").append(Json.write(Eval.json(rows.get(i)))).append(i + 1 < rows.size() ? ",\n" : "\n");
        }
        sb.append("  ]\n}\n");
        Path abs = json.toAbsolutePath();
        if (abs.getParent() != null) Files.createDirectories(abs.getParent());
        Files.writeString(json, sb.toString());
    }

    /** A small JSON writer for maps, lists, strings, numbers, booleans and null. */
    static final class Json {
        static String write(Object o) {
            return switch (o) {
                case null -> "null";
                case Map<?, ?> m -> {
                    StringBuilder sb = new StringBuilder("{");
                    boolean first = true;
                    for (var e : m.entrySet()) {
                        if (!first) sb.append(", ");
                        first = false;
                        sb.append(string(String.valueOf(e.getKey()))).append(": ").append(write(e.getValue()));
                    }
                    yield sb.append('}').toString();
                }
                case List<?> l -> {
                    StringBuilder sb = new StringBuilder("[");
                    for (int i = 0; i < l.size(); i++) sb.append(i > 0 ? ", " : "").append(write(l.get(i)));
                    yield sb.append(']').toString();
                }
                case String s -> string(s);
                case Double d -> d.isNaN() || d.isInfinite() ? "null" : d.toString();
                case Float f -> f.isNaN() || f.isInfinite() ? "null" : f.toString();
                case Number n -> n.toString();
                case Boolean b -> b.toString();
                default -> string(o.toString());
            };
        }

        static String string(String s) {
            StringBuilder sb = new StringBuilder("\"");
            for (char c : s.toCharArray()) {
                switch (c) {
                    case '"' -> sb.append("\\\"");
                    case '\\' -> sb.append("\\\\");
                    case '\n' -> sb.append("\\n");
                    default -> {
                        if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
                        else sb.append(c);
                    }
                }
            }
            return sb.append('"').toString();
        }
    }
}
