package dev.kvpc.cli;

import dev.kvpc.backend.interp.Interpreter;
import dev.kvpc.backend.interp.Result;
import dev.kvpc.examples.llama.GgufFile;
import dev.kvpc.examples.llama.Llama2cModel;
import dev.kvpc.examples.llama.LlamaEngine;
import dev.kvpc.examples.llama.Matmul;
import dev.kvpc.examples.llama.TraceRecorder;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.trace.Trace;
import dev.kvpc.runtime.trace.TraceIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Traces recorded from a model ({@code kvpc run --record-trace}, {@link TraceRecorder}): the keys, values and queries
 * the engine hands the runtime, unrotated, with the model's RoPE named. Replayed through the reference interpreter with
 * the full cache, every step's attention output of its last token is the engine's (so the layout and the rotation
 * are the runtime's); the file replays through a policy with {@code kvpc trace}.
 */
class RecordTraceCliTest {
    static final Path TINY = CliRunner.root().resolve("models/kvpc-tiny/kvpc-tiny.gguf");

    @Test
    void aReplayWithTheFullCacheGivesTheEnginesAttention() throws Exception {
        Llama2cModel m = Llama2cModel.fromGguf(GgufFile.open(TINY));
        TraceRecorder rec = new TraceRecorder(m, true);
        int[] prompt = {2, 40, 41, 300, 17, 99, 250, 7};
        try (PagePool pool = new PagePool(); LlamaEngine e = new LlamaEngine(m, LlamaEngine.fullCache(), pool, Matmul.scalar())) {
            e.record(rec);
            float[] logits = e.prefill(prompt, 0, prompt.length);
            for (int i = 0; i < 6; i++) logits = e.forward(LlamaEngine.argmax(logits));
        }
        Trace recorded = rec.trace(Map.of("source", "test"));
        assertEquals(7, recorded.steps().size(), "a prefill and six decode steps");
        assertNotNull(recorded.rope(), "the trace names the model's RoPE");
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        TraceIO.write(recorded, b);
        Trace t = TraceIO.read(new ByteArrayInputStream(b.toByteArray()));
        assertEquals(recorded, t, "the file holds the trace");

        var program = dev.kvpc.embed.Kvpc.specialise(CliRunner.root().resolve("stdlib-policies/full.kvp"), m.spec(), null, Map.of(), null);
        Result r = Interpreter.run(program, t);
        int group = m.heads / m.kvHeads, hd = m.headSize;
        double worst = 0;
        for (int s = 0; s < t.steps().size(); s++) {
            Result.Step step = r.steps().get(s);
            for (int l = 0; l < m.layers; l++) {
                float[] engine = rec.lastOutput(s, l);
                for (int g = 0; g < m.kvHeads; g++) {
                    double[] replay = step.lanes()[l][g].outputs();
                    assertEquals(group * hd, replay.length, "outputs of a lane's query heads");
                    for (int i = 0; i < replay.length; i++) {
                        double d = Math.abs(replay[i] - engine[g * group * hd + i]);
                        worst = Math.max(worst, d);
                        assertEquals(engine[g * group * hd + i], replay[i], 1e-4, "step " + s + " layer " + l + " KV head " + g + " channel " + i);
                    }
                }
            }
        }
        System.out.printf(java.util.Locale.ROOT, "replayed attention against the engine's: largest difference %.2e%n", worst);

        // without the RoPE attribute, the same floats are read as rotated already: other outputs
        Map<String, String> none = new java.util.TreeMap<>(t.attributes());
        none.remove(Trace.ROPE_THETA);
        Result unrotated = Interpreter.run(program, new Trace(t.shape(), t.steps(), none));
        double[] a = unrotated.steps().get(6).lanes()[3][0].outputs(), c = r.steps().get(6).lanes()[3][0].outputs();
        assertFalse(java.util.Arrays.equals(a, c), "the RoPE attribute is what rotates the replay");
    }

    @Test
    void runRecordsAndTraceReplays(@TempDir Path tmp) throws Exception {
        Path f = tmp.resolve("tiny.kvptrace");
        CliRunner r = CliRunner.run("run", "--model", TINY.toString(), "--prompt", "Once upon a time", "-n", "20", "--record-trace", f.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("recorded") && r.err().contains("--model layers=4,heads="), r.err());
        Trace t = TraceIO.read(f);
        assertEquals(20, t.length(), "every position of the run");
        assertEquals("kvpc run", t.attributes().get("source"));
        assertEquals("kvpc-tiny.gguf", t.attributes().get("model"));
        var sh = t.shape();
        String shape = "layers=" + sh.layers() + ",heads=" + sh.heads() + ",kv-heads=" + sh.kvHeads() + ",head-dim=" + sh.headDim();
        CliRunner replay = CliRunner.run("trace", CliRunner.root().resolve("stdlib-policies/h2o.kvp").toString(), "--trace", f.toString(), "--param", "budget=8",
                "--model", shape);
        assertEquals(0, replay.code(), replay.err());
        assertFalse(replay.out().isBlank(), "the replay reports its steps");
        assertTrue(Files.size(f) > 0);
    }

    /** tools/trace/record_hf.py's writer (its --selftest, numpy only): a trace kvpc reads and replays. */
    @Test
    void thePythonRecordersFilesReplay(@TempDir Path tmp) throws Exception {
        Path f = tmp.resolve("self.kvptrace");
        ProcessBuilder pb = new ProcessBuilder("python3", CliRunner.root().resolve("tools/trace/record_hf.py").toString(), "--selftest", f.toString());
        pb.redirectErrorStream(true);
        Process p;
        try {
            p = pb.start();
        } catch (java.io.IOException e) {
            // no python3 on this machine: the recorder cannot run here at all
            org.junit.jupiter.api.Assumptions.abort("no python3: " + e.getMessage());
            return;
        }
        String said = new String(p.getInputStream().readAllBytes());
        int code = p.waitFor();
        // numpy is not a dependency of the project: the recorder needs it only on the machine that records. Where python3
        // or numpy is missing the test is skipped, saying so (CI's machines have both, and there it runs)
        org.junit.jupiter.api.Assumptions.assumeFalse(said.contains("No module named 'numpy'"), "no numpy for python3");
        assertEquals(0, code, said);
        Trace t = TraceIO.read(f);
        assertEquals(4, t.steps().size());
        assertEquals(8, t.length());
        assertNotNull(t.rope());
        CliRunner replay = CliRunner.run("trace", CliRunner.root().resolve("stdlib-policies/h2o.kvp").toString(), "--trace", f.toString(), "--param", "budget=4",
                "--model", "layers=2,heads=4,kv-heads=2,head-dim=8");
        assertEquals(0, replay.code(), replay.err());
    }
}
