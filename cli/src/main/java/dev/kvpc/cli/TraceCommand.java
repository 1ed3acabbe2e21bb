package dev.kvpc.cli;

import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.ir.spi.Backend;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.concurrent.Callable;

@Command(name = "trace", description = {"Run a policy over a trace (with the reference interpreter, or --backend) and print, per step,",
        "what each lane keeps, attends, merges and at which precision, and its states.",
        "TRACE is a trace file (binary KVPTRACE or text) or random:seed=1,prefill=64,chunk=0,decode=16,sinks=4,heavy=3,needle=20."})
final class TraceCommand implements Callable<Integer> {
    @Parameters(paramLabel = "FILE", description = "A KVP file.")
    Path file;

    @Option(names = "--trace", required = true, paramLabel = "TRACE", description = "The trace (see above).")
    String trace;

    @Option(names = "--policy", paramLabel = "NAME", description = "The policy or config (default: the last one in FILE).")
    String policy;

    @Option(names = "--model", paramLabel = "SHAPE", description = "Model shape (default: layers=2,heads=4,kv-heads=2,head-dim=32 for random traces).")
    String model;

    @Option(names = "--param", paramLabel = "NAME=VALUE", description = "A parameter value (repeatable).")
    Map<String, String> params = new LinkedHashMap<>();

    @Option(names = "--slack", defaultValue = "0", description = "Amortised-eviction slack, 0 or more, as for kvpc ir.")
    int slack;

    @Option(names = "--backend", defaultValue = "interp", paramLabel = "NAME",
            description = "What runs the policy: interp (the reference interpreter, default), jvm (compiled to bytecode) or opencl (loop nests as OpenCL kernels). The report is the same.")
    String backend;

    @Option(names = "--device", paramLabel = "DEVICE", description = "With --backend opencl: the device, by index, P:D or name, as kvpc devices lists them (default: the first GPU, else the first device).")
    String device;

    @Option(names = "--lanes", defaultValue = "4", description = "How many lanes to show per step, at least 1 (default 4).")
    int lanes;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        var out = spec.commandLine().getOut();
        var err = spec.commandLine().getErr();
        Commands.range(spec, "--slack", slack, 0, Integer.MAX_VALUE);
        Commands.range(spec, "--lanes", lanes, 1, Integer.MAX_VALUE);
        ModelShape shape = Commands.shape(spec, model, "layers=2,heads=4,kv-heads=2,head-dim=32");
        Map<String, Object> values = new LinkedHashMap<>();
        params.forEach((k, v) -> values.put(k, IrCommand.parseValue(spec, v)));
        Frontend.Result r = Commands.check(file, shape, policy, values, err);
        if (r == null) return Main.INVALID;
        String root = Commands.root(r, file, policy, err);
        if (root == null) return Main.INVALID;
        if (Commands.missingParams(r, root, params.keySet(), err)) return Main.USAGE;
        Specialized s = Compilation.optimise(r.program(), root, values, new Pipeline.Options(slack, true), (p, x) -> { });
        List<Backend> all = ServiceLoader.load(Backend.class).stream().map(ServiceLoader.Provider::get).toList();
        Backend chosen = all.stream().filter(b -> b.name().equals(backend)).findFirst().orElse(null);
        if (chosen == null) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--backend " + backend + ": no such backend; there are "
                    + String.join(", ", all.stream().map(Backend::name).sorted().toList()));
        }
        if (device != null) {
            try {
                chosen = chosen.withDevice(device);
            } catch (UnsupportedOperationException e) {
                throw new CommandLine.ParameterException(spec.commandLine(), "--device: " + e.getMessage());
            }
        }
        try {
            chosen.trace(s, trace, lanes, out);
        } catch (IllegalArgumentException e) {
            err.println("kvpc: " + e.getMessage());
            return Main.INVALID;
        }
        out.flush();
        return Main.OK;
    }
}
