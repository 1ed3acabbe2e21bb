package dev.kvpc.gpu;

import dev.kvpc.gpu.kir.Kernel;
import dev.kvpc.gpu.kir.KirText;
import dev.kvpc.gpu.kir.KirVerifier;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** Each rule of {@link KirVerifier}, broken once; and the shipped kernels pass. */
class KirVerifierTest {
    static List<String> problems(String body) {
        String src = "kernel k [group 64] (buffer float x, out buffer float y, buffer half h, int n) {\n  local float red[64];\n  private float mine[4];\n" + body + "\n}\n";
        Kernel k = KirText.parse(src).kernels().get(0);
        return KirVerifier.problems(k);
    }

    static void refused(String body, String expected) {
        List<String> p = problems(body);
        assertTrue(p.stream().anyMatch(s -> s.contains(expected)), "expected a problem containing '" + expected + "', got " + p);
    }

    @Test
    void wellFormedKernelsPass() {
        assertEquals(List.of(), problems("""
                  let int t = local_id(0);
                  store red[t] = x[t];
                  barrier;
                  for k = 0 to 6 step 1 {
                    let int w = (32 >> k);
                    if (t < w) {
                      store red[t] = (red[t] + red[(t + w)]);
                    }
                    barrier;
                  }
                  let float total = red[0];
                  if (total > 0.0f) {
                    barrier;
                  }
                  store y[t] = (h[t] * total);
                """));
    }

    @Test
    void barriersOnlyWhereEveryWorkItemArrives() {
        refused("if (local_id(0) < 4) {\n barrier;\n}", "a barrier under control flow");
        refused("let int t = global_id(0);\nif (t < n) {\n barrier;\n}", "a barrier under control flow");
        // divergence through a load at a divergent index, and through an assignment under divergent control
        refused("let float v = x[local_id(0)];\nif (v > 0.0f) {\n barrier;\n}", "a barrier under control flow");
        refused("let int c = 0;\nif (local_id(0) == 0) {\n c = 1;\n}\nif (c == 1) {\n barrier;\n}", "a barrier under control flow");
        // what an array private to each work-item holds differs between work-items, whatever the index
        refused("store mine[0] = 1.0f;\nif (mine[0] > 0.0f) {\n barrier;\n}", "a barrier under control flow");
        // a loop whose trip count differs between work-items
        refused("for i = local_id(0) to n step 64 {\n barrier;\n}", "a barrier under control flow");
        // divergence found only on a second pass: c becomes divergent after the barrier's loop iteration reads it
        refused("let int c = 0;\nfor i = 0 to 4 step 1 {\n if (c > 0) {\n  barrier;\n }\n c = local_id(0);\n}", "a barrier under control flow");
    }

    @Test
    void typesNamesAndMemory() {
        refused("let int i = 1.0f;", "let i: int initialised with float");
        refused("store y[0] = 1;", "store of int to y of float");
        refused("store x[0] = 1.0f;", "store to x, a read-only buffer");
        refused("store y[1.0f] = 1.0f;", "an index is float, not int");
        refused("let float v = z[0];", "z is not a buffer or local array");
        refused("let int i = q;", "q is not declared here");
        refused("let int n = 1;", "n is declared twice");
        refused("let int half = 1;", "half is not a name a kernel may use");
        refused("atomic h[0] += 1.0f;", "atomic add to h of half");
        refused("atomic mine[0] += 1.0f;", "atomic add to mine, an array private to each work-item");
        refused("n = 2;", "assignment to n, which is read-only");
        refused("for i = 0 to n step 1 {\n i = 2;\n}", "assignment to i, which is read-only");
        refused("if 1 {\n}", "a condition is int, not bool");
        refused("let float v = fmax(1.0f, 2);", "fmax does not take [float, int]");
        refused("let float v = select(true, 1, 2.0f);", "select does not take");
        List<String> p = KirVerifier.problems(KirText.parse("kernel k () {\n  local float big[9000];\n}").kernels().get(0));
        assertEquals(List.of("local arrays take 36000 bytes, more than the 32768 every device has"), p);
    }
}
