package dev.kvpc.backend.interp;

import dev.kvpc.ir.Computation;
import dev.kvpc.ir.Instr;
import dev.kvpc.ir.IrWalk;
import dev.kvpc.ir.PolicyIr;
import dev.kvpc.ir.Ty;
import dev.kvpc.ir.loop.LoopLowering;
import dev.kvpc.runtime.policy.CompiledLaneClass;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A lane class whose blocks are compiled kernels: each block's {@link Interpreter.Code} runs the kernel of the same
 * name against an {@link ExecLaneContext} over the event, and wraps a kernel's result buffer as the value the
 * interpreter expects (a limit, a state's initial value).
 */
final class CompiledCode {
    private CompiledCode() {}

    static Interpreter.ClassCode classCode(PolicyIr p, CompiledLaneClass compiled) {
        if (compiled == null) throw new InterpreterException("no compiled code for lane class " + p.name());
        Map<String, Integer> index = new HashMap<>();
        String[] names = compiled.kernels();
        for (int i = 0; i < names.length; i++) index.put(names[i], i);
        List<Interpreter.HandlerCode> hs = new java.util.ArrayList<>();
        for (int i = 0; i < p.handlers().size(); i++) {
            PolicyIr.Handler h = p.handlers().get(i);
            Interpreter.Code limit = h.limit() == null ? null : kernel(compiled, index, LoopLowering.limitName(i, h), h.limit());
            hs.add(new Interpreter.HandlerCode(h, limit, kernel(compiled, index, LoopLowering.bodyName(i, h), null), IrWalk.attends(h.body())));
        }
        Map<String, Interpreter.Code> inits = new HashMap<>();
        for (PolicyIr.State s : p.states()) {
            // a per-page state's init is evaluated per page by the context (derived state), a per-token one by its kernel
            if (s.init() != null) inits.put(s.name(), kernel(compiled, index, LoopLowering.initName(s), s.init()));
        }
        Interpreter.Code standing = p.standing().instrs().isEmpty() ? ctx -> null : kernel(compiled, index, LoopLowering.STANDING, null);
        return new Interpreter.ClassCode(p, hs, standing, inits, IrWalk.readsAttention(p));
    }

    private static Interpreter.Code kernel(CompiledLaneClass compiled, Map<String, Integer> index, String name, Computation result) {
        Integer k = index.get(name);
        if (k == null) throw new InterpreterException("compiled lane class " + compiled.policy() + " has no kernel " + name);
        Ty type = result == null ? null : resultType(result);
        int kernel = k;
        return ctx -> {
            double[] r = compiled.run(kernel, new ExecLaneContext(ctx));
            if (type == null) return null;
            if (r == null) throw new InterpreterException("kernel " + name + " returned no value");
            return ExecLaneContext.tensor(ctx, r, ((Ty.Tensor) type).axes(), ((Ty.Tensor) type).elem());
        };
    }

    private static Ty resultType(Computation c) {
        for (Instr i : c.block().instrs()) if (i instanceof Instr.Def d && d.id() == c.result()) return d.type();
        throw new InterpreterException("computation result %" + c.result() + " is not defined in its block");
    }
}
