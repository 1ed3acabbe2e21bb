package dev.kvpc.cli;

import dev.kvpc.examples.llama.HfExport;
import dev.kvpc.examples.llama.ModelFormatException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "export-hf", description = {"Write a GGUF llama model in Hugging Face's form (config.json, model.safetensors in F32, tokenizer.json), which",
        "transformers and Jlama read: the same function, Q and K rows back in the halves order Hugging Face's RoPE rotates.",
        "Byte-level BPE vocabularies only."})
final class ExportHfCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "PATH", description = "The GGUF model, or a folder holding one.")
    Path model;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "DIR", description = "The folder to write the three files into (created if missing).")
    Path output;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        try {
            Path gguf = RunCommand.resolveModel(model);
            HfExport.write(gguf, output);
            out.println("wrote " + String.join(", ", HfExport.FILES) + " to " + output + " (from " + gguf + ")");
            out.flush();
            return Main.OK;
        } catch (ModelFormatException e) {
            err.println("kvpc export-hf: " + e.getMessage());
            err.flush();
            return Main.INVALID;
        } catch (IOException e) {
            err.println("kvpc export-hf: cannot write " + output + ": " + e.getMessage());
            err.flush();
            return Main.INVALID;
        }
    }
}
