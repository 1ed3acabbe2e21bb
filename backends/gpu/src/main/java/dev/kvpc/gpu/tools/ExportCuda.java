package dev.kvpc.gpu.tools;

import dev.kvpc.gpu.emit.CEmitter;
import dev.kvpc.gpu.emit.Dialect;
import dev.kvpc.gpu.kernels.DecodeAttention;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Writes kvpc's kernels as CUDA C for {@code benchmarks/gpu} (a GPU machine may have no JDK): the decode attention
 * kernels, one {@code .cu} file per shape, the engine's matrix products (F32 and F16 weights) and its norms, gate and
 * adds, and a {@code kernels.json} listing each file with its head dim, group, work-group size and split length.
 * {@code ExportCudaTest} keeps the committed files current.
 */
public final class ExportCuda {
    /** Head dim and group of each exported shape: Llama-family heads and GQA groups. */
    static final int[][] SHAPES = {{64, 4}, {128, 4}, {128, 8}};
    static final int WORK_GROUP = 64;

    private ExportCuda() {
    }

    /** File name to contents, in order: every shape's kernels, then the index. */
    public static List<String[]> files() {
        List<String[]> out = new ArrayList<>();
        StringBuilder index = new StringBuilder("{\n  \"work_group\": " + WORK_GROUP + ",\n  \"kernels\": [\n");
        for (int i = 0; i < SHAPES.length; i++) {
            int d = SHAPES[i][0], g = SHAPES[i][1];
            DecodeAttention.Geometry geo = DecodeAttention.Geometry.of(d, g, WORK_GROUP);
            String name = String.format(Locale.ROOT, "decode_d%d_g%d.cu", d, g);
            out.add(new String[] {name, CEmitter.emit(DecodeAttention.module(d, g, geo.workGroup(), geo.chunk()), Dialect.CUDA)});
            index.append(String.format(Locale.ROOT, "    {\"file\": \"%s\", \"head_dim\": %d, \"group\": %d, \"work_group\": %d, \"chunk\": %d}%s%n",
                    name, d, g, geo.workGroup(), geo.chunk(), i + 1 < SHAPES.length ? "," : ""));
        }
        index.append("  ],\n");
        // the engine: what decode_e2e.py runs a llama forward pass with
        out.add(new String[] {"engine.cu", CEmitter.emit(dev.kvpc.gpu.kernels.KernelTemplates.module("engine",
                java.util.Map.of("WG", WORK_GROUP, "LOGWG", Integer.numberOfTrailingZeros(WORK_GROUP))), Dialect.CUDA)});
        out.add(new String[] {"matmul_f32.cu", CEmitter.emit(dev.kvpc.gpu.kernels.ClMatmul.module(dev.kvpc.examples.llama.GgufFile.TensorType.F32, WORK_GROUP),
                Dialect.CUDA)});
        out.add(new String[] {"matmul_f16.cu", CEmitter.emit(dev.kvpc.gpu.kernels.ClMatmul.module(dev.kvpc.examples.llama.GgufFile.TensorType.F16, WORK_GROUP),
                Dialect.CUDA)});
        index.append("  \"engine\": {\"file\": \"engine.cu\", \"work_group\": " + WORK_GROUP + "},\n");
        index.append("  \"matmul\": {\"f32\": \"matmul_f32.cu\", \"f16\": \"matmul_f16.cu\", \"work_group\": " + WORK_GROUP + "}\n}\n");
        out.add(new String[] {"kernels.json", index.toString()});
        return out;
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 1) {
            System.err.println("usage: ExportCuda DIR");
            System.exit(64);
        }
        Path dir = Path.of(args[0]);
        Files.createDirectories(dir);
        for (String[] f : files()) Files.writeString(dir.resolve(f[0]), f[1]);
        System.out.println("wrote " + files().size() + " files to " + dir);
    }
}
