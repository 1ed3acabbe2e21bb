package dev.kvpc.compiler.check;

import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.diag.Code;
import dev.kvpc.compiler.model.ModelShape;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The checker on channel tables: a row reduced over its channels is a lane constant a budget proof can use (it was
 * unknown, so a count built from it "depends on the data and can be negative", E300).
 */
class ChannelTableCheckTest {
    static final ModelShape SHAPE = ModelShape.parse("layers=2,heads=4,kv-heads=2,head-dim=4");

    /** Rows (layer, KV head) summing to 8, 12, 16 and 20. */
    static Path table(Path dir) throws IOException {
        Files.writeString(dir.resolve("w.tsv"), "2\t2\t2\t2\n3\t3\t3\t3\n4\t4\t4\t4\n5\t5\t5\t5\n");
        return dir;
    }

    @Test
    void aRowsSumBoundsACount(@TempDir Path dir) throws IOException {
        Frontend.Result r = Frontend.checkText("cnt.kvp", """
                policy cnt(w: table[channel] = "w.tsv") {
                    on overflow(64) {
                        keep last(int(sum(w, over: channel))) + top(-float(age), 64 - int(sum(w, over: channel)))
                    }
                }
                """, table(dir), SHAPE);
        assertTrue(r.ok(), r.diagnostics().all().toString());
    }

    @Test
    void aRowsSumOverTheBudgetIsCaught(@TempDir Path dir) throws IOException {
        // layer 1's rows sum to 16 and 20: last(16) + top(..., 50) holds 66 entries under a budget of 64
        Frontend.Result r = Frontend.checkText("over.kvp", """
                policy over(w: table[channel] = "w.tsv") {
                    on overflow(64) {
                        keep last(int(sum(w, over: channel))) + top(-float(age), 50)
                    }
                }
                """, table(dir), SHAPE);
        assertEquals(Code.E302, r.diagnostics().all().getFirst().code(), r.diagnostics().all().toString());
        assertTrue(r.diagnostics().all().getFirst().notes().getFirst().message().contains("66 entries"), r.diagnostics().all().toString());
    }
}
