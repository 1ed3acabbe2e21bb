package dev.kvpc.backend.interp;

import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.spi.Backend;
import dev.kvpc.runtime.trace.Trace;
import dev.kvpc.runtime.trace.TraceShape;
import dev.kvpc.runtime.trace.TraceSpec;

import java.io.PrintWriter;

/** The reference interpreter as a {@link Backend}. */
public final class InterpBackend implements Backend {
    @Override
    public String name() {
        return "interp";
    }

    @Override
    public <R> R runner(Specialized program, Class<R> api) {
        return api.isAssignableFrom(InterpRunner.class) ? api.cast(new InterpRunner(program)) : null;
    }

    @Override
    public void trace(Specialized program, String traceSpec, int lanes, PrintWriter out) {
        var s = program.shape();
        Trace t = TraceSpec.open(traceSpec, new TraceShape(s.layers(), s.heads(), s.kvHeads(), s.headDim()));
        Result r;
        try {
            r = Interpreter.run(program, t);
        } catch (InterpreterException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
        r.report(t, lanes, out);
    }
}
