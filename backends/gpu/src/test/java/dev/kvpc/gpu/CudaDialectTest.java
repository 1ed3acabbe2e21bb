package dev.kvpc.gpu;

import dev.kvpc.gpu.emit.CEmitter;
import dev.kvpc.gpu.emit.Dialect;
import dev.kvpc.gpu.kernels.DecodeAttention;
import dev.kvpc.gpu.kir.KirModule;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The CUDA C dialect compiles: the shipped kernels, emitted as CUDA C, are compiled to PTX by {@code nvcc} where the
 * machine has it (no GPU is needed to compile); skipped where it has none.
 */
class CudaDialectTest {
    @Test
    void shippedKernelsCompileWithNvcc() throws Exception {
        // nvcc comes with CUDA, which a machine need not have: the CUDA text is then checked by its golden dump and the
        // GPU script's dry run only, and this compile check is skipped with the reason
        Assumptions.assumeTrue(onPath("nvcc"), "no nvcc on the PATH");
        Path dir = Files.createTempDirectory("kvpc-cuda");
        try {
            for (int[] shape : new int[][] {{64, 4, 64, 0}, {128, 8, 128, 0}, {8, 1, 32, 0}, {64, 4, 64, 1}}) {
                // the last: the resident form, reading f32, bf16 and int2 rows in place
                KirModule m = shape[3] == 0 ? DecodeAttention.module(shape[0], shape[1], shape[2], 256)
                        : dev.kvpc.gpu.kernels.ResidentDecodeKernel.module(shape[0], shape[1], shape[2], 128, java.util.List.of(
                                dev.kvpc.runtime.store.QuantSpec.of(dev.kvpc.runtime.store.Precision.F32), dev.kvpc.runtime.store.QuantSpec.of(dev.kvpc.runtime.store.Precision.BF16),
                                dev.kvpc.runtime.store.QuantSpec.resolve(dev.kvpc.runtime.store.Precision.INT2, dev.kvpc.runtime.store.QuantSpec.Axis.TOKEN, 16, shape[0])), 16);
                Path cu = dir.resolve("decode_d" + shape[0] + "_" + shape[3] + ".cu"), ptx = dir.resolve("decode_d" + shape[0] + "_" + shape[3] + ".ptx");
                Files.writeString(cu, CEmitter.emit(m, Dialect.CUDA));
                Process p = new ProcessBuilder("nvcc", "--ptx", "-arch=sm_80", cu.toString(), "-o", ptx.toString()).redirectErrorStream(true).start();
                String log = new String(p.getInputStream().readAllBytes());
                assertTrue(p.waitFor(120, TimeUnit.SECONDS), "nvcc finished");
                assertEquals(0, p.exitValue(), "nvcc on " + cu.getFileName() + ":\n" + log);
                String text = Files.readString(ptx);
                for (String k : new String[] {"decode_partial", "decode_merge", "decode_colsums"}) assertTrue(text.contains(".entry " + k), k + " in the PTX");
            }
        } finally {
            try (var s = Files.walk(dir)) {
                s.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            }
        }
    }

    static boolean onPath(String tool) {
        String path = System.getenv("PATH");
        if (path == null) return false;
        for (String d : path.split(java.io.File.pathSeparator)) if (Files.isExecutable(Path.of(d, tool))) return true;
        return false;
    }
}
