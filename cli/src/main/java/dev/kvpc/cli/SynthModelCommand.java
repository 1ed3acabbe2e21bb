package dev.kvpc.cli;

import dev.kvpc.examples.llama.GgufFile;
import dev.kvpc.examples.llama.SynthModel;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "synth-model", description = {"Write a GGUF file of a real model's shape with random weights, for benchmarks of long contexts and large",
        "KV caches at realistic sizes (no claim of quality). llama.cpp and kvpc's engine both load it."})
final class SynthModelCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--shape", required = true, paramLabel = "NAME", description = "The model whose shape to take: llama3-8b, llama2-7b, mistral-7b, tinyllama-1.1b, smollm-135m.")
    String shape;

    @Option(names = "--layers", paramLabel = "N", description = "Transformer blocks to write, 1 to the shape's count (default 2; the embedding and output matrices are whole).")
    int layers = 2;

    @Option(names = "--weights", paramLabel = "TYPE", description = "Weight type: f32, f16, bf16, q8_0, q4_0 (default), q4_k, q5_k, q6_k.")
    String weights = "q4_0";

    @Option(names = "--seed", paramLabel = "N", description = "Seed of the random weights (default 0): the same seed writes the same file.")
    long seed;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "FILE", description = "The GGUF file to write.")
    Path output;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        SynthModel.Shape s = SynthModel.SHAPES.get(shape);
        if (s == null) throw new CommandLine.ParameterException(spec.commandLine(), "--shape '" + shape + "' is none of " + String.join(", ", SynthModel.SHAPES.keySet()));
        GgufFile.TensorType type = null;
        for (GgufFile.TensorType t : SynthModel.WEIGHTS) if (t.name().equalsIgnoreCase(weights)) type = t;
        if (type == null) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--weights '" + weights + "' is none of "
                    + String.join(", ", SynthModel.WEIGHTS.stream().map(t -> t.name().toLowerCase(Locale.ROOT)).toList()));
        }
        Commands.range(spec, "--layers", layers, 1, s.layers());
        long total = SynthModel.dataBytes(s, layers, type);
        err.printf(Locale.ROOT, "kvpc synth-model: %s, %d of %d blocks, %s weights: %,d parameters, about %s%n", s.name(), layers, s.layers(), type,
                s.parameters(layers), RunCommand.bytes(total));
        if (total > Integer.MAX_VALUE) {
            err.println("kvpc synth-model: note: kvpc's engine maps GGUF files of up to 2 GiB; llama.cpp reads this one, kvpc's engine will refuse it (take fewer --layers)");
        }
        err.flush();
        long[] last = {System.nanoTime()};
        // written beside the target and moved over it when whole: a failed or stopped run leaves no partial file
        Path part = output.toAbsolutePath().resolveSibling(output.getFileName() + ".part");
        try {
            SynthModel.write(s, layers, type, seed, part, done -> {
                long now = System.nanoTime();
                if (now - last[0] < 500_000_000L && done < total) return;
                last[0] = now;
                err.printf(Locale.ROOT, "\rkvpc synth-model: %3.0f%% (%s of %s)   ", 100.0 * done / total, RunCommand.bytes(done), RunCommand.bytes(total));
                err.flush();
            });
            java.nio.file.Files.move(part, output, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            deleteQuietly(part);
            err.println();
            err.println("kvpc synth-model: cannot write " + output + ": " + e.getMessage());
            return Main.INVALID;
        } catch (IllegalArgumentException e) {
            deleteQuietly(part);
            err.println("kvpc synth-model: " + e.getMessage());
            return Main.USAGE;
        }
        err.println();
        out.printf(Locale.ROOT, "wrote %s: %s shape, %d blocks, %s weights (random, seed %d): for speed and memory, not quality%n", output, s.name(), layers,
                type, seed);
        out.flush();
        return Main.OK;
    }

    private static void deleteQuietly(Path p) {
        try {
            java.nio.file.Files.deleteIfExists(p);
        } catch (IOException e) {
            // nothing more to do: the message above names the target
        }
    }
}
