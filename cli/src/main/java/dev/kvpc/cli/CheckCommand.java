package dev.kvpc.cli;

import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.diag.Diagnostic;
import dev.kvpc.compiler.model.ModelShape;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;

@Command(name = "check", description = {"Check KVP files: syntax, names, types and shapes, budgets, evidence, storage.",
        "Diagnostics go to standard error as file:line:col: error[CODE]: message, with the source line underlined."})
final class CheckCommand implements Callable<Integer> {
    @Parameters(arity = "1..*", paramLabel = "FILE", description = "KVP files to check.")
    List<Path> files;

    @Option(names = "--model", paramLabel = "SHAPE", description = {
            "Model shape to check budgets, group sizes and tables against: a preset (${COMPLETION-CANDIDATES}) or "
                    + "layers=L,heads=H,kv-heads=G,head-dim=D, or a model file or folder (.gguf, llama2.c .bin) to read it from. Default: reference (32 layers, 32 heads, 8 KV heads, head dim 128)."},
            completionCandidates = Presets.class)
    String model;

    @Option(names = "--param", paramLabel = "NAME=VALUE", description = {
            "Give a parameter of each file's policy a value (repeatable): a number, true, false, or a \"string\" (a table"
                    + " file, read from the current folder). The checks then use it instead of the default."})
    Map<String, String> params = new LinkedHashMap<>();

    @Option(names = {"-q", "--quiet"}, description = "Print only diagnostics, no summary.")
    boolean quiet;

    @Option(names = "--Werror", description = "Treat warnings as errors.")
    boolean warningsAsErrors;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        ModelShape shape;
        try {
            shape = model == null ? ModelShape.REFERENCE : Commands.shape(model);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--model: " + e.getMessage());
        }
        var err = spec.commandLine().getErr();
        Set<String> seen = new HashSet<>();
        int errors = 0, warnings = 0;
        Map<String, Object> values = new LinkedHashMap<>();
        params.forEach((k, v) -> values.put(k, IrCommand.parseValue(spec, v)));
        for (Path f : files) {
            Frontend.Result r = values.isEmpty() ? Frontend.check(f, shape) : Frontend.check(f, shape, null, values);
            if (!values.isEmpty() && r.program() != null && Commands.missingParams(r, dev.kvpc.compiler.api.Compilation.defaultRoot(r.program()), values.keySet(), err)) {
                err.flush();
                return Main.USAGE;
            }
            for (Diagnostic d : r.diagnostics().all()) {
                if (!seen.add(d.code() + "|" + d.span() + "|" + d.message())) continue;
                err.print(r.renderer().render(d));
                if (d.severity() == dev.kvpc.compiler.diag.Severity.ERROR) errors++;
                else warnings++;
            }
        }
        if (!quiet) {
            err.println("checked " + files.size() + " file" + (files.size() == 1 ? "" : "s") + " for " + shape.name() + ": "
                    + errors + " error" + (errors == 1 ? "" : "s") + ", " + warnings + " warning" + (warnings == 1 ? "" : "s"));
        }
        err.flush();
        return errors > 0 || (warningsAsErrors && warnings > 0) ? Main.INVALID : Main.OK;
    }

    static final class Presets implements Iterable<String> {
        @Override
        public java.util.Iterator<String> iterator() {
            return new java.util.TreeSet<>(ModelShape.presets().keySet()).iterator();
        }
    }
}
