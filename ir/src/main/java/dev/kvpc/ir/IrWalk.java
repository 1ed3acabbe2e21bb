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

    /** Does the block (or a nested one) restrict attention? Such decode handlers run before attention. */
    public static boolean attends(Block b) {
        for (Instr i : b.instrs()) {
            if (i instanceof Instr.Attend) return true;
            if (i instanceof Instr.If x && (attends(x.then()) || attends(x.otherwise()))) return true;
        }
        return false;
    }

    /** Does any handler read attn, logits, or a statistic fused from them? */
    public static boolean readsAttention(PolicyIr p) {
        boolean[] found = {false};
        forEachInstr(p, i -> found[0] |= readsAttention(i));
        return found[0];
    }

    /** Does the block (or a nested one) read attn, logits, or a statistic fused from them? */
    public static boolean readsAttention(Block b) {
        boolean[] found = {false};
        forEachInstr(b, i -> found[0] |= readsAttention(i));
        return found[0];
    }

    private static boolean readsAttention(Instr i) {
        return i instanceof Instr.Def d && (d.op() instanceof Op.KernelStat
                || d.op() instanceof Op.Signal sg && sg.signal().attention());
    }

    /** A computation's value when it is a constant (after specialisation), as a double; null when it is not. */
    public static Double constant(Computation c) {
        for (Instr i : c.block().instrs()) {
            if (i instanceof Instr.Def d && d.id() == c.result() && d.op() instanceof Op.Const k) {
                return switch (k.value()) {
                    case Long l -> (double) l;
                    case Double x -> x;
                    case Boolean b -> b ? 1.0 : 0.0;
                    default -> null;
                };
            }
        }
        return null;
    }

    /** Every value id an instruction reads (not defines), including nested blocks. */
    public static void uses(Instr i, java.util.function.IntConsumer use) {
        switch (i) {
            case Instr.Def d -> d.op().operands().forEach(use::accept);
            case Instr.Keep k -> use.accept(k.set());
            case Instr.Evict e -> use.accept(e.set());
            case Instr.Attend a -> use.accept(a.set());
            case Instr.Merge x -> {
                use.accept(x.source());
                use.accept(x.dest());
                if (x.weight() >= 0) use.accept(x.weight());
            }
            case Instr.Store s -> {
                if (s.bits() >= 0) use.accept(s.bits());
                if (s.group() >= 0) use.accept(s.group());
                if (s.set() >= 0) use.accept(s.set());
            }
            case Instr.StateWrite w -> use.accept(w.value());
            case Instr.If f -> {
                use.accept(f.cond());
                f.then().instrs().forEach(x -> uses(x, use));
                f.otherwise().instrs().forEach(x -> uses(x, use));
            }
        }
    }
}
