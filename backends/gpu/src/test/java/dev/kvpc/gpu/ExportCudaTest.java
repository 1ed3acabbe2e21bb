package dev.kvpc.gpu;

import dev.kvpc.gpu.tools.ExportCuda;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** The CUDA kernels committed under benchmarks/gpu/kernels are what the emitter writes now ({@code -Dkvpc.bless=true} rewrites them). */
class ExportCudaTest {
    @Test
    void committedKernelsAreCurrent() throws Exception {
        Path dir = Path.of("").toAbsolutePath();
        while (!Files.isDirectory(dir.resolve("benchmarks"))) dir = dir.getParent();
        dir = dir.resolve("benchmarks/gpu/kernels");
        for (String[] f : ExportCuda.files()) {
            Path p = dir.resolve(f[0]);
            if (Boolean.getBoolean("kvpc.bless")) {
                Files.createDirectories(dir);
                Files.writeString(p, f[1]);
                continue;
            }
            assertTrue(Files.exists(p), p + " is missing: run the gpu module's tests with -Dkvpc.bless=true");
            assertEquals(f[1], Files.readString(p), p + " is stale: run the gpu module's tests with -Dkvpc.bless=true");
        }
    }

    /** The GPU scripts pass each kernel the arguments its signature names, in order (their --dry-run, no GPU needed). */
    @Test
    void theGpuScriptMatchesTheKernelsSignatures() throws Exception {
        // the script is Python; a machine without python3 cannot run it at all, so the check is skipped with the reason
        org.junit.jupiter.api.Assumptions.assumeTrue(CudaDialectTest.onPath("python3"), "no python3 on the PATH");
        Path root = Path.of("").toAbsolutePath();
        while (!Files.isDirectory(root.resolve("benchmarks"))) root = root.getParent();
        for (String[] script : new String[][] {{"decode_attention.py", "every kernel's parameters match"}, {"decode_e2e.py", "match what the script passes"}}) {
            Process p = new ProcessBuilder("python3", root.resolve("benchmarks/gpu/" + script[0]).toString(), "--dry-run").redirectErrorStream(true).start();
            String log = new String(p.getInputStream().readAllBytes());
            assertTrue(p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS));
            assertEquals(0, p.exitValue(), script[0] + ": " + log);
            assertTrue(log.contains(script[1]), script[0] + ": " + log);
        }
    }
}
