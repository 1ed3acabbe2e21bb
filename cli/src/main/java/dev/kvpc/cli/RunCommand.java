package dev.kvpc.cli;

import dev.kvpc.embed.Kvpc;
import dev.kvpc.examples.llama.GgufFile;
import dev.kvpc.examples.llama.Llama2cModel;
import dev.kvpc.examples.llama.Llama2cTokenizer;
import dev.kvpc.examples.llama.LlamaEngine;
import dev.kvpc.examples.llama.Matmul;
import dev.kvpc.examples.llama.ModelFormatException;
import dev.kvpc.examples.llama.Sampler;
import dev.kvpc.examples.llama.Tokenizer;
import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.pool.PagePool;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "run", description = {"Generate text with a model whose KV cache is the kvpc runtime, under a policy:",
        "tokens stream as they are made; at the end, tokens/s and the measured KV bytes against the full cache's."})
final class RunCommand implements Callable<Integer> {
    @Option(names = "--model", paramLabel = "M",
            description = "A GGUF file, a llama2.c checkpoint (.bin, its tokenizer beside it or given by --tokenizer), or a folder holding one "
                    + "(default: the embedded model, models/kvpc-tiny).")
    Path model;

    @Option(names = "--tokenizer", paramLabel = "FILE", description = "llama2.c tokenizer for a .bin checkpoint (default: tokenizer.bin or tok*.bin beside it).")
    Path tokenizer;

    @Option(names = "--policy", paramLabel = "P.kvp|P.jar", description = "A KVP file whose policy or config manages the cache, or a jar from kvpc compile (default: the full cache).")
    Path policyFile;

    @Option(names = "--name", paramLabel = "NAME", description = "The policy or config in P.kvp (default: the last one).")
    String policyName;

    @Option(names = "--param", paramLabel = "NAME=VALUE", description = "Give a parameter of the policy a value (repeatable).")
    Map<String, String> params = new LinkedHashMap<>();

    @Option(names = "--attention", paramLabel = "V", description = {"An attention variant, with optional arguments: softcap, softcap(cap = 30.0), alibi, sliding(w = 256), sigmoid,",
            "or one declared in P.kvp (default: standard, or the config's own). The policy runs under it on every layer."})
    String attention;

    @Option(names = "--prompt", defaultValue = "", paramLabel = "TEXT", description = "The text to continue (default: none).")
    String prompt;

    @Option(names = {"-n", "--steps"}, defaultValue = "256", paramLabel = "N", description = "Positions to run, prompt included (default 256).")
    int steps;

    @Option(names = "--temperature", defaultValue = "0", paramLabel = "T", description = "0 for greedy (the default), else the sampling temperature, a finite number > 0.")
    float temperature;

    @Option(names = "--top-p", defaultValue = "0.9", paramLabel = "P", description = "Nucleus sampling mass, in (0, 1]; 1 samples from all (default 0.9).")
    float topp;

    @Option(names = "--seed", defaultValue = "42", description = "Sampling seed (default 42; llama2.c's generator, so a seed gives llama2.c's tokens).")
    long seed;

    @Option(names = "--matmul", defaultValue = "auto", paramLabel = "auto|vector|scalar",
            description = {"Matrix kernels: vector (the Vector API; the kvpc script starts the JVM with it), scalar (llama2.c's summation order),",
                    "or auto, vector when the JVM has the module (the default)."})
    String matmul;

    @Option(names = "--allow-nonfinite", description = "Load a model whose weights hold NaN or infinite values (a warning, not an error).")
    boolean allowNonFinite;

    @Option(names = "--threads", paramLabel = "N", description = "Threads the matrix products and the attention of a layer's KV heads spread over, 1 to 256 (default: the machine's processors; the result does not depend on it).")
    Integer threads;

    @Option(names = "--device", defaultValue = "cpu", paramLabel = "cpu|opencl[:D]",
            description = {"Where decode attention, the matrix products and a .kvp policy's loop nests and rankings run: cpu (the default), or opencl, an OpenCL device",
                    "(the first GPU, else the first device; opencl:N, opencl:P:D or opencl:NAME picks one, as kvpc devices lists them)."})
    String device;

    @Option(names = "--record-trace", paramLabel = "FILE", description = {"Record every step's keys, values and queries, as the engine hands them to the runtime (unrotated, with",
            "the model's RoPE named), to FILE: a trace kvpc trace replays through any policy (--model layers=L,heads=H,kv-heads=G,head-dim=D)."})
    Path recordTrace;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter err = spec.commandLine().getErr();
        if (steps < 1) throw new CommandLine.ParameterException(spec.commandLine(), "-n must be at least 1");
        if (!(temperature >= 0) || Float.isInfinite(temperature)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--temperature must be 0 (greedy) or a finite number > 0, not " + temperature);
        }
        if (!(topp > 0 && topp <= 1)) throw new CommandLine.ParameterException(spec.commandLine(), "--top-p must be in (0, 1], not " + topp);
        Matmul kernels = switch (matmul) {
            case "auto" -> Matmul.best();
            case "scalar" -> Matmul.scalar();
            case "vector" -> {
                if (!Matmul.vectorAvailable())
                    throw new CommandLine.ParameterException(spec.commandLine(), "--matmul vector needs the JVM started with --add-modules jdk.incubator.vector (the kvpc script does)");
                yield Matmul.vector();
            }
            default -> throw new CommandLine.ParameterException(spec.commandLine(), "--matmul is auto, vector or scalar, not '" + matmul + "'");
        };
        int nThreads = threads != null ? threads : Runtime.getRuntime().availableProcessors();
        Commands.range(spec, "--threads", nThreads, 1, Commands.MAX_THREADS);
        kernels = Matmul.parallel(kernels, nThreads);
        Llama2cModel m;
        Tokenizer tok;
        try {
            if (model == null) model = EvalCommand.home().resolve("models/kvpc-tiny");
            Path file = resolveModel(model);
            if (file.getFileName().toString().endsWith(".gguf")) {
                GgufFile g = GgufFile.open(file);
                m = Llama2cModel.fromGguf(g);
                tok = Tokenizer.fromGguf(g, m.vocab);
            } else {
                m = Llama2cModel.load(file);
                tok = Llama2cTokenizer.load(tokenizer != null ? tokenizer : findTokenizer(file), m.vocab);
            }
            Commands.requireFinite(m, file, allowNonFinite, err);
        } catch (ModelFormatException e) {
            err.println("kvpc run: " + e.getMessage());
            err.flush();
            return Main.INVALID;
        }
        ModelSpec shape = m.spec();
        PolicyRunner policy = LlamaEngine.fullCache();
        // a .kvp policy (or a variant) is specialised here and compiled for where it runs, below
        dev.kvpc.ir.Specialized program = null;
        if (policyFile != null && policyFile.getFileName().toString().endsWith(".jar")) {
            if (policyName != null || !params.isEmpty() || attention != null) {
                throw new CommandLine.ParameterException(spec.commandLine(), "a compiled policy jar is already specialised: --name, --param and --attention apply to .kvp files");
            }
            try {
                policy = Kvpc.load(policyFile, shape);
            } catch (dev.kvpc.runtime.load.PolicyLoadException e) {
                err.println("kvpc run: " + e.getMessage());
                err.flush();
                return Main.INVALID;
            }
        } else if (policyFile != null || attention != null) {
            if (policyFile == null && (policyName != null || !params.isEmpty())) {
                throw new CommandLine.ParameterException(spec.commandLine(), "--name and --param apply to a --policy file");
            }
            Map<String, Object> values = new LinkedHashMap<>();
            params.forEach((k, v) -> values.put(k, IrCommand.parseValue(spec, v)));
            try {
                program = Kvpc.specialise(policyFile, shape, policyName, values, attention);
            } catch (Kvpc.CompileException e) {
                err.print(e.getMessage());
                err.flush();
                return Main.INVALID;
            }
        }
        try (Devices.Attention attention = Devices.attention(spec, device, err)) {
            return generate(m, tok, program == null ? policy : attention.policy(program), attention, kernels);
        }
    }

    /** Generates the text and reports speed and memory: the model under a policy, on the device {@code attention} names. */
    private int generate(Llama2cModel m, Tokenizer tok, PolicyRunner policy, Devices.Attention attention, Matmul kernels) {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        try (PagePool pool = new PagePool(); LlamaEngine engine = new LlamaEngine(m, policy, pool, attention.matmul(kernels), attention.provider())) {
            dev.kvpc.examples.llama.TraceRecorder recorder = recordTrace == null ? null : new dev.kvpc.examples.llama.TraceRecorder(m, false);
            engine.record(recorder);
            Utf8Pieces text = new Utf8Pieces();
            long t0 = System.nanoTime();
            LlamaEngine.generate(engine, tok, new Sampler(temperature, topp, seed), prompt, steps, piece -> {
                out.append(text.decode(piece));
                out.flush();
            });
            out.append(text.rest());
            double secs = (System.nanoTime() - t0) / 1e9;
            out.println();
            out.flush();
            int positions = engine.positions();
            // both figures count whole pages, as the runtime holds memory: a policy's state can take it over 100%
            long fullBytes = engine.sequence().fullCacheBytes(positions);
            long kv = engine.sequence().totalBytes();
            err.printf(Locale.ROOT, "%d positions in %.2f s: %.1f tokens/s; KV cache %s measured, %s for the full cache at f32 (%.1f%%; pages of %d entries)%n",
                    positions, secs, positions / secs, bytes(kv), bytes(fullBytes), 100.0 * kv / Math.max(1, fullBytes), engine.sequence().entriesPerPage());
            attention.report(err, engine.sequence());
            err.flush();
            if (recorder != null) {
                java.util.Map<String, String> attrs = new java.util.TreeMap<>();
                attrs.put("source", "kvpc run");
                attrs.put("model", attributeValue(model.getFileName().toString()));
                attrs.put("policy", attributeValue(policyFile == null ? "full cache" : policyFile.getFileName().toString()));
                dev.kvpc.runtime.trace.Trace t = recorder.trace(attrs);
                try {
                    java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream();
                    dev.kvpc.runtime.trace.TraceIO.write(t, b);
                    Commands.writeFile(recordTrace, b.toByteArray());
                } catch (java.io.IOException e) {
                    err.println("kvpc: cannot write " + recordTrace + ": " + e.getMessage());
                    return Main.INVALID;
                }
                var sh = t.shape();
                err.printf(Locale.ROOT, "recorded %d steps (%d tokens) to %s; replay: kvpc trace P.kvp --trace %s --model layers=%d,heads=%d,kv-heads=%d,head-dim=%d%n",
                        t.steps().size(), t.length(), recordTrace, recordTrace, sh.layers(), sh.heads(), sh.kvHeads(), sh.headDim());
                err.flush();
            }
        }
        return Main.OK;
    }

    /** {@code s} as a trace attribute's value: printable ASCII without '#', other characters as '_', no surrounding spaces. */
    static String attributeValue(String s) {
        StringBuilder b = new StringBuilder();
        for (char c : s.toCharArray()) b.append(c >= 0x20 && c < 0x7f && c != '#' ? c : '_');
        String t = b.toString().strip();
        return t.isEmpty() ? "_" : t.substring(0, Math.min(t.length(), 1000));
    }

    /** A model file, or the one a folder holds (its .gguf first, else its checkpoint). */
    static Path resolveModel(Path p) throws ModelFormatException {
        if (!Files.exists(p)) throw new ModelFormatException(p + ": no such file or folder");
        if (!Files.isDirectory(p)) return p;
        try (var s = Files.list(p)) {
            var files = s.filter(f -> f.toString().endsWith(".gguf") || f.toString().endsWith(".bin"))
                    .filter(f -> !isTokenizerName(f.getFileName().toString())).sorted().toList();
            return files.stream().filter(f -> f.toString().endsWith(".gguf")).findFirst()
                    .or(() -> files.stream().findFirst())
                    .orElseThrow(() -> new ModelFormatException(p + ": holds no .gguf or .bin model"));
        } catch (java.io.IOException e) {
            throw new ModelFormatException(p + ": cannot list: " + e.getMessage());
        }
    }

    private static boolean isTokenizerName(String n) {
        return n.equals("tokenizer.bin") || n.startsWith("tok") && n.endsWith(".bin") && !n.startsWith("tokens");
    }

    static Path findTokenizer(Path checkpoint) throws ModelFormatException {
        Path dir = checkpoint.toAbsolutePath().getParent();
        try (var s = Files.list(dir)) {
            return s.filter(f -> isTokenizerName(f.getFileName().toString())).sorted().findFirst()
                    .orElseThrow(() -> new ModelFormatException(checkpoint + ": no tokenizer.bin or tok*.bin beside it; give one with --tokenizer"));
        } catch (java.io.IOException e) {
            throw new ModelFormatException(dir + ": cannot list: " + e.getMessage());
        }
    }

    static String bytes(long b) {
        if (b < 1 << 10) return b + " B";
        if (b < 1 << 20) return String.format(Locale.ROOT, "%.1f KiB", b / 1024.0);
        return String.format(Locale.ROOT, "%.1f MiB", b / 1048576.0);
    }

    /**
     * Pieces as text: a piece may end inside a UTF-8 character (byte-fallback tokens), so the incomplete tail waits
     * for the next piece; {@link #rest()} gives what is left at the end (malformed bytes as U+FFFD).
     */
    static final class Utf8Pieces {
        private byte[] tail = new byte[0];

        String decode(byte[] piece) {
            byte[] all = new byte[tail.length + piece.length];
            System.arraycopy(tail, 0, all, 0, tail.length);
            System.arraycopy(piece, 0, all, tail.length, piece.length);
            int end = completeEnd(all);
            tail = java.util.Arrays.copyOfRange(all, end, all.length);
            return new String(all, 0, end, java.nio.charset.StandardCharsets.UTF_8);
        }

        String rest() {
            String r = new String(tail, java.nio.charset.StandardCharsets.UTF_8);
            tail = new byte[0];
            return r;
        }

        /** The length of the longest prefix that does not end inside a multi-byte character. */
        private static int completeEnd(byte[] b) {
            for (int i = b.length - 1; i >= Math.max(0, b.length - 3); i--) {
                int x = b[i] & 0xff;
                if (x < 0x80) return b.length;
                if (x >= 0xC0) {
                    int need = x >= 0xF0 ? 4 : x >= 0xE0 ? 3 : 2;
                    return b.length - i >= need ? b.length : i;
                }
            }
            return b.length;
        }
    }
}
