package dev.kvpc.cli;

import org.junit.jupiter.api.Test;

import java.io.PrintWriter;
import java.io.StringWriter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A JVM error inside a command (here a stack overflow, on a thread with a tiny stack) is a message and exit 70, not a raw trace. */
class JvmErrorCliTest {
    @Test
    void aStackOverflowIsReportedNotThrown() throws Exception {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int[] code = {-1};
        Throwable[] escaped = {null};
        Thread t = new Thread(null, () -> {
            try {
                code[0] = Main.run(new String[] {"check", CliRunner.root().resolve("stdlib-policies/snapkv.kvp").toString()},
                        new PrintWriter(out, true), new PrintWriter(err, true));
            } catch (Throwable e) {
                escaped[0] = e;
            }
        }, "tiny-stack", 64 * 1024);
        t.start();
        t.join();
        assertEquals(null, escaped[0], "nothing escapes Main.run");
        assertEquals(Main.INTERNAL, code[0], err.toString());
        assertTrue(err.toString().contains("kvpc: internal error: the stack overflowed"), err.toString());
        assertFalse(err.toString().contains("\tat "), err.toString());
    }
}
