package dev.kvpc.bench;

import de.kherud.llama.InferenceParameters;
import de.kherud.llama.LlamaModel;
import de.kherud.llama.LlamaOutput;
import de.kherud.llama.ModelParameters;
import dev.kvpc.examples.llama.GgufFile;
import dev.kvpc.examples.llama.Llama2cModel;
import dev.kvpc.examples.llama.LlamaEngine;
import dev.kvpc.examples.llama.Matmul;
import dev.kvpc.examples.llama.Tokenizer;
import dev.kvpc.runtime.pool.PagePool;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * kvpc's engine beside llama.cpp (the {@code de.kherud:llama} binding) on the same GGUF file, stories260K, in one
 * run: greedy generation of {@code n} tokens after a short prompt, one and two threads, rounds interleaved so that
 * the machine's drift hits both alike. Per run: steady decode tokens/s (every token after the first, as generation
 * reports them) and whole-run tokens/s (the prompt and the first token included). kvpc's first round in this JVM
 * is cold (the JIT still compiling): that is its whole-run figure as {@code kvpc run} meets it; later rounds are warm.
 *
 * <pre>
 * benchmarks/peer [--tokens N] [--rounds R]
 * </pre>
 *
 * The model is read from {@code ../shared/models/stories260K/stories260K.gguf} beside the checkout.
 */
public final class EnginePeer {
    private EnginePeer() {}

    static final String PROMPT = "Once upon a time";

    record Run(String engine, int threads, int round, int tokens, double steady, double whole) {}

    public static void main(String[] args) throws Exception {
        int tokens = 400, rounds = 3;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--tokens" -> tokens = Integer.parseInt(args[++i]);
                case "--rounds" -> rounds = Integer.parseInt(args[++i]);
                default -> throw new IllegalArgumentException("usage: benchmarks/peer [--tokens N] [--rounds R]");
            }
        }
        Path gguf = model();
        GgufFile g = GgufFile.open(gguf);
        Llama2cModel model = Llama2cModel.fromGguf(g);
        Tokenizer tok = Tokenizer.fromGguf(g, model.vocab);
        List<Run> runs = new ArrayList<>();
        LlamaModel[] peers = new LlamaModel[3];
        try {
            for (int t = 1; t <= 2; t++) {
                peers[t] = new LlamaModel(new ModelParameters().setModel(gguf.toString()).setThreads(t).setThreadsBatch(t).setCtxSize(512).disableLog());
            }
            // round 0: kvpc's first generation in this JVM (cold: what a one-off `kvpc run` meets) and a warm-up of both;
            // then rounds with the thread counts and the engines' order alternating
            for (int t = 1; t <= 2; t++) {
                runs.add(kvpc(model, tok, t, 0, tokens));
                runs.add(llamaCpp(peers[t], t, 0, tokens));
            }
            for (int round = 1; round <= rounds; round++) {
                for (int i = 0; i < 2; i++) {
                    int t = round % 2 == 1 ? 1 + i : 2 - i;
                    if (i % 2 == round % 2) {
                        runs.add(kvpc(model, tok, t, round, tokens));
                        runs.add(llamaCpp(peers[t], t, round, tokens));
                    } else {
                        runs.add(llamaCpp(peers[t], t, round, tokens));
                        runs.add(kvpc(model, tok, t, round, tokens));
                    }
                }
            }
        } finally {
            for (LlamaModel m : peers) if (m != null) m.close();
        }
        System.out.println("| round | threads | kvpc steady (tokens/s) | llama.cpp steady (tokens/s) | ratio | kvpc whole run | llama.cpp whole run | ratio |");
        System.out.println("|---|---|---|---|---|---|---|---|");
        for (int round = 0; round <= rounds; round++) {
            for (int t = 1; t <= 2; t++) {
                Run k = find(runs, "kvpc", t, round), l = find(runs, "llama.cpp", t, round);
                System.out.printf(Locale.ROOT, "| %s | %d | %.0f | %.0f | %.2fx | %.0f | %.0f | %.2fx |%n",
                        round == 0 ? (t == 1 ? "0 (kvpc cold)" : "0 (warm-up)") : Integer.toString(round), t,
                        k.steady(), l.steady(), k.steady() / l.steady(), k.whole(), l.whole(), k.whole() / l.whole());
            }
        }
        System.out.println(tokens + " tokens after the prompt '" + PROMPT + "', greedy; " + gguf.getFileName());
        System.out.flush();
        // the binding leaves a native thread per model attached to the JVM after close(); without an exit the JVM
        // waits on them forever once the table is out
        System.exit(0);
    }

    private static Run find(List<Run> runs, String engine, int threads, int round) {
        for (Run r : runs) if (r.engine().equals(engine) && r.threads() == threads && r.round() == round) return r;
        throw new IllegalStateException(engine + " " + threads + " " + round);
    }

    /** kvpc: the prompt as one prefill step, then one decode step per token, greedy, on the full cache. */
    static Run kvpc(Llama2cModel model, Tokenizer tok, int threads, int round, int tokens) {
        Matmul matmul = threads == 1 ? Matmul.vector() : Matmul.parallel(Matmul.vector(), threads);
        try (PagePool pool = new PagePool(); LlamaEngine e = new LlamaEngine(model, LlamaEngine.fullCache(), pool, matmul)) {
            int[] p = tok.start(PROMPT);
            long t0 = System.nanoTime();
            int token = LlamaEngine.argmax(e.prefill(p, 0, p.length));
            long t1 = System.nanoTime();
            for (int i = 1; i < tokens; i++) token = LlamaEngine.argmax(e.forward(token));
            long t2 = System.nanoTime();
            if (token < 0) throw new IllegalStateException();
            return new Run("kvpc", threads, round, tokens, (tokens - 1) / ((t2 - t1) / 1e9), tokens / ((t2 - t0) / 1e9));
        }
    }

    /** llama.cpp: the same prompt and count, greedy, end of text ignored; times as the outputs arrive. */
    static Run llamaCpp(LlamaModel m, int threads, int round, int tokens) {
        InferenceParameters ip = new InferenceParameters(PROMPT).setNPredict(tokens).setTemperature(0f).setIgnoreEos(true).setSeed(1);
        long t0 = System.nanoTime(), t1 = 0;
        int count = 0;
        for (LlamaOutput o : m.generate(ip)) {
            if (o.text == null) continue;
            if (++count == 1) t1 = System.nanoTime();
        }
        long t2 = System.nanoTime();
        if (count < 2) throw new IllegalStateException("llama.cpp produced " + count + " outputs");
        return new Run("llama.cpp", threads, round, count, (count - 1) / ((t2 - t1) / 1e9), count / ((t2 - t0) / 1e9));
    }

    static Path model() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            Path m = p.resolve("shared/models/stories260K/stories260K.gguf");
            if (Files.isRegularFile(m)) return m;
        }
        throw new IllegalStateException("no shared/models/stories260K/stories260K.gguf beside the checkout (above " + Path.of("").toAbsolutePath() + ")");
    }
}
