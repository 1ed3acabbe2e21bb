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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;

@Command(name = "eval", description = {"Evaluate KV-cache policies on real models: long-text perplexity (decoded token by token), pass-key "
        + "retrieval by length and depth, measured KV bytes against kvpc memory's prediction, and throughput against the full cache.",
        "With no options: the core policies at 12.5%%, 25%% and 50%% of the trained context on the embedded model, "
        + "and on stories260K when ../shared/models/stories260K is present."})
final class EvalCommand implements java.util.concurrent.Callable<Integer> {
    @Option(names = "--model", paramLabel = "M", description = "A model to evaluate (.gguf with its tokenizer, a llama2.c .bin with tok*.bin beside it, or a folder holding one); repeatable (default: the embedded model, and stories260K when present).")
    List<Path> models = new ArrayList<>();

    @Option(names = "--policies", split = ",(?![^(]*\\))", splitSynopsisLabel = ",", paramLabel = "P,...", description = {"Policies: core names, each at every budget (default: full,window,streaming_llm,h2o,tova,snapkv,pyramidkv,quest,kivi),",
            "a core name with arguments for its other parameters, 'h2o(recent = 0.1)', 'kivi(bits = 4)',",
            "or files, one row each: FILE.kvp (its last policy or config), FILE.kvp:NAME, FILE.jar (from kvpc compile)."})
    List<String> policies = new ArrayList<>(List.of("full", "window", "streaming_llm", "h2o", "tova", "snapkv", "pyramidkv", "quest", "kivi"));

    @Option(names = "--attention", split = ",(?![^(]*\\))", splitSynopsisLabel = ",", paramLabel = "V,...", description = {"Attention variants: every policy runs under each (softcap, softcap(cap = 30.0), alibi, sliding(w = 256), sigmoid,",
            "or one a .kvp policy file declares); 'standard' is the usual attention (default: standard only)."})
    List<String> attention = new ArrayList<>(List.of("standard"));

    @Option(names = "--budgets", split = ",", paramLabel = "F,...", description = "Budgets as fractions of the trained context (default 0.125,0.25,0.5).")
    double[] budgets = {0.125, 0.25, 0.5};

    @Option(names = "--lengths", split = ",", paramLabel = "N,...", description = "Perplexity length buckets in tokens, each at least 2 (default: a quarter, half, all and twice the trained context).")
    int[] lengths;

    @Option(names = "--windows", paramLabel = "N", description = {"Text windows per perplexity run, spread over the model's text; figures are",
            "summed over them (default 8; 1 with --quick)."})
    Integer windows;

    @Option(names = "--passkey-lengths", split = ",", paramLabel = "N,...", description = "Pass-key document lengths (default: a quarter, half and all the trained context).")
    int[] passkeyLengths;

    @Option(names = "--depths", split = ",", paramLabel = "D,...", description = "Depths of the key in the document, 0..1 (default 0.1,0.3,0.5,0.7,0.9).")
    double[] depths = {0.1, 0.3, 0.5, 0.7, 0.9};

    @Option(names = "--samples", paramLabel = "N", description = "Pass-key documents per cell (default 4).")
    int samples = 4;

    @Option(names = "--tasks", split = ",", paramLabel = "T,...", description = "perplexity, passkey (default both).")
    List<String> tasks = new ArrayList<>(List.of("perplexity", "passkey"));

    @Option(names = "--seed", split = ",", paramLabel = "S,...", description = {"Seeds of the pass-key documents, each giving --samples documents per cell (default 1);",
            "with several, the table gives each row's accuracy over all of them and its range from seed to seed."})
    List<Long> seeds = new ArrayList<>(List.of(1L));

    @Option(names = "--allow-nonfinite", description = "Load a model whose weights hold NaN or infinite values (a warning, not an error).")
    boolean allowNonFinite;

    @Option(names = "--device", defaultValue = "cpu", paramLabel = "cpu|opencl[:D]",
            description = {"Where decode attention, the engine and the policies' kernels run: cpu (the default), or an OpenCL device, as kvpc run --device takes it; the speed",
                    "figures are then the device's (its calls are taken one at a time: rows evaluated at once wait for it)."})
    String device;

    @Option(names = "--threads", paramLabel = "N", description = "Policies evaluated at once, 1 to 256 (default: the cores).")
    int threads = Runtime.getRuntime().availableProcessors();

    @Option(names = "--quick", description = "A reduced grid: budget 25%% only, lengths up to the trained context, one sample per pass-key cell, three depths.")
    boolean quick;

    @Option(names = "--markdown", paramLabel = "FILE", description = "Also write the Markdown report at FILE, its links to the plots relative to it (docs/results.md).")
    Path markdownFile;

    @Option(names = "--out", paramLabel = "DIR", description = {"Where the results go (default eval-results in the current directory): results.json, PNG plots,",
            "index.html (a page with the tables, the plots and the command) and results.md (the same as Markdown).",
            "`./kvpc eval --out docs/results --markdown docs/results.md` regenerates the project's results."})
    Path outDir = Path.of("eval-results");

    @Option(names = "--note", paramLabel = "TEXT", description = "A line for the report's header, e.g. which snapshot of a model this is; repeatable.")
    List<String> userNotes = new ArrayList<>();

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** Notes for the report: models whose text is too short for the text windows not to overlap. */
    private final List<String> shortText = new ArrayList<>();

    /**
     * Whether the results can be written to {@code dir}, asked before the evaluation runs rather than after: the folder
     * is made, and a file created and removed in it; a usage error says why not.
     */
    private void writable(Path dir) {
        try {
            Files.createDirectories(dir);
            Path probe = Files.createTempFile(dir, ".kvpc-eval-", ".probe");
            Files.delete(probe);
        } catch (java.io.IOException | SecurityException | UnsupportedOperationException e) {
            String why = e instanceof java.nio.file.FileSystemException f && f.getReason() != null ? f.getReason() : e.getClass().getSimpleName();
            throw new CommandLine.ParameterException(spec.commandLine(), "--out: cannot write results in " + dir + " (" + why + ")");
        }
    }

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        if (windows == null) windows = quick ? 1 : 8;
        if (windows < 1 || samples < 1) throw new CommandLine.ParameterException(spec.commandLine(), "--windows and --samples must be at least 1");
        Commands.range(spec, "--threads", threads, 1, Commands.MAX_THREADS);
        // a perplexity predicts each token from those before it: a length of 1 predicts nothing
        if (lengths != null) for (int n : lengths) Commands.range(spec, "--lengths", n, 2, Integer.MAX_VALUE);
        if (new java.util.HashSet<>(seeds).size() < seeds.size()) throw new CommandLine.ParameterException(spec.commandLine(), "--seed: " + seeds + " names a seed twice");
        for (double b : budgets) if (!(b > 0 && b <= 1)) throw new CommandLine.ParameterException(spec.commandLine(), "--budgets are fractions in (0, 1]");
        for (double d : depths) if (!(d >= 0 && d <= 1)) throw new CommandLine.ParameterException(spec.commandLine(), "--depths are in [0, 1]");
        for (String t : tasks) if (!t.equals("perplexity") && !t.equals("passkey")) throw new CommandLine.ParameterException(spec.commandLine(), "--tasks: perplexity or passkey, not '" + t + "'");
        if (markdownFile != null && Files.isDirectory(markdownFile)) throw new CommandLine.ParameterException(spec.commandLine(), "--markdown: " + markdownFile + " is a directory, not a file");
        if (Files.exists(outDir) && !Files.isDirectory(outDir)) throw new CommandLine.ParameterException(spec.commandLine(), "--out: " + outDir + " is a file, not a directory");
        writable(outDir);
        if (quick) {
            budgets = new double[] {0.25};
            depths = new double[] {0.1, 0.5, 0.9};
            samples = 1;
        }
        List<Eval.Model> ms = new ArrayList<>();
        Map<String, String> about = new LinkedHashMap<>();
        try {
            ms.addAll(models(models, about, err, "kvpc eval", allowNonFinite));
        } catch (ModelFormatException e) {
            err.println("kvpc eval: " + e.getMessage());
            return Main.INVALID;
        }
        Path scratch = Files.createTempDirectory("kvpc-eval");
        List<Eval.Row> rows = new ArrayList<>();
        long t0 = System.nanoTime();
        try (Devices.Attention attention = Devices.attention(spec, device, err)) {
            for (Eval.Model m : ms) rows.addAll(evaluate(m.on(attention), attention, scratch, err));
        } catch (IllegalArgumentException e) {
            // a policy that is not there or does not check for a model: said before any work on that model
            err.println("kvpc eval: " + e.getMessage());
            err.flush();
            return Main.INVALID;
        }
        err.printf(Locale.ROOT, "%nevaluated %d rows in %.0f s%n", rows.size(), (System.nanoTime() - t0) / 1e9);
        Map<String, Integer> contexts = new LinkedHashMap<>();
        for (Eval.Model m : ms) contexts.put(m.name(), m.trainedContext());
        out.print(table(rows, contexts));
        List<String> notes = new ArrayList<>(userNotes);
        if (quick) notes.add("a reduced grid (--quick): budget 25% only, pass-key depths 0.1, 0.5 and 0.9, one document per cell, one text window");
        if (tasks.contains("perplexity")) notes.add(windows + (windows == 1 ? " text window" : " text windows") + " per perplexity run, spread over each model's text"
                + (windows == 1 ? "" : "; a perplexity is over all of them"));
        notes.addAll(shortText);
        if (!device.equals("cpu")) {
            notes.add("decode attention, the engine's arithmetic and the policies' kernels on the OpenCL device --device " + device + " names (kvpc devices); the speed figures are its");
        }
        if (tasks.contains("passkey") && ms.stream().anyMatch(m -> !m.name().equals("kvpc-tiny"))) notes.add("pass keys are asked of kvpc-tiny only (the format it was trained on)");
        List<Path> written = EvalReport.write(outDir, new EvalReport.Run(commandLine(), seedArray(), contexts, about, notes, rows), markdownFile);
        out.println();
        out.println("wrote:");
        for (Path p : written) out.println("  " + p);
        out.flush();
        return Main.OK;
    }

    /** The shortest trained context the default lengths, fractions of it, measure anything at. */
    static final int MIN_CONTEXT = 64;

    private long[] seedArray() {
        return seeds.stream().mapToLong(Long::longValue).toArray();
    }

    private List<Eval.Row> evaluate(Eval.Model m, Devices.Attention device, Path scratch, PrintWriter err) throws Exception {
        int ctx = m.trainedContext();
        int[] lens = lengths != null ? lengths : quick ? new int[] {ctx / 4, ctx / 2, ctx} : new int[] {ctx / 4, ctx / 2, ctx, 2 * ctx};
        int[] pk = passkeyLengths != null ? passkeyLengths : quick ? new int[] {ctx / 2, ctx} : new int[] {ctx / 4, ctx / 2, ctx};
        // the default grid is fractions of the trained context: a model trained on a few tokens gets lengths that
        // measure nothing (a perplexity over one token, a pass-key document shorter than its key)
        if ((lengths == null || passkeyLengths == null) && ctx < MIN_CONTEXT) {
            throw new IllegalArgumentException(m.name() + ": its trained context is " + ctx + (ctx == 1 ? " token" : " tokens") + ", too short for the default lengths (at least "
                    + MIN_CONTEXT + "); give --lengths and --passkey-lengths");
        }
        Arrays.sort(lens);
        int[] ids = encode(m, windows * (lens[lens.length - 1] + 1) + 1);
        if (ids.length < lens[lens.length - 1] + 2) throw new IllegalArgumentException(m.name() + ": its text has " + ids.length + " tokens, fewer than the longest length");
        if (windows > 1 && tasks.contains("perplexity") && ids.length < windows * (lens[lens.length - 1] + 1) + 1) {
            String note = String.format(Locale.ROOT, "%s: its text has %d tokens, fewer than %d windows of %d, so the windows overlap", m.name(), ids.length, windows, lens[lens.length - 1] + 1);
            err.println("kvpc eval: " + note);
            shortText.add(note);
        }
        List<String> fillers = Eval.fillers(m.text());
        boolean doPpl = tasks.contains("perplexity"), doPk = tasks.contains("passkey") && m.name().equals("kvpc-tiny");
        List<String> variants = new ArrayList<>();
        for (String a : attention) variants.add(a.strip().equals("standard") ? null : a.strip());
        List<Eval.Policy> ps = Eval.policies(policies, budgets, ctx, m.weights().headSize, variants);
        // compile every row first: a policy that does not check for this model stops the run before any work
        Map<Eval.Policy, Eval.Compiled> compiled = new LinkedHashMap<>();
        for (Eval.Policy p : ps) compiled.put(p, Eval.compile(p, m.weights().spec(), scratch, device::policy));
        // the engine's code compiled by the JIT before any row is timed (else the first row, the full cache, pays for it
        // and every ratio to it is flattered); on as many threads as the rows will use
        Eval.warmUp(m, ids, Math.min(threads, ps.size()));
        // units of progress: 64 decoded tokens, one pass-key document
        long[] seedList = seedArray();
        long perPolicy = (doPpl ? (long) windows * lens[lens.length - 1] / 64 : 0) + (doPk ? (long) pk.length * depths.length * samples * seedList.length : 0);
        Progress progress = new Progress(err, m.name(), perPolicy * ps.size());
        ExecutorService pool = Executors.newFixedThreadPool(Math.min(threads, ps.size()));
        try {
            List<Future<Eval.Row>> fs = new ArrayList<>();
            for (Eval.Policy p : ps) {
                fs.add(pool.submit(() -> {
                    Eval.Compiled c = compiled.get(p);
                    if (doPpl) progress.status(p.label() + ": perplexity");
                    Eval.Perplexity ppl = doPpl ? Eval.perplexity(m, c, ids, lens, windows, progress::tick) : null;
                    if (doPk) progress.status(p.label() + ": pass keys");
                    Eval.Grid grid = doPk ? Eval.grid(m, c, fillers, pk, depths, samples, seedList, progress::tick) : null;
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

    /** A progress bar on the error stream: done / total units, the policy and task last started, time left. */
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
            err.printf(Locale.ROOT, "\r%s [%s%s] %3.0f%%  %-34s left %s   ", model, "#".repeat(fill), ".".repeat(width - fill), frac * 100, status, left);
            err.flush();
        }

        void done() {
            done.set(total);
            status = "done";
            draw(true);
            err.println();
        }
    }

    /**
     * The models given, or by default the embedded model and stories260K when ../shared holds it (saying so when it
     * does not), as {@code command} reports it.
     */
    static List<Eval.Model> models(List<Path> given, Map<String, String> about, PrintWriter err, String command, boolean allowNonFinite)
            throws ModelFormatException, IOException {
        List<Eval.Model> ms = new ArrayList<>();
        if (!given.isEmpty()) {
            for (Path m : given) ms.add(load(m, home(), about, allowNonFinite, err));
            return ms;
        }
        Path home = home();
        ms.add(load(home.resolve("models/kvpc-tiny/kvpc-tiny.gguf"), home, about));
        Path stories = home.resolveSibling("shared").resolve("models/stories260K/stories260K.bin");
        if (Files.isRegularFile(stories)) ms.add(load(stories, home, about));
        else err.println(command + ": stories260K not found beside the checkout (../shared/models/stories260K): the embedded model only");
        return ms;
    }

    static Path home() {
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
    static Eval.Model load(Path given, Path home, Map<String, String> about) throws ModelFormatException, IOException {
        return load(given, home, about, false, null);
    }

    /** As above; a model with non-finite weights is refused, or with {@code allowNonFinite} loaded with a warning on {@code err}. */
    static Eval.Model load(Path given, Path home, Map<String, String> about, boolean allowNonFinite, PrintWriter err) throws ModelFormatException, IOException {
        Path file = RunCommand.resolveModel(given);
        Path text = home.resolve("models/kvpc-tiny/heldout.txt");
        if (!Files.isRegularFile(text)) throw new ModelFormatException(text + ": the evaluation text is missing");
        String t = Files.readString(text);
        if (file.getFileName().toString().endsWith(".gguf")) {
            GgufFile g = GgufFile.open(file);
            Llama2cModel m = Llama2cModel.fromGguf(g);
            Commands.requireFinite(m, file, allowNonFinite, err);
            Tokenizer tok = Tokenizer.fromGguf(g, m.vocab);
            Function<String, int[]> enc = tok instanceof BpeTokenizer b ? b::encode : s -> ((Llama2cTokenizer) tok).encode(s, false);
            Object ctx = g.metadata().get("llama.context_length");
            int trained = ctx instanceof Number n ? n.intValue() : m.seqLen;
            String name = file.getFileName().toString().replaceFirst("\\.gguf$", "");
            Object tokens = g.metadata().get("kvpc.train.tokens"), steps = g.metadata().get("kvpc.train.steps");
            about.put(name, "GGUF, " + shape(m) + ", trained context " + trained + " tokens"
                    + (tokens != null ? "; training recorded in the file: " + tokens + " tokens" + (steps != null ? ", " + steps + " steps" : "") : ""));
            return new Eval.Model(name, m, tok, enc, trained, t);
        }
        Llama2cModel m = Llama2cModel.load(file);
        Commands.requireFinite(m, file, allowNonFinite, err);
        Llama2cTokenizer tok = Llama2cTokenizer.load(RunCommand.findTokenizer(file), m.vocab);
        String name = file.getFileName().toString().replaceFirst("\\.bin$", "");
        about.put(name, "llama2.c checkpoint, " + shape(m) + ", trained context " + m.seqLen + " tokens");
        return new Eval.Model(name, m, tok, s -> tok.encode(s, false), m.seqLen, t);
    }

    private static String shape(Llama2cModel m) {
        return m.layers + " layers, width " + m.dim + ", " + m.heads + " heads (" + m.kvHeads + " KV)";
    }

    /** The results tables for the terminal: the policy left-aligned, the figures right-aligned in columns. */
    static String table(List<Eval.Row> rows, Map<String, Integer> contexts) {
        StringBuilder sb = new StringBuilder();
        for (EvalReport.Table t : EvalReport.tables(rows)) {
            int[] w = new int[t.header().size()];
            w[0] = 20;
            for (int c = 1; c < w.length; c++) w[c] = Math.max(10, t.header().get(c).length() + 2);
            for (List<String> row : t.rows()) for (int c = 0; c < w.length; c++) w[c] = Math.max(w[c], row.get(c).length() + (c == 0 ? 1 : 2));
            sb.append('\n').append(t.model()).append('\n');
            line(sb, t.header(), w);
            for (List<String> row : t.rows()) line(sb, row, w);
            List<String> found = EvalFindings.of(EvalReport.byModel(rows).get(t.model()), contexts.getOrDefault(t.model(), 0));
            if (!found.isEmpty()) sb.append('\n');
            for (String x : found) sb.append("- ").append(x).append('\n');
        }
        return sb.toString();
    }

    private static void line(StringBuilder sb, List<String> cells, int[] w) {
        for (int c = 0; c < cells.size(); c++) {
            String x = cells.get(c);
            String pad = " ".repeat(Math.max(0, w[c] - x.length()));
            sb.append(c == 0 ? x + pad : pad + x);
        }
        sb.append('\n');
    }

    /** The command line as typed, for the report: {@code ./kvpc eval ...}, arguments quoted for a POSIX shell where need be. */
    private String commandLine() {
        StringBuilder sb = new StringBuilder("./kvpc");
        for (String a : spec.commandLine().getParseResult().originalArgs()) sb.append(' ').append(shellQuote(a));
        return sb.toString();
    }

    static String shellQuote(String a) {
        if (!a.isEmpty() && a.matches("[A-Za-z0-9_./=,:%+@-]+")) return a;
        return "'" + a.replace("'", "'\\''") + "'";
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
