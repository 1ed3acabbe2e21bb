package dev.kvpc.cli;

import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.api.JarFacts;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.ir.spi.Backend;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.concurrent.Callable;

@Command(name = "compile", description = {"Compile policies to JVM bytecode: a jar the runtime's loader accepts (kvpc run --policy P.jar),",
        "or the bytecode listing (--emit=asm). With several files, -o names a directory that gets one POLICY.jar each."})
final class CompileCommand implements Callable<Integer> {
    @Parameters(paramLabel = "FILE", arity = "1..*", description = "KVP files.")
    List<Path> files;

    @Option(names = "--policy", paramLabel = "NAME", description = "The policy or config to compile (default: the last one in each FILE; only with one FILE).")
    String policy;

    @Option(names = "--model", paramLabel = "SHAPE", description = "Model shape: a preset, layers=L,heads=H,kv-heads=G,head-dim=D, or a model file or folder to read it from (default: reference).")
    String model;

    @Option(names = {"-o", "--output"}, paramLabel = "PATH", description = "The jar to write (one FILE), or a directory (default: POLICY.jar in the current directory).")
    Path output;

    @Option(names = "--emit", paramLabel = "jar|asm", defaultValue = "jar", description = "jar (default), or asm: print the bytecode listing instead.")
    String emit;

    @Option(names = "--param", paramLabel = "NAME=VALUE", description = "Give a parameter of the policy a value (repeatable).")
    Map<String, String> params = new LinkedHashMap<>();

    @Option(names = "--slack", paramLabel = "N", defaultValue = "0", description = "Amortised-eviction slack, 0 or more (see kvpc ir; default 0).")
    int slack;

    @Option(names = "--context", paramLabel = "N", defaultValue = "4096", description = "Context length of the memory prediction written to the manifest, 1 to 2^40 (default 4096).")
    long context;

    @Option(names = "--dtype", paramLabel = "T", defaultValue = "f16", description = "Host KV dtype of the memory prediction (default f16).")
    String dtype;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        ModelShape shape = Commands.shape(spec, model, null);
        if (!emit.equals("jar") && !emit.equals("asm")) throw new CommandLine.ParameterException(spec.commandLine(), "--emit is jar or asm");
        if (policy != null && files.size() > 1) throw new CommandLine.ParameterException(spec.commandLine(), "--policy names one policy: give one FILE");
        if (slack < 0) throw new CommandLine.ParameterException(spec.commandLine(), "--slack must be 0 or more");
        Commands.range(spec, "--context", context, 1, dev.kvpc.runtime.load.PolicyManifest.MAX_CONTEXT);
        boolean toDir = files.size() > 1 || (output != null && Files.isDirectory(output));
        if (files.size() > 1 && output != null && Files.exists(output) && !Files.isDirectory(output)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "-o " + output + ": with several files, -o names a directory");
        }
        Backend jvm = ServiceLoader.load(Backend.class).stream().map(ServiceLoader.Provider::get)
                .filter(b -> b.name().equals("jvm")).findFirst().orElseThrow(() -> new IllegalStateException("no JVM backend on the class path"));
        int failed = 0;
        for (int i = 0; i < files.size(); i++) {
            Path file = files.get(i);
            long t0 = System.nanoTime();
            Map<String, Object> values = new LinkedHashMap<>();
            params.forEach((k, v) -> values.put(k, IrCommand.parseValue(spec, v)));
            Frontend.Result r = Commands.check(file, shape, policy, values, err);
            if (r == null) {
                failed++;
                continue;
            }
            if (policy == null && Compilation.defaultRoot(r.program()) == null) {
                // attention variants only: they are compiled into the jars of the configs that use them. Among other
                // files (a folder of policies) that is no failure; asked for alone, there is nothing to do
                if (files.size() == 1) {
                    err.println("kvpc compile: " + file + " declares no policy or config, only attention variants: nothing to compile"
                            + " (a variant is compiled into the jar of a config that uses it)");
                    err.flush();
                    return Main.INVALID;
                }
                err.println("kvpc: " + file + ": no policy or config to compile (nothing written)");
                continue;
            }
            String root = Commands.root(r, file, policy, err);
            if (root == null) {
                failed++;
                continue;
            }
            if (files.size() > 1 && params.isEmpty() && Commands.missingParams(r, root, params.keySet(), new PrintWriter(PrintWriter.nullWriter()))) {
                err.println("kvpc: " + file + ": skipped: " + root + " has parameters without defaults (compile it alone with --param)");
                failed++;
                continue;
            }
            if (Commands.missingParams(r, root, params.keySet(), err)) return Main.USAGE;
            Specialized s = Compilation.optimise(r.program(), root, values, new Pipeline.Options(slack, true), (pass, x) -> { });
            String source = file.getFileName().toString();
            if (emit.equals("asm")) {
                if (files.size() > 1) out.println("// ==== " + file);
                out.print(jvm.listing(s, source));
                continue;
            }
            byte[] jar;
            try {
                jar = jvm.compileJar(s, source, manifest(file, s, shape));
            } catch (IllegalArgumentException | UnsupportedOperationException e) {
                err.println("kvpc: " + file + ": cannot compile " + root + ": " + e.getMessage());
                failed++;
                continue;
            }
            Path target = toDir ? (output == null ? Path.of(root + ".jar") : output.resolve(root + ".jar"))
                    : output == null ? Path.of(root + ".jar") : output;
            try {
                Commands.writeFile(target, jar);
            } catch (IOException e) {
                err.println("kvpc: cannot write " + target + ": " + e.getMessage());
                return Main.INVALID;
            }
            double ms = (System.nanoTime() - t0) / 1e6;
            out.printf("[%d/%d] %s -> %s (%d lane classes, %,d bytes, %.0f ms)%n", i + 1, files.size(), root, target, s.classes().size(), jar.length, ms);
            out.flush();
        }
        out.flush();
        if (failed > 0 && emit.equals("jar")) err.println("kvpc: " + failed + " of " + files.size() + " files not compiled");
        return failed > 0 ? Main.INVALID : Main.OK;
    }

    /** The manifest keys: name, source hash, compiler version, exact shape, evidence, predicted bytes per lane. */
    private Map<String, String> manifest(Path file, Specialized s, ModelShape shape) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("kvpc.format", "1");
        m.put("policy.name", s.root());
        m.put("policy.source-sha256", sha256(file));
        m.put("compiler.version", dev.kvpc.runtime.load.KvpcVersion.current());
        m.put("shape.layers", Integer.toString(shape.layers()));
        m.put("shape.heads", Integer.toString(shape.heads()));
        m.put("shape.kv-heads", Integer.toString(shape.kvHeads()));
        m.put("shape.head-dim", Integer.toString(shape.headDim()));
        m.put("evidence", String.join(",", JarFacts.evidence(s)));
        JarFacts.memoryPerLane(s, context, dtype).forEach((category, bytes) -> m.put("memory." + category, Long.toString(bytes)));
        m.put("prediction.context", Long.toString(context));
        m.put("prediction.dtype", dtype);
        return m;
    }

    private static String sha256(Path file) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
        } catch (IOException | NoSuchAlgorithmException e) {
            throw new IllegalStateException("cannot hash " + file + ": " + e.getMessage(), e);
        }
    }
}
