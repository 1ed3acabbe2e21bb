package dev.kvpc.cli;

import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Deployment;
import dev.kvpc.embed.Kvpc;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.memory.MemoryModel;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.examples.llama.LlamaEngine;
import dev.kvpc.examples.llama.Llama2cModel;
import dev.kvpc.examples.llama.Tokenizer;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.runtime.KvRuntime;
import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;
import java.util.regex.Pattern;

/**
 * What {@code kvpc eval} measures for one model under one policy: long-text perplexity decoded token by token (so
 * the policy acts as in generation), pass-key retrieval, measured KV bytes against {@code kvpc memory}'s prediction,
 * and decode and prompt throughput. Everything is deterministic for a seed: the engine is greedy and the pass-key
 * documents come from a seeded generator.
 */
final class Eval {
    private Eval() {}

    /** A model to evaluate: weights, tokenizer, how text becomes ids, the context it was trained at, its text. */
    record Model(String name, Llama2cModel weights, Tokenizer tokenizer, Function<String, int[]> encode, int trainedContext, String text,
                 dev.kvpc.runtime.engine.DecodeKernelProvider kernels, dev.kvpc.examples.llama.Matmul matmul) {
        /** A model whose engines run on the CPU: the installed decode kernels (the JVM backend's), the best matrix kernels. */
        Model(String name, Llama2cModel weights, Tokenizer tokenizer, Function<String, int[]> encode, int trainedContext, String text) {
            this(name, weights, tokenizer, encode, trainedContext, text, dev.kvpc.runtime.engine.DecodeKernelProvider.installed(),
                    dev.kvpc.examples.llama.Matmul.best());
        }

        /** This model with its decode attention and matrix products from a {@code --device}. */
        Model on(Devices.Attention device) {
            return new Model(name, weights, tokenizer, encode, trainedContext, text, device.provider(), device.matmul(matmul));
        }

        /** An engine on this model: the runtime's lanes under {@code runner}, decode attention from {@link #kernels}. */
        LlamaEngine engine(PolicyRunner runner, PagePool pool) {
            return new LlamaEngine(weights, runner, pool, matmul, kernels);
        }
    }

    /**
     * One row's policy: a stdlib policy with parameters, the full cache, or a user's {@code .kvp} file (its policy
     * {@code name}, null for its last) or {@code .jar}; {@code budget} the fraction of the context (NaN: none), {@code
     * attention} the variant it runs under (null: standard, or a config's own); {@code args}, the arguments given with a
     * core policy's name ({@code h2o(recent = 0.1)}), also in {@code params}.
     */
    record Policy(String label, String name, Map<String, Object> params, double budget, Path file, String attention, Map<String, Object> args) {
        Policy(String label, String name, Map<String, Object> params, double budget) {
            this(label, name, params, budget, null, null);
        }

        Policy(String label, String name, Map<String, Object> params, double budget, Path file, String attention) {
            this(label, name, params, budget, file, attention, Map.of());
        }

        /** The baseline: the full cache under standard attention. */
        boolean full() {
            return file == null && attention == null && name.equals("full");
        }

        /** A compiled policy jar (it carries its own attention variant). */
        boolean jar() {
            return file != null && file.toString().endsWith(".jar");
        }

        /** What plots colour and join into lines: the policy (with its arguments) under its variant. */
        String family() {
            return (file == null ? name + arguments(args) : label.replaceFirst(" @.*$", "")) + (attention == null ? "" : " @" + attention);
        }

        Policy under(String variant) {
            return variant == null ? this : new Policy(label + " @" + variant, name, params, budget, file, variant, args);
        }
    }

    /**
     * The rows of a run: each of {@code names} (core policies at each budget fraction of {@code context}, or files) under
     * each of {@code variants} (null: the standard attention).
     */
    static List<Policy> policies(List<String> names, double[] fractions, int context, int headDim, List<String> variants) {
        List<Policy> base = core(names, fractions, context, headDim), out = new ArrayList<>();
        if (!variants.contains(null)) {
            for (Policy p : base) {
                if (p.jar()) throw new IllegalArgumentException(p.file() + ": a compiled policy jar carries its attention variant; --attention applies to .kvp files and core policies");
            }
        }
        for (String v : variants) {
            for (Policy p : base) {
                // a jar runs once, under the variant compiled into it
                if (v == null || !p.jar()) out.add(p.under(v));
            }
        }
        return out;
    }

    /** A policy file named on the command line: FILE.jar, FILE.kvp or FILE.kvp:NAME. */
    static Policy file(String spec) {
        int colon = spec.lastIndexOf(".kvp:");
        String path = colon < 0 ? spec : spec.substring(0, colon + 4), name = colon < 0 ? null : spec.substring(colon + 5);
        Path file = Path.of(path);
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException(path + ": no such file");
        String stem = file.getFileName().toString().replaceFirst("\\.(kvp|jar)$", "");
        return new Policy(name != null ? name : stem, name, Map.of(), Double.NaN, file, null);
    }

    /** A core policy's name with arguments: {@code h2o(recent = 0.1)}. */
    private static final Pattern CALL = Pattern.compile("\\s*([A-Za-z_][A-Za-z0-9_]*)\\s*(?:\\((.*)\\))?\\s*", Pattern.DOTALL);

    /**
     * The arguments of {@code spec}'s parentheses, in order: {@code NAME = VALUE} separated by commas, each value read
     * as {@code --param} reads one ({@link Commands#literal}).
     */
    static Map<String, Object> arguments(String spec, String text) {
        Map<String, Object> out = new LinkedHashMap<>();
        if (text == null || text.isBlank()) return out;
        for (String part : text.split(",")) {
            int eq = part.indexOf('=');
            String key = eq < 0 ? "" : part.substring(0, eq).strip(), value = eq < 0 ? "" : part.substring(eq + 1).strip();
            if (!key.matches("[A-Za-z_][A-Za-z0-9_]*") || value.isEmpty()) {
                throw new IllegalArgumentException("--policies: '" + spec + "': arguments are NAME = VALUE, separated by commas, not '" + part.strip() + "'");
            }
            Object v;
            try {
                v = Commands.literal(value);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--policies: '" + spec + "': " + e.getMessage());
            }
            if (out.put(key, v) != null) throw new IllegalArgumentException("--policies: '" + spec + "' gives '" + key + "' twice");
        }
        return out;
    }

    /**
     * {@code keysAndValues} in their order, then {@code args} over them: a policy's parameters as every run lists them
     * (results.json's key order does not vary from run to run, as {@code Map.of}'s does).
     */
    private static Map<String, Object> ordered(Map<String, Object> args, Object... keysAndValues) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < keysAndValues.length; i += 2) m.put((String) keysAndValues[i], keysAndValues[i + 1]);
        m.putAll(args);
        return java.util.Collections.unmodifiableMap(m);
    }

    /** {@code (a = 1, b = 0.5)} for arguments, "" for none. */
    static String arguments(Map<String, Object> args) {
        if (args.isEmpty()) return "";
        java.util.StringJoiner j = new java.util.StringJoiner(", ", "(", ")");
        args.forEach((k, v) -> j.add(k + " = " + (v instanceof String s ? "\"" + s + "\"" : v)));
        return j.toString();
    }

    /**
     * The policies of the default run at a budget fraction of a context. A core name may carry arguments for the
     * policy's other parameters ({@code h2o(recent = 0.1)}, {@code kivi(bits = 4)}): the row is labelled with them and
     * checked where they are given.
     */
    static List<Policy> core(List<String> names, double[] fractions, int context, int headDim) {
        List<Policy> out = new ArrayList<>();
        for (String spec : names) {
            if (spec.endsWith(".jar") || spec.endsWith(".kvp") || spec.contains(".kvp:")) {
                out.add(file(spec));
                continue;
            }
            java.util.regex.Matcher call = CALL.matcher(spec);
            if (!call.matches()) throw new IllegalArgumentException("--policies: '" + spec + "' is not a policy name, NAME(ARGS), or a .kvp or .jar file");
            String n = call.group(1);
            Map<String, Object> args = arguments(spec, call.group(2));
            String shown = n + arguments(args);
            if (n.equals("full")) {
                if (!args.isEmpty()) throw new IllegalArgumentException("--policies: the full cache takes no arguments");
                out.add(new Policy("full", "full", Map.of(), 1.0));
                continue;
            }
            if (n.equals("kivi")) {
                // quantisation, not eviction: one row at 2 bits, groups as wide as the head (at most 32)
                long g = Math.min(32, headDim);
                Map<String, Object> p = ordered(args, "bits", 2L, "group", g, "residual", 64L);
                Map<String, Object> rest = new LinkedHashMap<>(args);
                rest.remove("bits");
                out.add(new Policy("kivi" + arguments(rest) + " " + p.get("bits") + "-bit", "kivi", p, Double.NaN, null, null, args));
                continue;
            }
            for (double f : fractions) {
                long b = Math.max(8, Math.round(f * context));
                Map<String, Object> p = switch (n) {
                    case "window" -> ordered(Map.of(), "size", b);
                    case "streaming_llm" -> ordered(Map.of(), "sinks", 4L, "window", b - 4);
                    case "h2o", "tova", "keydiff", "keyformer", "d2o" -> ordered(Map.of(), "budget", b);
                    case "snapkv", "nacl" -> ordered(Map.of(), "budget", b, "window", Math.min(32L, b / 4));
                    case "pyramidkv", "cake" -> ordered(Map.of(), "total", b, "window", Math.min(32L, b / 4));
                    // attends the budget's worth of 16-entry pages at each decode step; holds every entry
                    case "quest" -> ordered(Map.of(), "page", 16L, "pages", Math.max(1L, b / 16));
                    // attends the budget's worth of entries, the newest 16 among them; holds every entry
                    case "double_sparsity", "sparq" -> ordered(Map.of(), "tokens", b - Math.min(16L, b / 4), "recent", Math.min(16L, b / 4));
                    // the streaming heads' budget; the retrieval heads (from the model's tables, kvpc heads) keep all
                    case "duo_attention" -> ordered(Map.of(), "sinks", 4L, "recent", b - 4);
                    case "razor" -> ordered(Map.of(), "sinks", 4L, "window", b - 5);
                    default -> throw new IllegalArgumentException("no budget rule for policy '" + n + "'; core policies: full, window, "
                            + "streaming_llm, h2o, tova, snapkv, pyramidkv, kivi, quest, double_sparsity, sparq, duo_attention, razor, keydiff, keyformer, d2o, cake, nacl");
                };
                for (String k : args.keySet()) {
                    if (p.containsKey(k)) {
                        throw new IllegalArgumentException("--policies: '" + spec + "': " + k + " is set from --budgets for " + n + " (" + String.join(", ", p.keySet())
                                + "); run a .kvp file to set it by hand");
                    }
                }
                Map<String, Object> all = new LinkedHashMap<>(p);
                all.putAll(args);
                out.add(new Policy(shown + " " + pct(f), n, java.util.Collections.unmodifiableMap(all), f, null, null, args));
            }
        }
        return out;
    }

    static String pct(double f) {
        double p = f * 100;
        return (p == Math.rint(p) ? String.valueOf((long) p) : String.valueOf(p)) + "%";
    }

    /** A policy compiled for a model: the runner the engine uses and the program {@code kvpc memory} predicts from. */
    record Compiled(PolicyRunner runner, Specialized program) {}

    static Compiled compile(Policy p, ModelSpec shape, Path scratch) throws IOException {
        return compile(p, shape, scratch, Kvpc::runner);
    }

    /** As above, the specialised program run by {@code backend}'s runner (a device's, under {@code --device}). */
    static Compiled compile(Policy p, ModelSpec shape, Path scratch, java.util.function.Function<Specialized, PolicyRunner> backend) throws IOException {
        if (p.file() != null) {
            try {
                if (p.jar()) return new Compiled(Kvpc.load(p.file(), shape), Kvpc.program(p.file(), shape));
                Specialized s = Kvpc.specialise(p.file(), shape, p.name(), p.params(), p.attention());
                return new Compiled(backend.apply(s), s);
            } catch (Kvpc.CompileException | dev.kvpc.runtime.load.PolicyLoadException e) {
                throw new IllegalArgumentException(p.label() + " does not compile for this model:\n" + e.getMessage());
            }
        }
        ModelShape ms = new ModelShape("eval", shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim());
        String root = p.name();
        Map<String, Object> params = p.params();
        Frontend.Result r;
        if (p.attention() != null || !p.args().isEmpty()) {
            // a core policy under a variant, or with arguments given: the config kvpc run --attention generates, which
            // checks the arguments where the policy is used
            String where = p.attention() != null ? Deployment.NAME : "<--policies>";
            r = Frontend.checkText(where, Deployment.text(p.name() + ".kvp", p.name(), p.params(), p.attention() != null ? p.attention() : "standard"), scratch, ms);
            root = Deployment.CONFIG;
            params = Map.of();
        } else {
            Path file = scratch.resolve("eval_" + p.name() + ".kvp");
            if (!Files.exists(file)) Files.writeString(file, "import \"" + p.name() + ".kvp\"\n");
            r = Frontend.check(file, ms);
        }
        if (!r.ok()) {
            StringBuilder sb = new StringBuilder();
            r.diagnostics().all().forEach(d -> sb.append(r.renderer().render(d)));
            throw new IllegalArgumentException(p.label() + " does not check for this model:\n" + sb);
        }
        Specialized s = Compilation.optimise(r.program(), root, params, Pipeline.Options.DEFAULT, (a, b) -> { });
        // the full cache runs on the engine's own path (no policy at all); its program is kept for the prediction
        if (p.full()) return new Compiled(LlamaEngine.fullCache(), s);
        return new Compiled(backend.apply(s), s);
    }

    // ------------------------------------------------------------------------------------------- perplexity

    /**
     * Mean negative log-likelihood per length bucket (positions after the previous length up to this one); the first
     * bucket is the prompt (one prefill step), the others are decoded. {@code decodeSeconds} covers the decoded part.
     */
    record Perplexity(int[] lengths, double[] nll, long[] tokens, double[][] windowNll, double decodeSeconds, long decoded, long measuredBytes,
                      long predictedBytes) {
        /** One text window: its sums are the totals. */
        Perplexity(int[] lengths, double[] nll, long[] tokens, double decodeSeconds, long decoded, long measuredBytes, long predictedBytes) {
            this(lengths, nll, tokens, new double[][] {nll}, decodeSeconds, decoded, measuredBytes, predictedBytes);
        }

        double ppl(int i) {
            return Math.exp(nll[i] / Math.max(1, tokens[i]));
        }

        /** Text windows the figures are summed over; every window has the same number of tokens in each bucket. */
        int windows() {
            return windowNll.length;
        }

        /** The perplexity of bucket {@code i} in text window {@code w} alone. */
        double ppl(int w, int i) {
            return Math.exp(windowNll[w][i] / Math.max(1.0, (double) tokens[i] / windows()));
        }
    }

    static Perplexity perplexity(Model m, Compiled c, int[] ids, int[] lengths, int windows, Runnable tick) {
        int max = lengths[lengths.length - 1];
        double[] nll = new double[lengths.length];
        double[][] windowNll = new double[windows][lengths.length];
        long[] count = new long[lengths.length];
        long decoded = 0, measured = 0, decodeNanos = 0;
        int bos = m.tokenizer().bos();
        for (int w = 0; w < windows; w++) {
            int at = (int) ((long) w * Math.max(0, ids.length - max - 1) / Math.max(1, windows));
            // a window of the text, whose first position holds the model's BOS if it has one (as it was trained, and as
            // a host runs it); the tokens predicted are the text's either way
            int[] win = java.util.Arrays.copyOfRange(ids, at, at + max + 1);
            if (bos >= 0) win[0] = bos;
            try (PagePool pool = new PagePool(); LlamaEngine e = m.engine(c.runner(), pool)) {
                // the first bucket is a prompt, run as one prefill step (prefill-time policies act on it); then the
                // rest is decoded token by token
                int first = lengths[0];
                float[][] prompt = e.prefillAll(win, 0, first);
                for (int t = 0; t < first; t++) {
                    windowNll[w][0] += -logSoftmax(prompt[t], win[t + 1]);
                    count[0]++;
                }
                for (int t = 0; t < first / 64; t++) tick.run();
                long d0 = System.nanoTime();
                int bucket = 0;
                for (int t = first; t < max; t++) {
                    float[] logits = e.forward(win[t]);
                    while (t >= lengths[bucket]) bucket++;
                    windowNll[w][bucket] += -logSoftmax(logits, win[t + 1]);
                    count[bucket]++;
                    decoded++;
                    if ((t & 63) == 63) tick.run();
                }
                decodeNanos += System.nanoTime() - d0;
                if (w == 0) measured = bytes(e);
            }
            for (int i = 0; i < lengths.length; i++) nll[i] += windowNll[w][i];
        }
        double secs = decodeNanos / 1e9;
        long predicted = c.program() == null ? -1 : predicted(c.program(), lengths[0], max);
        return new Perplexity(lengths, nll, count, windowNll, secs, decoded, measured, predicted);
    }

    /**
     * Runs the full cache untimed on {@code threads} threads at once: a prompt of up to 512 tokens in one prefill step,
     * then 384 decoded tokens, so that the engine, the runtime and the decode kernels are compiled before rows are timed.
     */
    static void warmUp(Model m, int[] ids, int threads) {
        int prompt = Math.max(1, Math.min(512, ids.length - 400)), decode = Math.min(384, ids.length - prompt - 1);
        if (decode < 1) return;
        Runnable one = () -> {
            try (PagePool pool = new PagePool(); LlamaEngine e = m.engine(LlamaEngine.fullCache(), pool)) {
                e.prefill(ids, 0, prompt);
                for (int t = 0; t < decode; t++) e.forward(ids[prompt + t]);
            }
        };
        List<Thread> ts = new ArrayList<>();
        for (int i = 0; i < threads; i++) ts.add(Thread.ofPlatform().start(one));
        for (Thread t : ts) {
            try {
                t.join();
            } catch (InterruptedException ex) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    /** The KV bytes the runtime holds: keys and values at their formats, scales, per-token and per-page state. */
    static long bytes(LlamaEngine e) {
        long b = 0;
        for (Lane.LaneBytes[] row : e.sequence().memory()) for (Lane.LaneBytes x : row) b += x.total();
        return b;
    }

    /** {@code kvpc memory --prompt PROMPT --context CONTEXT --dtype f32}: the perplexity run's scenario, the engine's pages. */
    static long predicted(Specialized s, long prompt, long context) {
        MemoryModel.Report r = MemoryModel.predict(s, prompt, context, "f32", Lane.entriesPerPage(KvRuntime.DEFAULT_ROWS_PER_PAGE));
        return r.totalSteady();
    }

    static double logSoftmax(float[] logits, int target) {
        double max = Double.NEGATIVE_INFINITY;
        for (float x : logits) max = Math.max(max, x);
        double sum = 0;
        for (float x : logits) sum += Math.exp(x - max);
        return logits[target] - max - Math.log(sum);
    }

    // ------------------------------------------------------------------------------------------- pass keys

    /**
     * A pass-key document in the training tool's format: filler, the key sentence at a depth (tokens
     * {@code needleAt .. needleAt + needleLength - 1} of the prompt), the question.
     */
    record Passkey(int[] prompt, String key, int needleAt, int needleLength) {}

    private static final Pattern SENTENCE_END = Pattern.compile("(?<=[.!?])\\s+");

    /** Sentences of 20-200 characters without digits, as the training tool picks filler. */
    static List<String> fillers(String text) {
        List<String> out = new ArrayList<>();
        for (String s : SENTENCE_END.split(text)) {
            String t = s.strip().replace("\n", " ");
            if (t.length() < 20 || t.length() > 200) continue;
            boolean digit = false;
            for (int i = 0; i < t.length() && !digit; i++) digit = Character.isDigit(t.charAt(i));
            if (!digit) out.add(t);
        }
        return out;
    }

    /**
     * A pass-key document of {@code context} tokens: {@code bos} first if it is a token (the model's BOS), filler
     * sentences, the key stated at {@code depth} of the filler, and the question; the answer is the key.
     */
    static Passkey passkey(Function<String, int[]> encode, int bos, Random rnd, List<String> fillers, int context, double depth) {
        StringBuilder k = new StringBuilder();
        for (int i = 0; i < 5; i++) k.append(rnd.nextInt(10));
        String key = k.toString();
        int[] needle = encode.apply(" The pass key is " + key + ". Remember it. " + key + " is the pass key.");
        int[] question = encode.apply(" What is the pass key? The pass key is");
        int[] answer = encode.apply(" " + key + ".");
        int lead = bos >= 0 ? 1 : 0, budget = context - lead - needle.length - question.length - answer.length;
        List<Integer> body = new ArrayList<>();
        while (body.size() < budget) for (int id : encode.apply(" " + fillers.get(rnd.nextInt(fillers.size())))) body.add(id);
        List<Integer> cut = body.subList(0, Math.max(0, budget));
        int at = (int) (depth * cut.size());
        int[] ids = new int[lead + cut.size() + needle.length + question.length];
        int o = 0;
        if (lead > 0) ids[o++] = bos;
        for (int i = 0; i < at; i++) ids[o++] = cut.get(i);
        for (int x : needle) ids[o++] = x;
        for (int i = at; i < cut.size(); i++) ids[o++] = cut.get(i);
        for (int x : question) ids[o++] = x;
        return new Passkey(ids, key, lead + at, needle.length);
    }

    /**
     * Whether the model, greedy, answers the key; what it answered; the seconds the prompt's prefill took; and, per
     * lane (layer-major), how many of the key's digit tokens (both statements of it) still had their entries once the
     * prompt was in, of {@code keyEntries}.
     */
    record Answer(boolean hit, String text, double promptSeconds, int promptTokens, int[] keyKept, int keyEntries) {}

    static Answer answer(Model m, Compiled c, Passkey p) {
        try (PagePool pool = new PagePool(); LlamaEngine e = m.engine(c.runner(), pool)) {
            long t0 = System.nanoTime();
            // the prompt is one prefill step, as a host runs a prompt: prefill-time policies (SnapKV) act on it; a
            // prompt longer than the trained context runs in chunks of a quarter of it, with the policy acting after
            // each, so that no step attends over more than the model was trained on unless the policy keeps it all
            int n = p.prompt().length, chunk = chunk(m, n);
            float[] logits = e.prefill(p.prompt(), 0, Math.min(n, chunk));
            for (int at = chunk; at < n; at += chunk) logits = e.prefill(p.prompt(), at, Math.min(chunk, n - at));
            double promptSecs = (System.nanoTime() - t0) / 1e9;
            // which of the key's digit tokens the policy kept, lane by lane, before anything is decoded
            java.util.Set<Integer> digits = new java.util.HashSet<>();
            for (int i = p.needleAt(); i < p.needleAt() + p.needleLength(); i++) {
                String piece = new String(m.tokenizer().decode(p.prompt()[Math.max(0, i - 1)], p.prompt()[i]), StandardCharsets.UTF_8).strip();
                if (!piece.isEmpty() && piece.chars().allMatch(Character::isDigit)) digits.add(i);
            }
            int layers = m.weights().layers, kvHeads = m.weights().kvHeads;
            int[] kept = new int[layers * kvHeads];
            for (int l = 0; l < layers; l++) {
                for (int h = 0; h < kvHeads; h++) {
                    Lane lane = e.sequence().lane(l, h);
                    for (int i = 0; i < lane.size(); i++) if (digits.contains(lane.position(i))) kept[l * kvHeads + h]++;
                }
            }
            int steps = m.encode().apply(" " + p.key()).length + 1;
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            int prev = p.prompt()[p.prompt().length - 1];
            for (int s = 0; s < steps; s++) {
                int next = argmax(logits);
                out.writeBytes(m.tokenizer().decode(prev, next));
                prev = next;
                if (s + 1 < steps) logits = e.forward(next);
            }
            String text = out.toString(StandardCharsets.UTF_8).strip();
            return new Answer(text.startsWith(p.key()), text, promptSecs, p.prompt().length, kept, digits.size());
        }
    }

    /** Prefill step size for a prompt of {@code n} tokens: all of it, or a quarter of the trained context if longer. */
    static int chunk(Model m, int n) {
        return n <= m.trainedContext() ? n : Math.max(1, m.trainedContext() / 4);
    }

    static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    /** One pass-key document's key and what the model made of it under a policy. */
    record Document(String key, Answer answer) {}

    /**
     * Pass-key accuracy per (length, depth) cell; {@code samples} documents per cell, over all the seeds;
     * {@code documents} per cell, seed by seed ({@code samples / seeds.length} each), or null where not kept;
     * {@code kvHeads}, the lanes per layer (to read {@link Answer#keyKept} by layer).
     */
    record Grid(int[] lengths, double[] depths, int[][] hits, int samples, double promptSeconds, long promptTokens, Document[][][] documents,
                int kvHeads, long[] seeds) {
        Grid(int[] lengths, double[] depths, int[][] hits, int samples, double promptSeconds, long promptTokens) {
            this(lengths, depths, hits, samples, promptSeconds, promptTokens, null, 0, new long[] {1});
        }

        /** The share of documents answered, over the whole grid, for each seed; null for one seed, or no documents kept. */
        double[] accuracyBySeed() {
            if (documents == null || seeds.length < 2) return null;
            int per = samples / seeds.length;
            double[] acc = new double[seeds.length];
            for (Document[][] byDepth : documents) {
                for (Document[] cell : byDepth) {
                    for (int s = 0; s < cell.length; s++) if (cell[s].answer().hit()) acc[s / per]++;
                }
            }
            for (int s = 0; s < acc.length; s++) acc[s] /= (double) per * lengths.length * depths.length;
            return acc;
        }

        /** Whether the key of cell ({@code li}, {@code di}) lies more than {@code budget} tokens before the question. */
        boolean outside(int li, int di, long budget) {
            return (1 - depths[di]) * lengths[li] > budget;
        }
    }

    /**
     * {@code samples} pass-key documents per cell and seed. A seed's documents are the same whichever other seeds run
     * beside it, so a run with seeds 1,2 holds the run with seed 1.
     */
    static Grid grid(Model m, Compiled c, List<String> fillers, int[] lengths, double[] depths, int samples, long[] seeds, Runnable tick) {
        int[][] hits = new int[lengths.length][depths.length];
        Document[][][] documents = new Document[lengths.length][depths.length][samples * seeds.length];
        double secs = 0;
        long tokens = 0;
        for (int li = 0; li < lengths.length; li++) {
            for (int di = 0; di < depths.length; di++) {
                for (int si = 0; si < seeds.length; si++) {
                    // the same documents for every policy: the seed depends on the cell only
                    Random rnd = new Random(seeds[si] * 1_000_003L + lengths[li] * 131L + di);
                    for (int s = 0; s < samples; s++) {
                        Passkey doc = passkey(m.encode(), m.tokenizer().bos(), rnd, fillers, lengths[li], depths[di]);
                        Answer a = answer(m, c, doc);
                        if (a.hit()) hits[li][di]++;
                        documents[li][di][si * samples + s] = new Document(doc.key(), a);
                        secs += a.promptSeconds();
                        tokens += a.promptTokens();
                        tick.run();
                    }
                }
            }
        }
        return new Grid(lengths, depths, hits, samples * seeds.length, secs, tokens, documents, m.weights().kvHeads, seeds);
    }

    /** Everything measured for one policy on one model. */
    record Row(String model, Policy policy, Perplexity perplexity, Grid grid) {}

    static Map<String, Object> json(Row r) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("model", r.model());
        m.put("policy", r.policy().label());
        m.put("name", r.policy().name());
        m.put("params", r.policy().params());
        if (r.policy().file() != null) m.put("file", r.policy().file().toString());
        if (r.policy().attention() != null) m.put("attention", r.policy().attention());
        m.put("budget", Double.isNaN(r.policy().budget()) ? null : r.policy().budget());
        Perplexity p = r.perplexity();
        if (p != null) {
            List<Map<String, Object>> ppl = new ArrayList<>();
            for (int i = 0; i < p.lengths().length; i++) {
                Map<String, Object> x = new LinkedHashMap<>();
                x.put("length", p.lengths()[i]);
                x.put("ppl", p.ppl(i));
                x.put("tokens", p.tokens()[i]);
                if (p.windows() > 1) {
                    List<Double> each = new ArrayList<>();
                    for (int w = 0; w < p.windows(); w++) each.add(p.ppl(w, i));
                    x.put("ppl_per_window", each);
                }
                ppl.add(x);
            }
            m.put("perplexity", ppl);
            m.put("decode_tokens_per_s", p.decoded() / p.decodeSeconds());
            m.put("measured_kv_bytes", p.measuredBytes());
            m.put("predicted_kv_bytes", p.predictedBytes() < 0 ? null : p.predictedBytes());
        }
        Grid g = r.grid();
        if (g != null) {
            List<Map<String, Object>> cells = new ArrayList<>();
            for (int li = 0; li < g.lengths().length; li++) {
                for (int di = 0; di < g.depths().length; di++) {
                    Map<String, Object> x = new LinkedHashMap<>();
                    x.put("length", g.lengths()[li]);
                    x.put("depth", g.depths()[di]);
                    x.put("accuracy", g.hits()[li][di] / (double) g.samples());
                    if (g.documents() != null) {
                        List<Map<String, Object>> docs = new ArrayList<>();
                        for (Document doc : g.documents()[li][di]) {
                            Map<String, Object> d = new LinkedHashMap<>();
                            d.put("key", doc.key());
                            d.put("answer", doc.answer().text());
                            d.put("key_entries", doc.answer().keyEntries());
                            List<Integer> kept = new ArrayList<>();
                            for (int k : doc.answer().keyKept()) kept.add(k);
                            d.put("key_kept_per_lane", kept);
                            docs.add(d);
                        }
                        x.put("documents", docs);
                    }
                    cells.add(x);
                }
            }
            m.put("passkey", cells);
            double[] bySeed = g.accuracyBySeed();
            if (bySeed != null) {
                List<Double> acc = new ArrayList<>();
                for (double a : bySeed) acc.add(a);
                m.put("passkey_accuracy_per_seed", acc);
            }
            m.put("prompt_tokens_per_s", g.promptTokens() / g.promptSeconds());
        }
        return m;
    }
}
