package dev.kvpc.backend.interp;

import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.runtime.trace.Trace;
import dev.kvpc.runtime.trace.TraceGenerator;
import dev.kvpc.runtime.trace.TraceShape;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.*;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Every pass keeps meaning: for every stdlib policy, specialised to a small model with budgets small enough that
 * eviction happens, the interpreter gives identical kept sets, attend sets, precisions and merge counts, and states
 * and attention outputs within 1e-9, before and after each pass, on random and planted traces.
 */
public class PassPreservationTest {
    public static final ModelShape SMALL = ModelShape.parse("layers=2,heads=4,kv-heads=2,head-dim=32");
    public static final double TOLERANCE = 1e-9;

    /** Parameter values that make eviction, merging and quantisation happen within a trace of ~60 tokens. */
    public static final Map<String, Map<String, Object>> SMALL_BUDGETS = Map.ofEntries(
            Map.entry("window", Map.of("size", 24L)),
            Map.entry("streaming_llm", Map.of("sinks", 2L, "window", 20L)),
            Map.entry("h2o", Map.of("budget", 24L)),
            Map.entry("tova", Map.of("budget", 24L)),
            Map.entry("scissorhands", Map.of("budget", 24L, "history", 8L, "recent", 6L)),
            Map.entry("snapkv", Map.of("budget", 24L, "window", 4L, "kernel", 3L)),
            Map.entry("pyramidkv", Map.of("total", 24L, "window", 4L)),
            Map.entry("adakv", Map.of("budget", 24L, "window", 4L, "kernel", 3L)),
            Map.entry("kivi", Map.of("group", 4L, "residual", 8L)),
            Map.entry("duo_attention", Map.of("sinks", 2L, "recent", 10L)),
            Map.entry("razor", Map.of("sinks", 2L, "window", 12L)),
            Map.entry("cam", Map.of("budget", 24L, "recent", 6L)),
            Map.entry("quest", Map.of("page", 4L, "pages", 3L)),
            Map.entry("double_sparsity", Map.of("tokens", 10L, "recent", 4L)),
            Map.entry("sparq", Map.of("tokens", 10L, "recent", 4L)),
            Map.entry("keyformer", Map.of("budget", 24L, "window", 4L)),
            Map.entry("d2o", Map.of("budget", 24L)),
            Map.entry("keydiff", Map.of("budget", 24L)),
            Map.entry("cake", Map.of("total", 16L, "window", 4L)),
            Map.entry("nacl", Map.of("budget", 24L, "window", 4L)),
            Map.entry("prompt_and_window", Map.of("budget", 24L, "window", 4L)),
            Map.entry("rank_fusion", Map.of("budget", 24L, "recent", 6L)),
            Map.entry("stratified", Map.of("budget", 24L, "recent", 6L, "heavy", 6L)),
            Map.entry("tidal", Map.of("top_k", 8L, "select", 0L, "window", 4L)));

    @TempDir
    static Path stdlib;

    /** The stdlib, with its placeholder gate tables replaced by ones of the small shape. */
    static List<Path> programs() throws IOException {
        return programs(stdlib);
    }

    /**
     * The stdlib and the example policies ({@code examples/policies}) copied into {@code stdlib}, small-shape gate
     * tables included; the policy files.
     */
    public static List<Path> programs(Path stdlib) throws IOException {
        List<Path> out = new ArrayList<>();
        for (Path src : List.of(root().resolve("stdlib-policies"), root().resolve("examples/policies"))) {
            try (Stream<Path> s = Files.list(src)) {
                for (Path p : s.sorted().toList()) {
                    if (p.toString().endsWith(".kvp") || p.toString().endsWith(".tsv")) {
                        Files.copy(p, stdlib.resolve(p.getFileName()), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                        if (p.toString().endsWith(".kvp")) out.add(stdlib.resolve(p.getFileName()));
                    }
                }
            }
        }
        Files.writeString(stdlib.resolve("duo_gates.tsv"), "0.9\t0.1\n0.2\t0.8\n");
        Files.writeString(stdlib.resolve("razor_heads.tsv"), "0\t1.5\n0\t0\n");
        Files.writeString(stdlib.resolve("ds_channels.tsv"), channelMarks(SMALL));
        return out;
    }

    /**
     * Every program of {@link #programs(Path)} with a default root, checked for {@link #SMALL} and specialised with
     * {@link #SMALL_BUDGETS} (budgets small enough that they evict, merge and quantise): what each backend's
     * differential test runs against the interpreter, by root.
     */
    public static Map<String, Specialized> specialised(Path stdlib) throws IOException {
        Map<String, Specialized> out = new LinkedHashMap<>();
        for (Path p : programs(stdlib)) {
            Frontend.Result r = Frontend.check(p, SMALL);
            assertTrue(r.ok(), p.getFileName() + " does not check");
            String root = Compilation.defaultRoot(r.program());
            if (root == null) continue;
            out.put(root, Compilation.optimise(r.program(), root, SMALL_BUDGETS.getOrDefault(root, Map.of()), Pipeline.Options.DEFAULT, (pass, x) -> { }));
        }
        return out;
    }

    /** A channel table for {@code s} that marks a quarter of each lane's channels, a different quarter per lane. */
    public static String channelMarks(ModelShape s) {
        StringBuilder sb = new StringBuilder();
        for (int l = 0; l < s.layers(); l++) {
            for (int h = 0; h < s.kvHeads(); h++) {
                for (int c = 0; c < s.headDim(); c++) sb.append(c > 0 ? "\t" : "").append((c + l + 2 * h) % 4 == 0 ? 1 : 0);
                sb.append('\n');
            }
        }
        return sb.toString();
    }

    static Path root() {
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !Files.isDirectory(p.resolve("stdlib-policies"))) p = p.getParent();
        return p;
    }

    public static List<Trace> traces() {
        TraceShape ts = new TraceShape(SMALL.layers(), SMALL.heads(), SMALL.kvHeads(), SMALL.headDim());
        return List.of(
                TraceGenerator.generate(TraceGenerator.Options.of(ts).withSeed(1).withPrefill(40).withDecode(24)).trace(),
                TraceGenerator.generate(TraceGenerator.Options.of(ts).withSeed(2).withPrefill(36).withChunk(12).withDecode(20).withSinks(2).withHeavyHitters(3)).trace());
    }

    /**
     * A choice the lane decides (here, layer 1 of 2 takes the constant): folding it must keep the token axis the
     * choice has, which ranking reads. It used to fold to a scalar constant, and the interpreter failed with "value
     * has no token axis" on a program that checks (found by the reliability run).
     */
    @Test
    void aChoiceFoldedPerLaneKeepsItsAxes() {
        Frontend.Result r = Frontend.checkText("c.kvp", """
                policy c(n: int = 3) {
                    on prefill, decode {
                        let score = layer >= 1 ? 0.5 : dot(k, v)
                        keep last(2) + bottom(score, n)
                    }
                }
                """, null, SMALL);
        assertTrue(r.ok(), r.diagnostics().all().toString());
        preserved(r, "c", Map.of(), traces());
    }

    @TestFactory
    Stream<DynamicTest> everyPassKeepsMeaningOnTheStdlib() throws IOException {
        List<Trace> traces = traces();
        List<DynamicTest> tests = new ArrayList<>();
        for (Path p : programs()) {
            Frontend.Result r = Frontend.check(p, SMALL);
            String errs = r.diagnostics().all().stream().filter(d -> d.severity() == dev.kvpc.compiler.diag.Severity.ERROR)
                    .map(d -> r.renderer().render(d)).collect(Collectors.joining());
            assertTrue(r.ok(), p.getFileName() + " does not check for the small model:\n" + errs);
            String root = Compilation.defaultRoot(r.program());
            if (root == null) continue; // variants.kvp declares attention variants only
            String name = p.getFileName().toString();
            tests.add(DynamicTest.dynamicTest(name, () -> preserved(r, root, SMALL_BUDGETS.getOrDefault(root, Map.of()), traces)));
        }
        return tests.stream();
    }

    static void preserved(Frontend.Result r, String root, Map<String, Object> params, List<Trace> traces) {
        LinkedHashMap<String, Specialized> stages = new LinkedHashMap<>();
        Compilation.optimise(r.program(), root, params, Pipeline.Options.DEFAULT, stages::put);
        assertEquals(Pipeline.PASSES, List.copyOf(stages.keySet()));
        for (Trace t : traces) {
            Result reference = null;
            String previous = null;
            for (var e : stages.entrySet()) {
                Result got = Interpreter.run(e.getValue(), t);
                if (reference != null) {
                    String diff = Result.difference(reference, got, TOLERANCE);
                    assertNull(diff, root + ": pass " + e.getKey() + " changed the result (compared with after " + previous + "): " + diff);
                }
                reference = got;
                previous = e.getKey();
            }
        }
    }
}
