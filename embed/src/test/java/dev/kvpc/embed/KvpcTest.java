package dev.kvpc.embed;

import dev.kvpc.runtime.KvRuntime;
import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.Sequence;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** A host compiles a .kvp in-process and runs it: the lane keeps its budget and memory follows. */
class KvpcTest {
    @TempDir
    Path dir;

    @Test
    void compileInProcessAndRun() throws Exception {
        Path f = dir.resolve("mine.kvp");
        Files.writeString(f, "import \"streaming_llm.kvp\"\n\npolicy mine = streaming_llm(sinks = 2, window = 14)\n");
        ModelSpec model = new ModelSpec(2, 4, 2, 16, Precision.F32);
        PolicyRunner runner = Kvpc.compile(f, model, null, Map.of());
        assertEquals(0, runner.laneClass(1, 1));
        try (PagePool pool = new PagePool(); Sequence seq = new KvRuntime(model, runner, pool).newSequence()) {
            Random r = new Random(1);
            for (int step = 0; step < 40; step++) {
                if (step == 0) seq.beginPrefill(8);
                else seq.beginDecode();
                int n = step == 0 ? 8 : 1;
                for (int l = 0; l < 2; l++) {
                    float[] k = new float[n * 2 * 16], v = new float[n * 2 * 16], q = new float[n * 4 * 16], out = new float[n * 4 * 16];
                    for (int i = 0; i < k.length; i++) {
                        k[i] = (float) r.nextGaussian();
                        v[i] = (float) r.nextGaussian();
                    }
                    for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
                    seq.append(l, k, v);
                    seq.attend(l, q, out);
                }
            }
            assertEquals(16, seq.lane(0, 0).size());
            assertEquals(0, seq.lane(0, 0).position(0));
            assertEquals(1, seq.lane(0, 0).position(1));
            assertEquals(46, seq.lane(1, 1).position(15));
        }
    }

    @Test
    void anyNumberIsAParameterValue() throws Exception {
        Path f = dir.resolve("stdlib.kvp");
        Files.writeString(f, "import \"h2o.kvp\"\n");
        ModelSpec model = new ModelSpec(2, 4, 2, 16, Precision.F32);
        for (Object budget : new Object[] {24, 24L, (short) 24, java.math.BigInteger.valueOf(24)}) {
            for (Object recent : new Object[] {0.25, 0.25f, java.math.BigDecimal.valueOf(0.25)}) {
                PolicyRunner r = Kvpc.compile(f, model, "h2o", Map.of("budget", budget, "recent", recent));
                assertNotNull(r, budget.getClass() + " " + recent.getClass());
            }
        }
        Kvpc.CompileException e = assertThrows(Kvpc.CompileException.class, () -> Kvpc.compile(f, model, "h2o", Map.of("budget", 2.5)));
        assertTrue(e.getMessage().contains("budget"), e.getMessage());
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class, () -> Kvpc.compile(f, model, "h2o", Map.of("budget", new java.util.ArrayList<>())));
        assertTrue(bad.getMessage().contains("'budget'") && bad.getMessage().contains("ArrayList"), bad.getMessage());
    }

    @Test
    void aFileThatDoesNotCheckGivesTheDiagnostics() throws Exception {
        Path f = dir.resolve("bad.kvp");
        Files.writeString(f, "policy p(budget: int = 8) {\n    on overflow(budget) {\n        keep all\n    }\n}\n");
        Kvpc.CompileException e = assertThrows(Kvpc.CompileException.class, () -> Kvpc.compile(f, new ModelSpec(1, 1, 1, 8, Precision.F32), null, Map.of()));
        assertTrue(e.getMessage().contains("error[E302]"), e.getMessage());
    }
}
