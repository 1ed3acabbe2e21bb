package dev.kvpc.ir;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/** Visiting every instruction of a leaf policy: its computations, standing stores and handlers, nested ifs included. */
public final class IrWalk {
    private IrWalk() {}

    /** The computations of a leaf policy: page sizes, state inits, observation counts, handler limits. */
    public static List<Computation> computations(PolicyIr p) {
        List<Computation> cs = new ArrayList<>();
        for (PolicyIr.State s : p.states()) {
            if (s.pageSize() != null) cs.add(s.pageSize());
            if (s.init() != null) cs.add(s.init());
        }
        for (PolicyIr.Observe o : p.observes()) if (o.count() != null) cs.add(o.count());
        for (PolicyIr.Handler h : p.handlers()) if (h.limit() != null) cs.add(h.limit());
        return cs;
    }

    public static void forEachInstr(PolicyIr p, Consumer<Instr> f) {
        for (Computation c : computations(p)) forEachInstr(c.block(), f);
        forEachInstr(p.standing(), f);
        for (PolicyIr.Handler h : p.handlers()) forEachInstr(h.body(), f);
    }

    public static void forEachInstr(Block b, Consumer<Instr> f) {
        for (Instr i : b.instrs()) {
            f.accept(i);
            if (i instanceof Instr.If x) {
                forEachInstr(x.then(), f);
                forEachInstr(x.otherwise(), f);
            }
        }
    }
}
