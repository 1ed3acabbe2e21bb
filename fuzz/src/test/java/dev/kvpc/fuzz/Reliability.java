package dev.kvpc.fuzz;

import dev.kvpc.cli.Main;
import dev.kvpc.compiler.gen.ProgramGenerator;
import dev.kvpc.compiler.model.ModelShape;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;
import java.util.zip.ZipOutputStream;

/**
 * The reliability run (docs/reliability.md): the {@code kvpc} command line, in process, on generated programs (half of
 * them mutated) and on mutated model, tokenizer, trace, manifest and jar files. Every run must end with exit code 0,
 * 64 or 65, print no Java stack trace and take at most {@link #LIMIT_SECONDS} seconds; a run that does not is a
 * failure, kept with its input, arguments and output (and the output of a rerun with {@code --debug}) under
 * {@code failures}.
 */
final class Reliability {
    static final int LIMIT_SECONDS = 30;
    /** The shape of the seed models and jars ({@code fuzz/seeds/models.py}). */
    static final String TINY = "layers=1,heads=2,kv-heads=1,head-dim=4";
    private static final Path SEEDS = Path.of("src/test/resources/dev/kvpc/fuzz");

    /** Runs of one kind: how many ended with each exit code, and the slowest. */
    static final class Tally {
        final TreeMap<Integer, Integer> exits = new TreeMap<>();
        long runs, slowestNanos, totalNanos;
    }

    private final Path work;
    private final Path failures;
    private final Map<String, Tally> tallies = new TreeMap<>();
    private final List<String> failed = new ArrayList<>();
    private ExecutorService cli = executor();
    private long runs;
    private final long started = System.nanoTime();

    Reliability(Path work, Path failures) {
        this.work = work;
        this.failures = failures;
    }

    private static ExecutorService executor() {
        return Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "kvpc-cli");
            t.setDaemon(true);
            return t;
        });
    }

    List<String> failures() {
        return failed;
    }

    Map<String, Tally> tallies() {
        return tallies;
    }

    /** The last run's standard error. */
    private String lastErr = "";
    /** Programs that check without a diagnostic but that a later command refuses (exit 65): the compiler contradicts itself. */
    private final List<String> refusedAfterCheck = new ArrayList<>();

    List<String> refusedAfterCheck() {
        return refusedAfterCheck;
    }

    /** One command line, timed; a failure is recorded and its inputs kept. Returns the exit code (-1: past the limit). */
    int run(String kind, List<Path> inputs, String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        long t0 = System.nanoTime();
        int exit;
        Future<Integer> f = cli.submit(() -> Main.run(args, new PrintWriter(out, true), new PrintWriter(err, true)));
        String problem = null;
        try {
            exit = f.get(LIMIT_SECONDS, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            f.cancel(true);
            // the stuck thread is left behind (a daemon); the next runs get a fresh one
            cli = executor();
            exit = -1;
            problem = "ran past " + LIMIT_SECONDS + " s";
        } catch (ExecutionException e) {
            exit = -2;
            problem = "threw " + e.getCause();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
        long nanos = System.nanoTime() - t0;
        Tally t = tallies.computeIfAbsent(kind, k -> new Tally());
        t.runs++;
        t.exits.merge(exit, 1, Integer::sum);
        t.slowestNanos = Math.max(t.slowestNanos, nanos);
        t.totalNanos += nanos;
        String text = out + "\n" + err;
        if (problem == null && exit != Main.OK && exit != Main.USAGE && exit != Main.INVALID) problem = "exit " + exit;
        if (problem == null && (text.contains("\n\tat ") || text.contains("Exception in thread"))) problem = "a Java stack trace in its output";
        if (problem != null) keep(kind, problem, inputs, args, err.toString());
        lastErr = err.toString();
        if (++runs % 2000 == 0) progress();
        return exit;
    }

    /** How far the run is, in progress.txt beside the failures (Maven's -q hides a test's own output). */
    private void progress() {
        try {
            Files.createDirectories(failures.getParent());
            Files.writeString(failures.getParent().resolve("progress.txt"), String.format("%,d runs, %d failures, %.0f s%n", runs, failed.size(),
                    (System.nanoTime() - started) / 1e9));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private void keep(String kind, String problem, List<Path> inputs, String[] args, String err) {
        try {
            Path dir = failures.resolve(String.format("%04d-%s", failed.size(), kind.replaceAll("[^A-Za-z0-9]+", "-")));
            Files.createDirectories(dir);
            for (Path p : inputs) Files.copy(p, dir.resolve(p.getFileName()), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            String debug = "";
            if (!problem.startsWith("ran past")) {
                String[] withDebug = Arrays.copyOf(args, args.length + 1);
                withDebug[args.length] = "--debug";
                StringWriter o = new StringWriter(), e = new StringWriter();
                try {
                    cli.submit(() -> Main.run(withDebug, new PrintWriter(o, true), new PrintWriter(e, true))).get(LIMIT_SECONDS, TimeUnit.SECONDS);
                } catch (ExecutionException | TimeoutException x) {
                    e.append(x.toString());
                }
                debug = "\n--- with --debug:\n" + e;
            }
            Files.writeString(dir.resolve("run.txt"), "kvpc " + String.join(" ", args) + "\n" + problem + "\n--- stderr:\n" + err + debug);
            failed.add(kind + ": " + problem + ": kvpc " + String.join(" ", args) + " (kept in " + dir + ")");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /**
     * {@code n} programs from {@link ProgramGenerator} (seeds {@code seed} on), every second one mutated, each checked;
     * one that checks also goes through one of ir, memory, trace (the reference interpreter on a random trace),
     * compile and fmt, in turn.
     */
    void programs(int n, long seed) throws IOException {
        ModelShape reference = ModelShape.presets().get("reference");
        // the generator's programs read tables in their own folder
        Path dir = ProgramGenerator.tables(reference);
        Path file = dir.resolve("program.kvp"), jar = work.resolve("program.jar");
        int checked = 0;
        for (int i = 0; i < n; i++) {
            long s = seed + i;
            Random r = new Random(s);
            String text = ProgramGenerator.generate(s);
            boolean mutated = i % 2 == 1;
            // mutated: the text at large, or its numbers only (which keeps more of them past the parser)
            if (mutated) text = i % 4 == 1 ? Mutator.text(text, r) : Mutator.numbers(text, r);
            // getBytes, not writeString: a mutation may leave half a surrogate pair, which is written as '?'
            Files.write(file, text.getBytes(StandardCharsets.UTF_8));
            String kind = mutated ? "program (mutated)" : "program";
            List<Path> in = List.of(file);
            if (run(kind + ": check", in, "check", file.toString()) != Main.OK) continue;
            int exit = switch (checked++ % 5) {
                case 0 -> run(kind + ": ir", in, "ir", file.toString());
                case 1 -> run(kind + ": memory", in, "memory", file.toString(), "--context", "8192");
                case 2 -> run(kind + ": trace", in, "trace", file.toString(), "--model", "reference", "--trace", "random:seed=" + s + ",prefill=12,decode=3");
                case 3 -> run(kind + ": compile", in, "compile", file.toString(), "-o", jar.toString());
                default -> {
                    // exit 65 says the text is not in canonical form, which generated text need not be
                    run(kind + ": fmt", in, "fmt", "--check", file.toString());
                    yield Main.OK;
                }
            };
            if (exit == Main.INVALID) refusedAfterCheck.add("seed " + s + (mutated ? " (mutated)" : "") + ": " + lastErr.lines().findFirst().orElse(""));
        }
    }

    /**
     * {@code n} mutated files, in turn: GGUF models (F32 and F16), llama2.c checkpoints and tokenizers, binary and
     * text traces, manifests inside an otherwise valid jar, and whole jars; each given to the command that reads it.
     */
    void files(int n, long seed) throws IOException {
        Path gguf = copy("ModelFileFuzzTestInputs/gguf/tiny-f32", "tiny.gguf");
        Path gguf16 = copy("ModelFileFuzzTestInputs/gguf/tiny-f16", "tiny-f16.gguf");
        Path bin = copy("ModelFileFuzzTestInputs/llama2c/tiny", "tiny.bin");
        Path tok = work.resolve("tok.bin");
        Files.write(tok, tokenizer());
        Path traceBin = copy("TraceFuzzTestInputs/binary/tiny", "tiny.kvptrace");
        Path traceText = copy("TraceFuzzTestInputs/text/tiny", "tiny-trace.txt");
        Path policy = copy("FrontendFuzzTestInputs/check/h2o", "h2o.kvp");
        Path jar = work.resolve("h2o.jar");
        requireOk(run("setup", List.of(policy), "compile", policy.toString(), "--model", TINY, "-o", jar.toString()), "compiling the seed jar");
        requireOk(run("setup", List.of(gguf, jar), "run", "--model", gguf.toString(), "--policy", jar.toString(), "--prompt", "ab", "-n", "4"), "running the seed jar");
        requireOk(run("setup", List.of(bin, tok), "run", "--model", bin.toString(), "--tokenizer", tok.toString(), "--prompt", "ab", "-n", "4"), "running the seed checkpoint");
        requireOk(run("setup", List.of(policy, traceBin), "trace", policy.toString(), "--model", TINY, "--trace", traceBin.toString()), "tracing the seed trace");
        Map<String, byte[]> jarEntries = entries(jar);
        for (int i = 0; i < n; i++) {
            Random r = new Random(seed + i);
            switch (i % 8) {
                case 0, 1 -> {
                    Path m = mutate(i % 2 == 0 ? gguf : gguf16, "m.gguf", r);
                    if (r.nextInt(4) == 0) run("gguf: check --model", List.of(m), "check", "--model", m.toString(), policy.toString());
                    else run("gguf: run", List.of(m), "run", "--model", m.toString(), "--prompt", "ab", "-n", "4");
                }
                case 2 -> {
                    Path m = mutate(bin, "m.bin", r);
                    run("llama2.c checkpoint: run", List.of(m, tok), "run", "--model", m.toString(), "--tokenizer", tok.toString(), "--prompt", "ab", "-n", "4");
                }
                case 3 -> {
                    Path m = mutate(tok, "m-tok.bin", r);
                    run("llama2.c tokenizer: run", List.of(bin, m), "run", "--model", bin.toString(), "--tokenizer", m.toString(), "--prompt", "ab", "-n", "4");
                }
                case 4 -> {
                    Path m = work.resolve("m.kvptrace");
                    Files.write(m, Mutator.trace(Files.readAllBytes(traceBin), r));
                    run("binary trace: trace", List.of(m), "trace", policy.toString(), "--model", TINY, "--trace", m.toString());
                }
                case 5 -> {
                    Path m = work.resolve("m-trace.txt");
                    String t = Files.readString(traceText);
                    Files.write(m, (r.nextBoolean() ? Mutator.text(t, r) : Mutator.numbers(t, r)).getBytes(StandardCharsets.UTF_8));
                    run("text trace: trace", List.of(m), "trace", policy.toString(), "--model", TINY, "--trace", m.toString());
                }
                case 6 -> {
                    Map<String, byte[]> e = new TreeMap<>(jarEntries);
                    String manifest = "META-INF/kvpc-policy.properties";
                    String t = new String(e.get(manifest), StandardCharsets.UTF_8);
                    e.put(manifest, (r.nextBoolean() ? Mutator.text(t, r) : Mutator.numbers(t, r)).getBytes(StandardCharsets.UTF_8));
                    Path m = work.resolve("m-manifest.jar");
                    Files.write(m, zip(e));
                    run("jar manifest: run", List.of(m), "run", "--model", gguf.toString(), "--policy", m.toString(), "--prompt", "ab", "-n", "4");
                }
                default -> {
                    Path m = mutate(jar, "m.jar", r);
                    run("jar: run", List.of(m), "run", "--model", gguf.toString(), "--policy", m.toString(), "--prompt", "ab", "-n", "4");
                }
            }
        }
    }

    private static void requireOk(int exit, String what) {
        if (exit != Main.OK) throw new IllegalStateException("reliability: " + what + " failed (exit " + exit + "); the seeds are broken");
    }

    private Path copy(String seed, String name) throws IOException {
        Path p = work.resolve(name);
        Files.copy(SEEDS.resolve(seed), p, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        return p;
    }

    private Path mutate(Path from, String name, Random r) throws IOException {
        Path p = work.resolve(name);
        Files.write(p, Mutator.bytes(Files.readAllBytes(from), r));
        return p;
    }

    /** A llama2.c tokenizer for the seed models' 8 tokens. */
    private static byte[] tokenizer() {
        String[] pieces = {"<unk>", "<s>", "</s>", "a", "b", " a", "ab", " "};
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(256).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.putInt(8);
        for (int i = 0; i < pieces.length; i++) {
            byte[] p = pieces[i].getBytes(StandardCharsets.UTF_8);
            b.putFloat(-i).putInt(p.length).put(p);
        }
        return Arrays.copyOf(b.array(), b.position());
    }

    private static Map<String, byte[]> entries(Path jar) throws IOException {
        Map<String, byte[]> e = new TreeMap<>();
        try (ZipInputStream z = new ZipInputStream(Files.newInputStream(jar))) {
            for (ZipEntry x; (x = z.getNextEntry()) != null; ) e.put(x.getName(), z.readAllBytes());
        }
        return e;
    }

    private static byte[] zip(Map<String, byte[]> entries) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ZipOutputStream z = new ZipOutputStream(bytes)) {
            for (var e : entries.entrySet()) {
                z.putNextEntry(new ZipEntry(e.getKey()));
                z.write(e.getValue());
                z.closeEntry();
            }
        }
        return bytes.toByteArray();
    }

    /**
     * The figures as tab-separated lines, one per kind of run: kind, runs, exit 0, exit 64, exit 65, other, slowest (s),
     * total (s); tools/reliability adds up those of runs made side by side.
     */
    String tsv() {
        StringBuilder b = new StringBuilder();
        for (var e : tallies.entrySet()) {
            Tally t = e.getValue();
            long o = t.runs - t.exits.getOrDefault(0, 0) - t.exits.getOrDefault(64, 0) - t.exits.getOrDefault(65, 0);
            b.append(String.format(java.util.Locale.ROOT, "%s\t%d\t%d\t%d\t%d\t%d\t%.3f\t%.3f%n", e.getKey(), t.runs, t.exits.getOrDefault(0, 0),
                    t.exits.getOrDefault(64, 0), t.exits.getOrDefault(65, 0), o, t.slowestNanos / 1e9, t.totalNanos / 1e9));
        }
        return b.toString();
    }

    /** The figures as a Markdown table: per kind of run, how many ended with each exit code, and the slowest. */
    String report() {
        StringBuilder b = new StringBuilder("| runs of | runs | exit 0 | exit 64 | exit 65 | other | slowest (s) |\n|---|---:|---:|---:|---:|---:|---:|\n");
        long total = 0, other = 0;
        double slowest = 0;
        for (var e : tallies.entrySet()) {
            Tally t = e.getValue();
            long o = t.runs - t.exits.getOrDefault(0, 0) - t.exits.getOrDefault(64, 0) - t.exits.getOrDefault(65, 0);
            b.append(String.format("| %s | %,d | %,d | %,d | %,d | %,d | %.2f |%n", e.getKey(), t.runs, t.exits.getOrDefault(0, 0), t.exits.getOrDefault(64, 0),
                    t.exits.getOrDefault(65, 0), o, t.slowestNanos / 1e9));
            total += t.runs;
            other += o;
            slowest = Math.max(slowest, t.slowestNanos / 1e9);
        }
        b.append(String.format("| all | %,d | | | | %,d | %.2f |%n", total, other, slowest));
        b.append(String.format("%nFailures: %d. Wall time: %.0f s.%n", failed.size(), (System.nanoTime() - started) / 1e9));
        b.append(String.format("%nPrograms that check but a later command refuses: %d.%n", refusedAfterCheck.size()));
        refusedAfterCheck.forEach(x -> b.append("- ").append(x).append('\n'));
        return b.toString();
    }
}
