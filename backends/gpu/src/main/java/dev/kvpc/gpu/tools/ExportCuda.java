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
 * Writes the decode attention kernels as CUDA C for {@code benchmarks/gpu} (a GPU machine may have no JDK): one
 * {@code .cu} file per shape and a {@code kernels.json} listing each file's head dim, group, work-group size and split
 * length. {@code ExportCudaTest} keeps the committed files current.
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
        index.append("  ]\n}\n");
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
