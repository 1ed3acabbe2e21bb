package dev.kvpc.bench;

import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.examples.llama.GgufFile;
import dev.kvpc.examples.llama.Llama2cModel;
import dev.kvpc.examples.llama.LlamaEngine;
import dev.kvpc.examples.llama.Matmul;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.pool.PagePool;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Decode speed at a long context on a model of random weights, the full cache beside budgets that keep a fraction of
 * it (h2o, streaming_llm), rounds interleaved so that the machine's drift hits every engine alike.
 *
 * <p>The model (default: 8 layers of Llama-3-8B's shape: dim 4096, 32 heads, 8 KV heads of 128, feed-forward 14336;
 * vocabulary 32000, tied; Q8_0 weights) is random ({@link Llama2cModel#random}). Each engine's context is
 * {@code --context} positions of random keys and values opened with {@link LlamaEngine#appendContext} (running the
 * model over them would take longer than the benchmark), the same rows for every engine; the policies meet it at their
 * first decode step and cut it to their budget. Then every decode step runs the whole model: the projections, the
 * runtime's attention over what the policy kept, the policy's step, the feed-forward block and the classifier.
 *
 * <pre>
 * benchmarks/long-context [--context 8192] [--fraction 0.25] [--tokens 12] [--rounds 3] [--warm 4] [--threads N]
 *                         [--weights Q8_0|Q4_0|F16|F32] [--layers 8] [--hidden 14336] [--vocab 32000]
 * </pre>
 */
public final class LongContext {
    private LongContext() {}

    static final int DIM = 4096, HEADS = 32, KV_HEADS = 8;

    public static void main(String[] args) throws Exception {
        int context = 8192, tokens = 12, rounds = 3, warm = 4, layers = 8, hidden = 14336, vocab = 32000;
        int threads = Runtime.getRuntime().availableProcessors();
        double fraction = 0.25;
        GgufFile.TensorType weights = GgufFile.TensorType.Q8_0;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (i + 1 >= args.length) usage("missing a value after " + a);
            String v = args[++i];
            switch (a) {
                case "--context" -> context = Integer.parseInt(v);
                case "--fraction" -> fraction = Double.parseDouble(v);
                case "--tokens" -> tokens = Integer.parseInt(v);
                case "--rounds" -> rounds = Integer.parseInt(v);
                case "--warm" -> warm = Integer.parseInt(v);
                case "--threads" -> threads = Integer.parseInt(v);
                case "--weights" -> weights = GgufFile.TensorType.valueOf(v);
                case "--layers" -> layers = Integer.parseInt(v);
                case "--hidden" -> hidden = Integer.parseInt(v);
                case "--vocab" -> vocab = Integer.parseInt(v);
                default -> usage("unknown option " + a);
            }
        }
        if (!(fraction > 0 && fraction < 1) || context < 64 || tokens < 1 || rounds < 1 || warm < 1 || threads < 1) usage("out of range");
        int budget = (int) Math.round(context * fraction);
        System.out.printf(Locale.ROOT, "load average %.2f, %d processors; %d threads; context %d, budget %d (%.0f%%); %d tokens a round, %d rounds, %d warm-up tokens%n",
                ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage(), Runtime.getRuntime().availableProcessors(), threads, context, budget,
                100 * fraction, tokens, rounds, warm);
        long t0 = System.nanoTime();
        Llama2cModel model = Llama2cModel.random(DIM, hidden, layers, HEADS, KV_HEADS, vocab, weights, 1);
        long weightBytes = model.embedding.bytes();
        for (int l = 0; l < layers; l++) {
            weightBytes += model.wq[l].bytes() + model.wk[l].bytes() + model.wv[l].bytes() + model.wo[l].bytes() + model.w1[l].bytes() + model.w2[l].bytes() + model.w3[l].bytes();
        }
        System.out.printf(Locale.ROOT, "model: %d layers, dim %d, %d heads, %d KV heads of %d, feed-forward %d, vocabulary %d, %s weights (%.2f GB), made in %.1f s%n",
                layers, DIM, HEADS, KV_HEADS, DIM / HEADS, hidden, vocab, weights, weightBytes / 1e9, (System.nanoTime() - t0) / 1e9);

        ModelShape shape = ModelShape.parse("layers=" + layers + ",heads=" + HEADS + ",kv-heads=" + KV_HEADS + ",head-dim=" + DIM / HEADS);
        List<String> names = List.of("full", "h2o", "streaming_llm");
        List<PolicyRunner> runners = List.of(LlamaEngine.fullCache(), PolicyFixture.compiled("h2o", shape, Map.of("budget", (long) budget)),
                PolicyFixture.compiled("streaming_llm", shape, Map.of("sinks", 4L, "window", (long) budget - 4)));
        Matmul mm = Matmul.parallel(Matmul.best(), threads);
        List<LlamaEngine> engines = new ArrayList<>();
        int[] token = new int[names.size()];
        double[][] rate = new double[names.size()][rounds];
        try (PagePool pool = new PagePool()) {
            try {
                for (int e = 0; e < names.size(); e++) {
                    LlamaEngine engine = new LlamaEngine(model, runners.get(e), pool, mm);
                    engines.add(engine);
                    int kvDim = model.kvDim, n = context;
                    long s = System.nanoTime();
                    engine.appendContext(n, l -> rows(l, n, kvDim));
                    token[e] = 1;
                    long w = System.nanoTime();
                    for (int i = 0; i < warm; i++) token[e] = LlamaEngine.argmax(engine.forward(token[e]));
                    System.out.printf(Locale.ROOT, "%s: context opened in %.1f s, %d warm-up tokens in %.1f s, cache %.1f MB%n", names.get(e),
                            (w - s) / 1e9, warm, (System.nanoTime() - w) / 1e9, engine.sequence().totalBytes() / 1e6);
                }
                for (int r = 0; r < rounds; r++) {
                    for (int i = 0; i < names.size(); i++) {
                        int e = (i + r) % names.size();
                        LlamaEngine engine = engines.get(e);
                        long s = System.nanoTime();
                        for (int t = 0; t < tokens; t++) token[e] = LlamaEngine.argmax(engine.forward(token[e]));
                        rate[e][r] = tokens / ((System.nanoTime() - s) / 1e9);
                    }
                }
                System.out.println();
                StringBuilder head = new StringBuilder("| round | full (tokens/s)");
                for (int e = 1; e < names.size(); e++) head.append(" | ").append(names.get(e)).append(" (tokens/s) | ratio");
                System.out.println(head.append(" |"));
                System.out.println("|---".repeat(2 * names.size()) + "|");
                for (int r = 0; r < rounds; r++) {
                    StringBuilder row = new StringBuilder(String.format(Locale.ROOT, "| %d | %.2f", r + 1, rate[0][r]));
                    for (int e = 1; e < names.size(); e++) row.append(String.format(Locale.ROOT, " | %.2f | %.2fx", rate[e][r], rate[e][r] / rate[0][r]));
                    System.out.println(row.append(" |"));
                }
                System.out.println();
                for (int e = 0; e < names.size(); e++) {
                    LlamaEngine engine = engines.get(e);
                    System.out.printf(Locale.ROOT, "%s: %d positions, cache %.1f MB%n", names.get(e), engine.positions(), engine.sequence().totalBytes() / 1e6);
                }
            } finally {
                for (LlamaEngine engine : engines) engine.close();
            }
        }
    }

    /** Layer {@code l}'s keys and values for {@code n} positions: Gaussian, the same for every engine. */
    private static float[][] rows(int l, int n, int kvDim) {
        SplittableRandom r = new SplittableRandom(1000 + l);
        float[][] kv = new float[2][n * kvDim];
        for (float[] a : kv) for (int i = 0; i < a.length; i++) a[i] = (float) r.nextGaussian();
        return kv;
    }

    private static void usage(String why) {
        System.err.println("benchmarks/long-context: " + why);
        System.err.println("usage: benchmarks/long-context [--context 8192] [--fraction 0.25] [--tokens 12] [--rounds 3] [--warm 4] [--threads N]");
        System.err.println("       [--weights Q8_0|Q4_0|F16|F32] [--layers 8] [--hidden 14336] [--vocab 32000]");
        System.exit(64);
    }
}
