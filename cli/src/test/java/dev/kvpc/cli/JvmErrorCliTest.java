package dev.kvpc.cli;

import org.junit.jupiter.api.Test;

import java.io.PrintWriter;
import java.io.StringWriter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A JVM error inside a command is a message and exit 70, not a raw trace: what Main.run wraps every command in. */
class JvmErrorCliTest {
    private static int deep(int n) {
        return deep(n + 1) + 1;
    }

    @Test
    void aStackOverflowIsReportedNotThrown() {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int code = Main.guarded(() -> deep(0), new PrintWriter(out, true), new PrintWriter(err, true), false);
        assertEquals(Main.INTERNAL, code, err.toString());
        assertTrue(err.toString().contains("kvpc: internal error: the stack overflowed"), err.toString());
        assertFalse(err.toString().contains("\tat "), err.toString());
        StringWriter debug = new StringWriter();
        Main.guarded(() -> deep(0), new PrintWriter(out, true), new PrintWriter(debug, true), true);
        assertTrue(debug.toString().contains("\tat "), "--debug prints the trace");
    }

    @Test
    void runningOutOfHeapIsReportedNotThrown() {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int code = Main.guarded(() -> {
            throw new OutOfMemoryError("Java heap space");
        }, new PrintWriter(out, true), new PrintWriter(err, true), false);
        assertEquals(Main.INTERNAL, code);
        assertTrue(err.toString().contains("kvpc: internal error: out of memory (Java heap space); a larger heap (-Xmx) may help"), err.toString());
    }
}
