package dev.kvpc.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.kvpc.runtime.trace.Trace;
import dev.kvpc.runtime.trace.TraceFormatException;
import dev.kvpc.runtime.trace.TraceIO;
import dev.kvpc.runtime.trace.TraceText;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The trace readers, binary and text: a trace or an {@link IOException} that says what is wrong; a text trace read is printed back the same. */
class TraceFuzzTest {
    /** The input as it is, and with its checksums written again, which takes the fuzzer past them to what they guard. */
    @FuzzTest(maxDuration = "30s")
    void binary(byte[] input) {
        read(input);
        read(Mutator.withCrcs(input));
    }

    private static void read(byte[] bytes) {
        try {
            Trace t = TraceIO.read(new ByteArrayInputStream(bytes), 1 << 24);
            TraceText.print(t);
        } catch (IOException e) {
            // refused, with a message
        }
    }

    @FuzzTest(maxDuration = "30s")
    void text(byte[] input) throws TraceFormatException {
        Trace t;
        try {
            t = TraceText.parse(new String(input, StandardCharsets.UTF_8));
        } catch (TraceFormatException e) {
            return;
        }
        String printed = TraceText.print(t);
        assertEquals(printed, TraceText.print(TraceText.parse(printed)), "a trace printed, read and printed again differs");
    }
}
