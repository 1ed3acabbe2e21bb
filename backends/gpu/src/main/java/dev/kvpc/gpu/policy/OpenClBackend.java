package dev.kvpc.gpu.policy;

import dev.kvpc.backend.interp.Interpreter;
import dev.kvpc.backend.interp.InterpreterException;
import dev.kvpc.backend.interp.Result;
import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.gpu.cl.ClDevice;
import dev.kvpc.gpu.cl.OpenCl;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.spi.Backend;
import dev.kvpc.runtime.exec.NativeRunner;
import dev.kvpc.runtime.trace.Trace;
import dev.kvpc.runtime.trace.TraceShape;
import dev.kvpc.runtime.trace.TraceSpec;

import java.io.PrintWriter;
import java.util.List;

/**
 * The OpenCL backend as a {@link Backend}: a policy's loop nests as OpenCL kernels ({@link ClLaneClass}) on the
 * device {@link #withDevice} names (default: the first GPU, else the first device). {@code kvpc trace} runs them
 * in the reference event machinery, so its report is the interpreter's; {@link #runner} runs them on the runtime's
 * lanes. Its OpenCL context lives as long as the process (a runner may outlive the call that made it).
 */
public final class OpenClBackend implements Backend {
    private final String device;

    public OpenClBackend() {
        this(null);
    }

    private OpenClBackend(String device) {
        this.device = device;
    }

    @Override
    public String name() {
        return "opencl";
    }

    @Override
    public Backend withDevice(String spec) {
        return new OpenClBackend(spec);
    }

    private ClContext context() {
        ClDevice d = OpenCl.get().select(device);
        return new ClContext(d);
    }

    @Override
    public void trace(Specialized program, String traceSpec, int lanes, PrintWriter out) {
        var s = program.shape();
        Trace t = TraceSpec.open(traceSpec, new TraceShape(s.layers(), s.heads(), s.kvHeads(), s.headDim()));
        try (ClContext cl = context()) {
            List<ClLaneClass> classes = ClPolicies.compile(program, cl);
            Result r;
            try {
                r = Interpreter.runCompiled(program, t, i -> classes.get(i));
            } catch (InterpreterException e) {
                throw new IllegalArgumentException(e.getMessage(), e);
            }
            r.report(t, lanes, out);
        }
    }

    @Override
    public <R> R runner(Specialized program, Class<R> api) {
        if (!api.isAssignableFrom(NativeRunner.class)) return null;
        return api.cast(ClPolicies.runner(program, context()).runner());
    }
}
