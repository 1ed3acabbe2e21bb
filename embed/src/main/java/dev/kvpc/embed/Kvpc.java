package dev.kvpc.embed;

import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Deployment;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.api.JarFacts;
import dev.kvpc.compiler.diag.Diagnostic;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.ir.spi.Backend;
import dev.kvpc.runtime.KvRuntime;
import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.pool.PagePool;

import java.nio.file.Path;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.stream.Collectors;

/**
 * kvpc inside a host: compile a {@code .kvp} file for the host's model, in-process (no jar), and get the runtime's
 * policy object, or a runtime ready to make sequences. Backends are found through {@link ServiceLoader}; the
 * reference interpreter is used until a faster one (the JVM backend) is on the class path.
 */
public final class Kvpc {
    private Kvpc() {}

    /** A .kvp file that does not check; the message holds every diagnostic, rendered as `kvpc check` prints it. */
    public static final class CompileException extends Exception {
        public CompileException(String message) {
            super(message);
        }
    }

    /**
     * Compiles {@code file} for {@code model}.
     *
     * @param policy the policy or config to compile (null: the last one in the file)
     * @param params parameter values replacing defaults (may be empty)
     */
    public static PolicyRunner compile(Path file, ModelSpec model, String policy, Map<String, ?> params) throws CompileException {
        return compile(file, model, policy, params, null);
    }

    /**
     * As {@link #compile(Path, ModelSpec, String, Map)}, under the attention variant {@code attention} (a name with
     * optional arguments, {@code softcap(cap = 30.0)}, declared in {@code file} or the standard {@code variants.kvp};
     * null: the policy's own). {@code file} null means the full cache of the standard library.
     */
    public static PolicyRunner compile(Path file, ModelSpec model, String policy, Map<String, ?> params, String attention) throws CompileException {
        return runner(specialise(file, model, policy, params, attention));
    }

    /** The specialised program {@link #compile(Path, ModelSpec, String, Map, String)} runs. */
    public static Specialized specialise(Path file, ModelSpec model, String policy, Map<String, ?> values, String attention) throws CompileException {
        Map<String, Object> params = values(values);
        ModelShape shape = new ModelShape("host", model.layers(), model.heads(), model.kvHeads(), model.headDim());
        if (file == null) {
            if (attention == null) throw new IllegalArgumentException("the full cache under the standard attention needs no compiling");
            return deploy(null, shape, "full", Map.of(), attention);
        }
        // checked with the values given, not the defaults they replace
        Frontend.Result r = Frontend.check(file, shape, policy, params);
        if (!r.ok()) {
            throw new CompileException(rendered(r));
        }
        String root = policy != null ? policy : Compilation.defaultRoot(r.program());
        if (root == null || r.program().decls().get(root) == null) {
            throw new CompileException(file + ": " + (root == null ? "declares no policy or config" : "has no policy or config named '" + root + "'"));
        }
        var decl = r.program().decls().get(root);
        java.util.Set<String> known = new java.util.TreeSet<>();
        if (decl instanceof dev.kvpc.compiler.ast.Decl.Policy p) for (var prm : p.paramList()) known.add(prm.name().text());
        if (decl instanceof dev.kvpc.compiler.ast.Decl.Config c) for (var prm : c.paramList()) known.add(prm.name().text());
        for (String given : params.keySet()) {
            if (!known.contains(given)) {
                throw new CompileException(file + ": " + root + " has no parameter '" + given + "'"
                        + (known.isEmpty() ? " (it takes none)" : " (its parameters: " + String.join(", ", known) + ")"));
            }
        }
        if (decl instanceof dev.kvpc.compiler.ast.Decl.Policy p) {
            for (var prm : p.paramList()) {
                if (prm.defaultValue() == null && !params.containsKey(prm.name().text())) {
                    throw new CompileException(file + ": policy " + root + " needs a value for parameter '" + prm.name().text() + "'");
                }
            }
        }
        if (attention != null) {
            if (decl instanceof dev.kvpc.compiler.ast.Decl.Config) {
                throw new CompileException(file + ": " + root + " is a config, which names its own attention variant; --attention applies to a policy");
            }
            return deploy(file, shape, root, params, attention);
        }
        return Compilation.optimise(r.program(), root, params, Pipeline.Options.DEFAULT, (pass, x) -> { });
    }

    /**
     * Parameter values as the compiler holds them: a whole number of any Java type ({@code Integer}, {@code Short},
     * {@code BigInteger} in range, ...) as a {@code Long}, any other number as a {@code Double}; booleans and strings
     * (table files) as they are.
     *
     * @throws IllegalArgumentException for a value of another type, or a whole number past a long
     */
    static Map<String, Object> values(Map<String, ?> given) {
        Map<String, Object> out = new java.util.LinkedHashMap<>();
        given.forEach((name, v) -> out.put(name, switch (v) {
            case Long l -> l;
            case Integer i -> (long) i;
            case Short x -> (long) x;
            case Byte x -> (long) x;
            case java.math.BigInteger b -> {
                if (b.bitLength() > 63) throw new IllegalArgumentException("parameter '" + name + "' is " + b + ", past the range of a whole number here");
                yield b.longValue();
            }
            case Double d -> d;
            case Float f -> (double) f;
            case java.math.BigDecimal d -> d.doubleValue();
            case Boolean b -> b;
            case String str -> str;
            case null -> throw new IllegalArgumentException("parameter '" + name + "' is null");
            default -> throw new IllegalArgumentException("parameter '" + name + "' is a " + v.getClass().getName()
                    + "; a parameter value is a number, a boolean or a string (a table file)");
        }));
        return out;
    }

    /** {@code policy} of {@code file} (null: the standard library's) under {@code attention}, as a generated config. */
    private static Specialized deploy(Path file, ModelShape shape, String policy, Map<String, Object> params, String attention) throws CompileException {
        String text = Deployment.text(file == null ? policy + ".kvp" : file.toAbsolutePath().toString(), policy, params, attention);
        Frontend.Result r = Frontend.checkText(Deployment.NAME, text, file == null ? null : file.toAbsolutePath().getParent(), shape);
        if (!r.ok()) {
            throw new CompileException(rendered(r));
        }
        return Compilation.optimise(r.program(), Deployment.CONFIG, Map.of(), Pipeline.Options.DEFAULT, (pass, x) -> { });
    }

    /** Every diagnostic of {@code r}, rendered as {@code kvpc check} prints them. */
    private static String rendered(Frontend.Result r) {
        return r.diagnostics().all().stream().map(d -> r.renderer().render(d)).collect(Collectors.joining());
    }

    /** The runner of a specialised program: the JVM backend's, or the interpreter's where it is the only one. */
    public static PolicyRunner runner(Specialized s) {
        for (String preferred : new String[] {"jvm", "interp"}) {
            for (Backend b : ServiceLoader.load(Backend.class)) {
                if (!b.name().equals(preferred)) continue;
                PolicyRunner runner = b.runner(s, PolicyRunner.class);
                if (runner != null) return runner;
            }
        }
        throw new IllegalStateException("no kvpc backend that runs policies is on the class path");
    }

    /** A runtime for {@code model} running the policy of {@code file} (its last policy, with its defaults). */
    public static KvRuntime runtime(Path file, ModelSpec model, PagePool pool) throws CompileException {
        return new KvRuntime(model, compile(file, model, null, Map.of()), pool);
    }

    /** Diagnostics of a file for a model, without compiling (for tools). */
    public static java.util.List<Diagnostic> check(Path file, ModelSpec model) {
        return Frontend.check(file, new ModelShape("host", model.layers(), model.heads(), model.kvHeads(), model.headDim())).diagnostics().all();
    }

    /**
     * Loads a compiled policy jar ({@code kvpc compile}) for {@code model}: the manifest's shape must fit, every
     * class passes the runtime's bytecode verifier, and the entry class must be a compiled policy.
     *
     * @throws dev.kvpc.runtime.load.PolicyLoadException with a message for the user when any of that fails
     */
    public static PolicyRunner load(Path jar, ModelSpec model) throws dev.kvpc.runtime.load.PolicyLoadException {
        Loaded l = entry(jar, model);
        Specialized program = program(jar, l.policy());
        fits(jar, program, model);
        agrees(jar, l.manifest(), program);
        dev.kvpc.runtime.policy.CompiledPolicy policy = l.policy();
        try {
            return dev.kvpc.runtime.exec.NativeRunner.of(policy, program);
        } catch (dev.kvpc.runtime.load.PolicyFault e) {
            throw e;
        } catch (RuntimeException e) {
            throw new dev.kvpc.runtime.load.PolicyLoadException(jar + ": its program cannot be read: " + e.getMessage(), e);
        }
    }

    /**
     * The program a jar carries is specialised for one shape, whatever its manifest's constraints allow ({@code any}):
     * a model of another shape is refused here, before its lanes are indexed by the program's.
     */
    private static void fits(Path jar, Specialized program, ModelSpec model) throws dev.kvpc.runtime.load.PolicyLoadException {
        var s = program.shape();
        if (s.layers() != model.layers() || s.heads() != model.heads() || s.kvHeads() != model.kvHeads() || s.headDim() != model.headDim()) {
            throw new dev.kvpc.runtime.load.PolicyLoadException(jar + ": its program is specialised for layers=" + s.layers() + ", heads=" + s.heads()
                    + ", kv-heads=" + s.kvHeads() + ", head-dim=" + s.headDim() + "; this model has layers=" + model.layers() + ", heads="
                    + model.heads() + ", kv-heads=" + model.kvHeads() + ", head-dim=" + model.headDim() + " (recompile it with --model)");
        }
    }

    /**
     * The manifest says what the program reads and the memory it takes: both are derived again from the program the jar
     * carries ({@link JarFacts}), and a manifest that says otherwise was not written by kvpc for this program.
     */
    private static void agrees(Path jar, dev.kvpc.runtime.load.PolicyManifest m, Specialized program) throws dev.kvpc.runtime.load.PolicyLoadException {
        var evidence = JarFacts.evidence(program);
        if (!evidence.equals(m.evidence())) {
            throw new dev.kvpc.runtime.load.PolicyLoadException(jar + ": its manifest says the policy reads " + listed(m.evidence()) + ", but its program reads "
                    + listed(evidence) + ": the manifest was not written for this program");
        }
        if (m.prediction() == null) return;
        java.util.Map<String, Long> memory;
        try {
            memory = JarFacts.memoryPerLane(program, m.prediction().context(), m.prediction().dtype());
        } catch (IllegalArgumentException | ArithmeticException e) {
            throw new dev.kvpc.runtime.load.PolicyLoadException(jar + ": its manifest's memory prediction cannot be made again: " + e.getMessage(), e);
        }
        if (!new java.util.TreeMap<>(memory).equals(m.predictedBytesPerLane())) {
            throw new dev.kvpc.runtime.load.PolicyLoadException(jar + ": its manifest predicts " + m.predictedBytesPerLane() + " bytes per lane at context "
                    + m.prediction().context() + " (" + m.prediction().dtype() + "), but its program takes " + new java.util.TreeMap<>(memory)
                    + ": the manifest was not written for this program");
        }
    }

    private static String listed(java.util.Set<String> evidence) {
        return evidence.isEmpty() ? "nothing" : String.join(", ", evidence);
    }

    /** The specialised program a policy jar carries (what {@code kvpc memory} predicts from), verified as {@link #load} does. */
    public static Specialized program(Path jar, ModelSpec model) throws dev.kvpc.runtime.load.PolicyLoadException {
        Loaded l = entry(jar, model);
        Specialized p = program(jar, l.policy());
        fits(jar, p, model);
        agrees(jar, l.manifest(), p);
        return p;
    }

    /** A jar's entry, guarded, and its manifest. */
    private record Loaded(dev.kvpc.runtime.policy.CompiledPolicy policy, dev.kvpc.runtime.load.PolicyManifest manifest) {}

    private static Specialized program(Path jar, dev.kvpc.runtime.policy.CompiledPolicy policy) throws dev.kvpc.runtime.load.PolicyLoadException {
        try {
            return Specialized.parse(policy.program());
        } catch (dev.kvpc.runtime.load.PolicyFault e) {
            throw e;
        } catch (RuntimeException e) {
            throw new dev.kvpc.runtime.load.PolicyLoadException(jar + ": its program cannot be read: " + e.getMessage(), e);
        }
    }

    private static Loaded entry(Path jar, ModelSpec model) throws dev.kvpc.runtime.load.PolicyLoadException {
        var loaded = dev.kvpc.runtime.load.PolicyJarLoader.load(jar, new dev.kvpc.runtime.load.ModelShapeSpec(model.layers(), model.heads(), model.kvHeads(), model.headDim()));
        Class<? extends dev.kvpc.runtime.policy.CompiledPolicy> entry = loaded.entryClassAs(dev.kvpc.runtime.policy.CompiledPolicy.class);
        try {
            // every call into the jar's code is guarded: what it throws is the policy's fault (PolicyFault)
            return new Loaded(new dev.kvpc.runtime.load.GuardedPolicy(loaded.manifest().policyName(), entry.getDeclaredConstructor().newInstance()), loaded.manifest());
        } catch (ReflectiveOperationException | LinkageError | RuntimeException | StackOverflowError | OutOfMemoryError e) {
            throw new dev.kvpc.runtime.load.PolicyLoadException(jar + ": entry class " + entry.getName() + " cannot be instantiated: " + e, e);
        }
    }
}
