package dev.kvpc.bench;

import dev.kvpc.embed.Kvpc;
import dev.kvpc.examples.llama.GgufFile;
import dev.kvpc.examples.llama.Llama2cModel;
import dev.kvpc.examples.llama.LlamaEngine;
import dev.kvpc.examples.llama.Sampler;
import dev.kvpc.examples.llama.Tokenizer;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.pool.PagePool;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The embedded model (models/kvpc-tiny) generating as {@code kvpc run} does, under the full cache and under a stdlib
 * policy, in one JVM, in alternating rounds: a fresh engine each round, greedy from the prompt "Once upon a time" to
 * {@code positions} positions, one thread. Round 1 is the JVM's first (cold, as a one-off {@code kvpc run} meets it,
 * its first side colder than its second); later rounds are warm. Prints each round's tokens/s (positions over the
 * whole generation, as {@code kvpc run} reports them) and the ratio policy / full cache.
 *
 * <pre>
 * benchmarks/engine-ab [POLICY [NAME=VALUE...]] [--positions 2048] [--rounds 4]
 * </pre>
 *
 * The default is KIVI at 2 bits ({@code kivi bits=2}); the policy is compiled as {@code kvpc run --policy
 * stdlib-policies/POLICY.kvp --param ...} compiles it.
 */
public final class EngineAB {
    private EngineAB() {}

    public static void main(String[] args) throws Exception {
        String policy = null;
        Map<String, Object> params = new LinkedHashMap<>();
        int positions = 2048, rounds = 4;
        try {
            for (int i = 0; i < args.length; i++) {
                switch (args[i]) {
                    case "--positions" -> positions = Integer.parseInt(args[++i]);
                    case "--rounds" -> rounds = Integer.parseInt(args[++i]);
                    default -> {
                        int eq = args[i].indexOf('=');
                        if (eq > 0 && policy != null) params.put(args[i].substring(0, eq), Long.parseLong(args[i].substring(eq + 1)));
                        else if (eq < 0 && policy == null && !args[i].startsWith("-")) policy = args[i];
                        else usage("unexpected " + args[i]);
                    }
                }
            }
        } catch (NumberFormatException | ArrayIndexOutOfBoundsException e) {
            usage("positions, rounds and parameter values are whole numbers");
        }
        if (policy == null) {
            policy = "kivi";
            params.put("bits", 2L);
        }
        if (positions < 8 || rounds < 1) usage("at least 8 positions and 1 round");
        GgufFile g = GgufFile.open(PrefillBench.model());
        Llama2cModel model = Llama2cModel.fromGguf(g);
        Tokenizer tok = Tokenizer.fromGguf(g, model.vocab);
        Path file = Path.of("stdlib-policies", policy + ".kvp");
        if (!Files.isRegularFile(file)) usage("no stdlib policy " + policy + " (" + file + "; run from the repository root)");
        PolicyRunner compiled;
        try {
            // as `kvpc run --policy FILE --param ...` compiles it
            compiled = Kvpc.compile(file, model.spec(), null, params, null);
        } catch (Kvpc.CompileException e) {
            usage(e.getMessage().strip());
            return;
        }
        System.out.printf(Locale.ROOT, "load average %.2f; kvpc-tiny, %d positions, one thread; %s %s against the full cache%n",
                ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage(), positions, policy, params);
        System.out.println("| round | full cache (tokens/s) | " + policy + " (tokens/s) | ratio |");
        System.out.println("|---|---|---|---|");
        for (int r = 1; r <= rounds; r++) {
            // the first side of a round alternates, so that neither always meets the JIT first
            double full = 0, pol = 0;
            for (int side = 0; side < 2; side++) {
                boolean policySide = (side == 0) == (r % 2 == 0);
                double rate = generate(model, tok, policySide ? compiled : LlamaEngine.fullCache(), positions);
                if (policySide) pol = rate;
                else full = rate;
            }
            System.out.printf(Locale.ROOT, "| %d%s | %.0f | %.0f | %.2fx |%n", r, r == 1 ? " (cold)" : "", full, pol, pol / full);
        }
    }

    /** Positions per second of one generation to {@code positions} positions, the prompt included. */
    private static double generate(Llama2cModel model, Tokenizer tok, PolicyRunner policy, int positions) {
        try (PagePool pool = new PagePool(); LlamaEngine engine = new LlamaEngine(model, policy, pool)) {
            long t0 = System.nanoTime();
            LlamaEngine.generate(engine, tok, new Sampler(0f, 0.9f, 1), EnginePeer.PROMPT, positions, piece -> { });
            return engine.positions() / ((System.nanoTime() - t0) / 1e9);
        }
    }

    private static void usage(String why) {
        System.err.println("benchmarks/engine-ab: " + why);
        System.err.println("usage: benchmarks/engine-ab [POLICY [NAME=VALUE...]] [--positions 2048] [--rounds 4]");
        System.exit(64);
    }
}
