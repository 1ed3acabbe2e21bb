package dev.kvpc.bench;

import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.ir.pass.Pipeline;
import org.openjdk.jmh.annotations.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Item 5 of docs/performance.md: warm time to compile each stdlib file for the reference shape. {@code
 * checkLowerOptimise}: reading the source, parsing, checking, lowering and the whole pass pipeline (to the
 * specialised, optimised IR the backends start from); {@code compileToJar}: all of that, then loop IR, bytecode for
 * every lane class and the entry class (ASM), and the jar's bytes, which is what {@code kvpc compile} does per file.
 * Run from the repository root (benchmarks/run does).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--sun-misc-unsafe-memory-access=allow"})
public class CompileBench {
    @Param({"adakv", "cam", "duo_attention", "full", "h2o", "kivi", "knorm", "llama_h2o", "mixed", "pyramidkv", "quest", "razor",
            "scissorhands", "snapkv", "streaming_llm", "tova", "variants", "window"})
    public String file;

    private Path path;

    @Setup(Level.Trial)
    public void setUp() {
        path = Path.of("stdlib-policies", file + ".kvp");
        if (!Files.isRegularFile(path)) throw new IllegalStateException(path.toAbsolutePath() + " is missing: run from the repository root");
        Frontend.Result r = Frontend.check(path, ModelShape.REFERENCE);
        if (!r.ok()) throw new IllegalStateException(file + " does not check");
    }

    @Benchmark
    public Object checkLowerOptimise() {
        Frontend.Result r = Frontend.check(path, ModelShape.REFERENCE);
        String root = Compilation.defaultRoot(r.program());
        if (root == null) return Compilation.lower(r.program());
        return Compilation.optimise(r.program(), root, Map.of(), Pipeline.Options.DEFAULT, (pass, s) -> { });
    }

    @Benchmark
    public Object compileToJar() {
        Frontend.Result r = Frontend.check(path, ModelShape.REFERENCE);
        String root = Compilation.defaultRoot(r.program());
        if (root == null) return Compilation.lower(r.program());
        var s = Compilation.optimise(r.program(), root, Map.of(), Pipeline.Options.DEFAULT, (pass, x) -> { });
        return dev.kvpc.backend.jvm.PolicyJarWriter.jar(s, file + ".kvp", manifest(s));
    }

    private static Map<String, String> manifest(dev.kvpc.ir.Specialized s) {
        return dev.kvpc.backend.jvm.PolicyJarWriter.manifest(s, "0".repeat(64), java.util.List.of());
    }
}
