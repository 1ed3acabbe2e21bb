package dev.kvpc.cli;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Numeric options outside their ranges are usage errors (exit 64) that state the range, before any work is done;
 * they used to exit 70 (--temperature Infinity, --top-p NaN, eval --lengths 0) or be accepted (--top-p 2,
 * --threads 100000, --lanes -1, --slack -5, sliding(w = 0)), and eval --out to a place it cannot write ran the whole
 * evaluation before failing.
 */
class ArgumentRangesCliTest {
    private static final String MODEL = CliRunner.root().resolve("models/kvpc-tiny/kvpc-tiny.gguf").toString();

    private static void usage(String expected, String... args) {
        CliRunner r = CliRunner.run(args);
        assertEquals(Main.USAGE, r.code(), String.join(" ", args) + ": " + r.err());
        assertTrue(r.err().contains(expected), String.join(" ", args) + ": " + r.err());
    }

    @Test
    void samplingAndThreads() {
        usage("--temperature must be 0 (greedy) or a finite number > 0, not Infinity", "run", "--model", MODEL, "--temperature", "Infinity");
        usage("--temperature must be 0 (greedy) or a finite number > 0, not -1.0", "run", "--model", MODEL, "--temperature", "-1");
        for (String p : new String[] {"NaN", "0", "2", "-1"}) usage("--top-p must be in (0, 1], not ", "run", "--model", MODEL, "--top-p", p);
        usage("--threads must be from 1 to 256, not 100000", "run", "--model", MODEL, "--threads", "100000");
        usage("--threads must be from 1 to 256, not 0", "eval", "--quick", "--threads", "0");
    }

    @Test
    void slackLanesAndLengths() {
        String h2o = CliRunner.root().resolve("stdlib-policies/h2o.kvp").toString();
        usage("--lanes must be at least 1, not -1", "trace", h2o, "--trace", "random:seed=1", "--lanes", "-1");
        usage("--slack must be at least 0, not -5", "trace", h2o, "--trace", "random:seed=1", "--slack", "-5");
        usage("--slack must be at least 0, not -5", "memory", h2o, "--context", "100", "--slack", "-5");
        usage("--lengths must be at least 2, not 0", "eval", "--quick", "--lengths", "0");
    }

    /** A model shape past the bounds (it used to check for ever: every lane of 10^18 is visited). */
    @Test
    void modelShapesAreBounded() {
        long t0 = System.nanoTime();
        usage("is out of range: layers 1 to 1024, heads 1 to 1024, kv-heads 1 to heads, head-dim 1 to 16384", "check",
                "--model", "layers=1000000000,heads=1000000000,kv-heads=1000000000,head-dim=1000000000",
                CliRunner.root().resolve("stdlib-policies/h2o.kvp").toString());
        assertTrue(System.nanoTime() - t0 < 20_000_000_000L, "refused at once");
    }

    @Test
    void evalOutIsCheckedBeforeTheEvaluation() {
        long t0 = System.nanoTime();
        usage("--out: cannot write results in /proc/kvpc-eval-out", "eval", "--quick", "--out", "/proc/kvpc-eval-out");
        assertTrue(System.nanoTime() - t0 < 20_000_000_000L, "refused at once, not after the evaluation");
    }

    /** A variant's arguments are held to the ranges its declaration states, as a policy's are (exit 65, a checker error). */
    @Test
    void variantArgumentsOutsideTheirRanges() {
        for (String v : new String[] {"sliding(w = 0)", "sliding(w = -3)", "softcap(cap = 0.0)", "softcap(cap = -1.0)"}) {
            CliRunner r = CliRunner.run("run", "--model", MODEL, "--attention", v, "-n", "4");
            assertEquals(Main.INVALID, r.code(), v + ": " + r.err());
            assertTrue(r.err().contains("error[E111]") && r.err().contains("outside its declared range"), v + ": " + r.err());
        }
    }
}
