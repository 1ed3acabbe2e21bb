package dev.kvpc.backend.jvm;

import dev.kvpc.backend.interp.Interpreter;
import dev.kvpc.backend.interp.InterpreterException;
import dev.kvpc.backend.interp.Result;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.spi.Backend;
import dev.kvpc.runtime.exec.NativeRunner;
import dev.kvpc.runtime.policy.CompiledLaneClass;
import dev.kvpc.runtime.trace.Trace;
import dev.kvpc.runtime.trace.TraceShape;
import dev.kvpc.runtime.trace.TraceSpec;
import org.objectweb.asm.ClassReader;
import org.objectweb.asm.util.Textifier;
import org.objectweb.asm.util.TraceClassVisitor;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import java.util.Map;

/**
 * The ASM backend as a {@link Backend}: policies compiled to classes ({@link PolicyCompiler}), run on the runtime's
 * lanes ({@link NativeRunner}), written to jars ({@link PolicyJarWriter}); {@code kvpc trace} runs the compiled
 * kernels in the reference event machinery so that its per-step report is the interpreter's.
 */
public final class JvmBackend implements Backend {
    @Override
    public String name() {
        return "jvm";
    }

    @Override
    public <R> R runner(Specialized program, Class<R> api) {
        if (!api.isAssignableFrom(NativeRunner.class)) return null;
        List<CompiledLaneClass> classes = JvmPolicies.compile(program, program.root() + ".kvp").define();
        return api.cast(runner(program, classes));
    }

    /** The runner of compiled lane classes, on the runtime's own lanes ({@link NativeRunner}); the variant compiled here. */
    public static dev.kvpc.runtime.PolicyRunner runner(Specialized program, List<CompiledLaneClass> classes) {
        return new NativeRunner(program, classes, variant(program));
    }

    /** The program's attention variant compiled and defined in-process, or null for standard attention. */
    public static dev.kvpc.runtime.AttentionVariant variant(Specialized program) {
        return PolicyJarWriter.hasVariant(program) ? VariantCompiler.compile(program.variant(), program.shape()) : null;
    }

    @Override
    public void trace(Specialized program, String traceSpec, int lanes, PrintWriter out) {
        var s = program.shape();
        Trace t = TraceSpec.open(traceSpec, new TraceShape(s.layers(), s.heads(), s.kvHeads(), s.headDim()));
        List<CompiledLaneClass> classes = JvmPolicies.compile(program, program.root() + ".kvp").define();
        Result r;
        try {
            r = Interpreter.runCompiled(program, t, classes::get);
        } catch (InterpreterException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
        r.report(t, lanes, out);
    }

    @Override
    public byte[] compileJar(Specialized program, String source, Map<String, String> manifest) {
        return PolicyJarWriter.jar(program, source, manifest);
    }

    @Override
    public String listing(Specialized program, String source) {
        StringWriter w = new StringWriter();
        PrintWriter pw = new PrintWriter(w);
        for (var e : PolicyJarWriter.classes(JvmPolicies.compile(program, source)).entrySet()) {
            pw.println("// class " + e.getKey());
            new ClassReader(e.getValue()).accept(new TraceClassVisitor(null, new Textifier(), pw), 0);
            pw.println();
        }
        pw.flush();
        return w.toString();
    }
}
