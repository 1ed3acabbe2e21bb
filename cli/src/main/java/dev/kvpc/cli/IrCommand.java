package dev.kvpc.cli;

import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.ir.IrPrinter;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "ir", description = {"Print the tensor IR of a policy: as lowered, or specialised to a model and optimised.",
        "Passes, in order: " + "specialize, cse, fuse-statistics, dead-code, incrementalize, amortize-eviction, select-algorithm."})
final class IrCommand implements Callable<Integer> {
    @Parameters(paramLabel = "FILE", description = "A KVP file.")
    Path file;

    @Option(names = "--policy", paramLabel = "NAME", description = "The policy or config to compile (default: the last one in FILE).")
    String policy;

    @Option(names = "--model", paramLabel = "SHAPE", description = "Model shape: a preset, layers=L,heads=H,kv-heads=G,head-dim=D, or a model file or folder to read it from (default: reference).")
    String model;

    @Option(names = "--lowered", description = "Print the IR as lowered from the source, before any pass.")
    boolean lowered;

    @Option(names = "--level", defaultValue = "tensor", paramLabel = "tensor|loop",
            description = "Which IR to print after the pipeline: the tensor IR, or the loop IR backends emit from (default tensor).")
    String level;

    @Option(names = "--dump-after", paramLabel = "PASS", description = "Print the IR after this pass, or after every pass with 'all'.")
    String dumpAfter;

    @Option(names = "--slack", paramLabel = "N", defaultValue = "0", description = "Amortised-eviction slack: overflow handlers keep N fewer entries so selection runs once per N+1 steps (default 0).")
    int slack;

    @Option(names = "--param", paramLabel = "NAME=VALUE", description = "Give a parameter of the policy a value (repeatable).")
    Map<String, String> params = new LinkedHashMap<>();

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        var out = spec.commandLine().getOut();
        var err = spec.commandLine().getErr();
        ModelShape shape = Commands.shape(spec, model, null);
        if (!level.equals("tensor") && !level.equals("loop")) throw new CommandLine.ParameterException(spec.commandLine(), "--level is tensor or loop");
        if (slack < 0) throw new CommandLine.ParameterException(spec.commandLine(), "--slack must be 0 or more");
        if (dumpAfter != null && !dumpAfter.equals("all") && !Pipeline.PASSES.contains(dumpAfter)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--dump-after: unknown pass '" + dumpAfter + "'; passes: "
                    + String.join(", ", Pipeline.PASSES) + ", or all");
        }
        Map<String, Object> values = new LinkedHashMap<>();
        params.forEach((k, v) -> values.put(k, parseValue(spec, v)));
        Frontend.Result r = Commands.check(file, shape, policy, values, err);
        if (r == null) return Main.INVALID;
        if (lowered) {
            out.print(IrPrinter.print(Compilation.lower(r.program())));
            return Main.OK;
        }
        String root = Commands.root(r, file, policy, err);
        if (root == null) return Main.INVALID;
        if (Commands.missingParams(r, root, params.keySet(), err)) return Main.USAGE;
        Specialized s = Compilation.optimise(r.program(), root, values, new Pipeline.Options(slack, true), (pass, result) -> {
            if (dumpAfter != null && (dumpAfter.equals("all") || dumpAfter.equals(pass))) {
                out.println("// ---- after " + pass);
                out.print(result.print());
            }
        });
        if (dumpAfter == null) {
            if (level.equals("loop")) {
                for (int i = 0; i < s.classes().size(); i++) {
                    out.println("// class " + i);
                    out.print(dev.kvpc.ir.loop.LoopText.print(dev.kvpc.ir.loop.LoopLowering.lower(s.classes().get(i))));
                }
            } else {
                out.print(s.print());
            }
        }
        out.flush();
        return Main.OK;
    }

    static Object parseValue(CommandLine.Model.CommandSpec spec, String v) {
        try {
            return Commands.literal(v);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--param: " + e.getMessage());
        }
    }
}
