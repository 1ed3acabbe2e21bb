package dev.kvpc.backend.jvm;

import dev.kvpc.runtime.exec.NativeRunner;
import dev.kvpc.backend.interp.PassPreservationTest;
import dev.kvpc.backend.interp.RuntimeDifferentialTest;
import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.runtime.Rope;
import dev.kvpc.runtime.load.LoadedPolicy;
import dev.kvpc.runtime.load.ModelShapeSpec;
import dev.kvpc.runtime.load.PolicyJarLoader;
import dev.kvpc.runtime.load.PolicyLoadException;
import dev.kvpc.runtime.policy.CompiledPolicy;
import dev.kvpc.runtime.trace.Trace;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Compiled policy jars as a host meets them: every stdlib policy written to a jar is accepted by the runtime's
 * loader (manifest, shape check, bytecode verification against the whitelist), its program reads back to the one
 * compiled, and the runtime running the loaded policy over paged lanes keeps the interpreter's positions and
 * outputs after every step (RuntimeDifferentialTest's checks). The same source compiles to the same bytes.
 */
class PolicyJarTest {
    @TempDir
    static Path dir;

    static Map<String, String> manifest(Specialized s) {
        return PolicyJarWriter.manifest(s, "0".repeat(64), List.of());
    }

    static LoadedPolicy write(Specialized s) throws Exception {
        Path jar = dir.resolve(s.root() + ".jar");
        Files.write(jar, PolicyJarWriter.jar(s, s.root() + ".kvp", manifest(s)));
        var sh = s.shape();
        return PolicyJarLoader.load(jar, new ModelShapeSpec(sh.layers(), sh.heads(), sh.kvHeads(), sh.headDim()));
    }

    @TestFactory
    Stream<DynamicTest> loadedJarsRunOnTheRuntimeAsTheInterpreterDoes() throws Exception {
        Path src = Files.createDirectories(dir.resolve("stdlib"));
        List<DynamicTest> tests = new ArrayList<>();
        for (Path p : PassPreservationTest.programs(src)) {
            Frontend.Result r = Frontend.check(p, PassPreservationTest.SMALL);
            String root = Compilation.defaultRoot(r.program());
            if (root == null) continue;
            Specialized s = Compilation.optimise(r.program(), root, PassPreservationTest.SMALL_BUDGETS.getOrDefault(root, Map.of()),
                    Pipeline.Options.DEFAULT, (a, b) -> { });
            tests.add(DynamicTest.dynamicTest(root, () -> {
                LoadedPolicy loaded = write(s);
                CompiledPolicy policy = loaded.entryClassAs(CompiledPolicy.class).getDeclaredConstructor().newInstance();
                assertEquals(s.print(), Specialized.parse(policy.program()).print(), "the jar's program reads back as compiled");
                assertInstanceOf(NativeRunner.class, NativeRunner.of(policy), "loaded policies run on the runtime's own lanes");
                List<dev.kvpc.runtime.policy.CompiledLaneClass> classes = new ArrayList<>();
                for (int c = 0; c < policy.laneClasses(); c++) classes.add(policy.laneClass(c));
                // statistics exactly as the interpreter computes them: the same kept positions after every step
                var variant = JvmBackend.variant(s);
                for (Trace t : PassPreservationTest.traces()) RuntimeDifferentialTest.compare(s, t, root, null, new NativeRunner(s, classes, variant, false));
                RuntimeDifferentialTest.compare(s, PassPreservationTest.traces().getFirst(), root + " (RoPE by the runtime)", new Rope(10000),
                        new NativeRunner(s, classes, variant, false));
                if (root.equals("h2o")) assertTrue(NativeRunner.fusable(s.classes().getFirst()), "H2O reads only column sums: the kernel's serve");
                if (root.equals("tova")) assertTrue(NativeRunner.fusable(s.classes().getFirst()), "TOVA's mean over query, group and head is the layer's column sums over its cells");
                if (root.equals("snapkv")) assertFalse(NativeRunner.fusable(s.classes().getFirst()), "SnapKV max-pools its window's rows: they are computed");
                // what hosts run: column sums fused in the runtime's kernel (float): on these traces, the same decisions
                for (Trace t : PassPreservationTest.traces()) RuntimeDifferentialTest.compare(s, t, root + " (fused statistics)", null, NativeRunner.of(policy));
            }));
        }
        assertTrue(tests.size() >= 17);
        return tests.stream();
    }

    @Test
    void sameSourceSameBytesAndWrongShapeRefused() throws Exception {
        Path src = Files.createDirectories(dir.resolve("again"));
        Path h2o = PassPreservationTest.programs(src).stream().filter(p -> p.getFileName().toString().equals("h2o.kvp")).findFirst().orElseThrow();
        Frontend.Result r = Frontend.check(h2o, PassPreservationTest.SMALL);
        Specialized s = Compilation.optimise(r.program(), "h2o", Map.of("budget", 24L), Pipeline.Options.DEFAULT, (a, b) -> { });
        byte[] a = PolicyJarWriter.jar(s, "h2o.kvp", manifest(s)), b = PolicyJarWriter.jar(s, "h2o.kvp", manifest(s));
        assertTrue(Arrays.equals(a, b), "two compilations of one source give the same jar");
        Path jar = dir.resolve("h2o-shape.jar");
        Files.write(jar, a);
        PolicyLoadException e = assertThrows(PolicyLoadException.class, () -> PolicyJarLoader.load(jar, new ModelShapeSpec(2, 4, 4, 32)));
        assertTrue(e.getMessage().contains("kv-heads"), e.getMessage());
    }
}
