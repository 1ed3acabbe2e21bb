package dev.kvpc.examples.host;

import dev.kvpc.backend.interp.Interpreter;
import dev.kvpc.backend.interp.Result;
import dev.kvpc.backend.jvm.PolicyJarWriter;
import dev.kvpc.embed.Kvpc;
import dev.kvpc.ir.Specialized;
import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.trace.Trace;
import dev.kvpc.runtime.trace.TraceShape;
import dev.kvpc.runtime.trace.TraceSpec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The minimal host runs compiled policy jars with the runtime alone: in a JVM whose class path is this module's
 * classes and its main-scope dependencies (no compiler, interpreter, code generator or Truffle), its lanes keep
 * what the reference interpreter keeps, step by step.
 */
class TraceHostTest {
    static final String TRACE = "random:seed=3,prefill=24,decode=20";
    static final ModelSpec MODEL = new ModelSpec(2, 4, 2, 16, Precision.F32);

    @TempDir
    Path dir;

    @Test
    void theHostsClassPathHoldsTheRuntimeAndNoBackend() throws Exception {
        String cp = hostClassPath();
        assertTrue(cp.contains("runtime"), cp);
        for (String forbidden : List.of("kvpc-compiler", "kvpc-interp", "kvpc-jvm", "kvpc-embed", "truffle", "compiler/target", "interp/target", "jvm/target")) {
            assertFalse(cp.contains(forbidden), "the host links " + forbidden + ": " + cp);
        }
    }

    @Test
    void aCompiledH2oRunsInTheRuntimeOnlyHostAsTheInterpreterRunsIt() throws Exception {
        Path src = dir.resolve("mine.kvp");
        Files.writeString(src, "import \"h2o.kvp\"\n\npolicy mine = h2o(budget = 12, recent = 0.5)\n");
        check(Kvpc.specialise(src, MODEL, null, Map.of(), null));
    }

    @Test
    void aCompiledPolicyUnderAnAttentionVariantCarriesTheVariantInItsJar() throws Exception {
        Path src = dir.resolve("capped.kvp");
        Files.writeString(src, "import \"streaming_llm.kvp\"\n\npolicy capped = streaming_llm(sinks = 2, window = 10)\n");
        Specialized s = Kvpc.specialise(src, MODEL, null, Map.of(), "softcap(cap = 0.5)");
        assertTrue(s.variant().name().startsWith("softcap"), s.variant().name());
        check(s);
    }

    /** Writes {@code s} to a jar, runs the host on it in a fresh JVM, and compares with the interpreter. */
    private void check(Specialized s) throws Exception {
        Path jar = dir.resolve(s.root() + ".jar");
        Files.write(jar, PolicyJarWriter.jar(s, s.root() + ".kvp", PolicyJarWriter.manifest(s, "0".repeat(64), List.of())));
        List<String> got = runHost(jar);
        assertEquals("policy " + s.root() + " on layers=2 heads=4 kv-heads=2 head-dim=16", got.getFirst());
        assertEquals(expected(s), got.subList(1, got.size()));
    }

    /** The interpreter's kept positions, in the host's lines. */
    private static List<String> expected(Specialized s) {
        Trace t = TraceSpec.open(TRACE, new TraceShape(MODEL.layers(), MODEL.heads(), MODEL.kvHeads(), MODEL.headDim()));
        Result r = Interpreter.run(s, t);
        List<String> lines = new ArrayList<>();
        boolean evicted = false;
        for (int si = 0; si < r.steps().size(); si++) {
            for (int l = 0; l < MODEL.layers(); l++) {
                for (int kv = 0; kv < MODEL.kvHeads(); kv++) {
                    StringBuilder line = new StringBuilder("step " + si + " layer " + l + " kv " + kv + " keeps");
                    int[] kept = r.steps().get(si).lanes()[l][kv].positions();
                    for (int p : kept) line.append(' ').append(p);
                    evicted |= kept.length < t.start(si) + t.steps().get(si).tokens();
                    lines.add(line.toString());
                }
            }
        }
        assertTrue(evicted, "the trace is long enough for the policy to evict");
        return lines;
    }

    private List<String> runHost(Path jar) throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String cp = Path.of("target", "classes").toAbsolutePath() + File.pathSeparator + hostClassPath();
        Path out = dir.resolve("host.out"), err = dir.resolve("host.err");
        Process p = new ProcessBuilder(java, "-cp", cp, TraceHost.class.getName(), jar.toString(), TRACE)
                .redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the host finishes");
        assertEquals(0, p.exitValue(), "host failed: " + Files.readString(err));
        return Files.readAllLines(out, StandardCharsets.UTF_8);
    }

    private static String hostClassPath() throws Exception {
        Path f = Path.of("target", "host-classpath.txt");
        assertTrue(Files.isRegularFile(f), f.toAbsolutePath() + " is written by the build (process-test-classes)");
        return Files.readString(f).strip();
    }
}
