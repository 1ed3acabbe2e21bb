package dev.kvpc.gpu.cl;

import dev.kvpc.gpu.Devices;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/**
 * After the platform compiles a program and a kernel's first launches, no signal's handler lies in LLVM: PoCL's LLVM
 * installs its own over the JVM's, and {@link SignalHandlers} puts the JVM's back (a SIGSEGV the JVM takes in normal
 * running would otherwise find LLVM's one-shot handler, and two at once kill the process).
 */
class SignalHandlersTest {
    @Test
    void theJvmsHandlersAreBackAfterACompile() {
        try (ClContext cl = Devices.context()) {
            // a source no earlier run built, so the platform's compiler runs (no cache hit)
            String src = "__kernel void k(__global float* x) { x[get_global_id(0)] += " + System.nanoTime() % 1_000_000 + ".0f; }";
            ClContext.Kernel k = cl.build(src, "-cl-std=CL1.2", "a signal-handler check").kernel("k");
            ClContext.Buffer b = cl.buffer(4L * 64, "floats");
            b.write(new float[64]);
            k.arg(0, b);
            for (long local : new long[] {1, 2, 4}) k.launch(new long[] {64}, new long[] {local});
            float[] out = new float[64];
            b.read(out);
            assertTrue(out[63] > 0, "the kernel ran");
            SignalHandlers s = OpenCl.signals();
            if (!System.getProperty("os.name").startsWith("Linux")) return;
            assertNotNull(s, "Linux's C library has sigaction and dladdr");
            assertEquals(0, s.inLlvm(), "signals whose handler lies in LLVM after a compile");
            if (cl.device().platformName().contains("Portable Computing Language")) {
                // LLVM installs its handlers once (when PoCL first starts it) and counts them as installed after
                assertTrue(OpenCl.signalHandlersRestored() > 0, "PoCL's LLVM replaced handlers, and they were put back");
            }
        }
    }
}
