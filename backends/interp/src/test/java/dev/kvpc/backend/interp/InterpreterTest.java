package dev.kvpc.backend.interp;

import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.runtime.trace.Trace;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The reference semantics on the stdlib, checked against what each paper's policy must do. */
class InterpreterTest {
    @TempDir
    Path dir;

    private Result run(String policy, Map<String, Object> params, Trace t) throws Exception {
        PassPreservationTest.stdlib = dir;
        PassPreservationTest.programs();
        Frontend.Result r = Frontend.check(dir.resolve(policy + ".kvp"), PassPreservationTest.SMALL);
        assertTrue(r.ok(), r.diagnostics().all().toString());
        Specialized s = Compilation.optimise(r.program(), Compilation.defaultRoot(r.program()), params, Pipeline.Options.DEFAULT, (a, b) -> { });
        return Interpreter.run(s, t);
    }

    private static Trace trace() {
        return PassPreservationTest.traces().get(0); // prefill 40, decode 24
    }

    private static Result.Lane last(Result r, int layer, int head) {
        return r.steps().getLast().lanes()[layer][head];
    }

    @Test
    void fullKeepsEverything() throws Exception {
        Result r = run("full", Map.of(), trace());
        assertEquals(64, last(r, 1, 1).positions().length);
    }

    @Test
    void streamingLlmKeepsSinksAndWindow() throws Exception {
        Result r = run("streaming_llm", Map.of("sinks", 2L, "window", 20L), trace());
        for (Result.Step st : r.steps()) {
            for (Result.Lane[] row : st.lanes()) {
                for (Result.Lane lane : row) {
                    int[] p = lane.positions();
                    assertTrue(p.length <= 22, "over budget at step " + st.index());
                    if (p.length == 22) {
                        assertArrayEquals(new int[] {0, 1}, Arrays.copyOf(p, 2));
                        assertEquals(p[p.length - 1] - 19, p[2], "the window is the last 20 positions");
                    }
                }
            }
        }
        assertEquals(63, last(r, 0, 0).positions()[21]);
    }

    @Test
    void h2oKeepsRecentHalfAndHeavyHitters() throws Exception {
        Result r = run("h2o", Map.of("budget", 24L), trace());
        Result.Lane lane = last(r, 0, 1);
        int[] p = lane.positions();
        assertEquals(24, p.length);
        for (int i = 0; i < 12; i++) assertEquals(52 + i, p[12 + i], "the last 12 positions are kept");
        // the other 12 are the highest accumulated attention among the older entries
        double[] acc = lane.states().get("acc");
        double minKeptOld = Double.MAX_VALUE;
        for (int i = 0; i < 12; i++) minKeptOld = Math.min(minKeptOld, acc[i]);
        assertTrue(minKeptOld > 0, "heavy hitters received attention");
    }

    @Test
    void kiviQuantisesAllButTheResidual() throws Exception {
        Result r = run("kivi", Map.of("group", 4L, "residual", 8L), trace());
        Result.Lane lane = last(r, 1, 0);
        String[] prec = lane.precisions();
        assertEquals(64, prec.length);
        assertEquals("host/host", prec[63]);
        assertEquals("int2/int2", prec[0]);
        long quantised = Arrays.stream(prec).filter(x -> x.startsWith("int2")).count();
        assertTrue(quantised >= 64 - 8 - 3 && quantised <= 56, "keys quantised in full groups of 4 outside the residual: " + quantised);
    }

    @Test
    void questAttendsFewPages() throws Exception {
        Result r = run("quest", Map.of("page", 4L, "pages", 3L), trace());
        Result.Lane lane = last(r, 0, 0);
        assertEquals(64, lane.positions().length, "quest does not evict");
        assertNotNull(lane.attended());
        assertTrue(lane.attended().length <= 3 * 4 + 4, "at most 3 pages plus the current page: " + lane.attended().length);
        assertTrue(Arrays.stream(lane.attended()).anyMatch(x -> x == 63), "the current token is attended");
    }

    @Test
    void razorFoldsDroppedEntriesIntoOneCompensationEntry() throws Exception {
        Result r = run("razor", Map.of("sinks", 2L, "window", 12L), trace());
        // razor_heads.tsv in the test copy: layer 0 head 1 is a retrieval head, the others are not
        assertEquals(64, last(r, 0, 1).positions().length);
        Result.Lane lane = last(r, 1, 0);
        int[] p = lane.positions();
        assertEquals(15, p.length);
        assertEquals(-1, p[14], "the compensation entry");
        double total = Arrays.stream(lane.counts()).sum();
        assertEquals(64.0, total, 1e-9, "merge counts conserve the number of tokens seen");
    }

    @Test
    void camMergesEvictedEntriesIntoSurvivors() throws Exception {
        Result r = run("cam", Map.of("budget", 24L, "recent", 6L), trace());
        Result.Lane lane = last(r, 1, 1);
        assertEquals(24, lane.positions().length);
        assertEquals(64.0, Arrays.stream(lane.counts()).sum(), 1e-9);
        assertTrue(Arrays.stream(lane.counts()).anyMatch(c -> c > 1));
    }

    @Test
    void adakvGivesHeadsDifferentBudgets() throws Exception {
        Result r = run("adakv", Map.of("budget", 24L, "window", 4L, "kernel", 3L), trace());
        Result.Step afterPrefill = r.steps().getFirst();
        int total = 0;
        for (Result.Lane lane : afterPrefill.lanes()[0]) {
            total += lane.positions().length;
            assertTrue(lane.positions().length >= 4 + 4, "each head keeps its window and its floor");
        }
        assertEquals(2 * 24, total, "the layer's budget is shared out whole");
    }

    @Test
    void slackAmortisesEvictionWithinBudget() throws Exception {
        Files.writeString(dir.resolve("dummy.txt"), "");
        PassPreservationTest.stdlib = dir;
        PassPreservationTest.programs();
        Frontend.Result r = Frontend.check(dir.resolve("h2o.kvp"), PassPreservationTest.SMALL);
        Specialized s = Compilation.optimise(r.program(), "h2o", Map.of("budget", 24L), new Pipeline.Options(4, true), (a, b) -> { });
        Result res = Interpreter.run(s, trace());
        int evictions = 0, prev = -1;
        for (Result.Step st : res.steps()) {
            int n = st.lanes()[0][0].positions().length;
            assertTrue(n <= 24, "never more than the budget");
            if (prev >= 0 && n < prev) evictions++;
            prev = n;
        }
        assertTrue(evictions <= 24 / 4 + 1, "evicts about once per slack + 1 decode steps: " + evictions);
    }
}
