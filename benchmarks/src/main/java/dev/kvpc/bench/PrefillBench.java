package dev.kvpc.bench;

import dev.kvpc.examples.llama.GgufFile;
import dev.kvpc.examples.llama.Llama2cModel;
import dev.kvpc.examples.llama.LlamaEngine;
import dev.kvpc.examples.llama.Matmul;
import dev.kvpc.examples.llama.Tokenizer;
import dev.kvpc.runtime.pool.PagePool;
import org.openjdk.jmh.annotations.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;

/**
 * Prefill of a {@code tokens}-token prompt on the embedded model (models/kvpc-tiny, full cache on the kvpc runtime):
 * {@code batched} runs it as one step ({@link LlamaEngine#prefill}, matrix-matrix products), {@code tokenByToken} as
 * one forward per token (what the engine did before), each with the matrix kernels {@code matmul}: vector, vector on
 * 2 threads, or scalar. Time per prompt; tokens/s is {@code tokens} divided by it. A fresh engine per invocation
 * (set up outside the timing).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--sun-misc-unsafe-memory-access=allow"})
public class PrefillBench {
    @Param({"64", "256"})
    public int tokens;
    @Param({"vector", "vector2", "scalar"})
    public String matmul;

    private Llama2cModel model;
    private int[] ids;
    private Matmul kernels;
    private PagePool pool;
    private LlamaEngine engine;

    static Path model() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            Path m = p.resolve("models/kvpc-tiny/kvpc-tiny.gguf");
            if (Files.isRegularFile(m)) return m;
        }
        throw new IllegalStateException("no models/kvpc-tiny/kvpc-tiny.gguf above " + Path.of("").toAbsolutePath() + " (run from the checkout)");
    }

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        GgufFile g = GgufFile.open(model());
        model = Llama2cModel.fromGguf(g);
        Tokenizer tok = Tokenizer.fromGguf(g, model.vocab);
        String text = "Once upon a time, a whale swam across the cold grey sea, singing to the ships that passed. ";
        int[] all = tok.start(text.repeat(1 + 8 * tokens / text.length()));
        if (all.length < tokens) throw new IllegalStateException("the prompt has only " + all.length + " tokens");
        ids = Arrays.copyOf(all, tokens);
        kernels = switch (matmul) {
            case "vector" -> Matmul.vector();
            case "vector2" -> Matmul.parallel(Matmul.vector(), 2);
            case "scalar" -> Matmul.scalar();
            default -> throw new IllegalArgumentException(matmul);
        };
        pool = new PagePool();
    }

    @Setup(Level.Invocation)
    public void newEngine() {
        if (engine != null) engine.close();
        engine = new LlamaEngine(model, LlamaEngine.fullCache(), pool, kernels);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (engine != null) engine.close();
        pool.close();
    }

    @Benchmark
    public float[] batched() {
        return engine.prefill(ids, 0, ids.length);
    }

    @Benchmark
    public float[] tokenByToken() {
        float[] logits = null;
        for (int id : ids) logits = engine.forward(id);
        return logits;
    }
}
