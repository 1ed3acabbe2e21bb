package dev.kvpc.ir.pass;

import dev.kvpc.ir.*;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Pass 3, dead-state and dead-signal elimination: states nobody reads are dropped with their writes, then every
 * definition nothing needs. A signal (an attention row, an observed query window) that no live value reads is not
 * materialised by the runtime.
 */
public final class DeadCode {
    private DeadCode() {}

    public static PolicyIr run(PolicyIr p) {
        Set<String> read = new HashSet<>();
        forEachInstr(p, i -> {
            if (i instanceof Instr.Def d && d.op() instanceof Op.StateRead s) read.add(s.name());
            if (i instanceof Instr.Def d && d.op() instanceof Op.ModelStat m) read.add(m.state());
        });
        // a model state is shared with the policy's other lane classes: one that only writes it feeds another's reads
        p.states().forEach(s -> { if (s.scope() == PolicyIr.StateScope.MODEL) read.add(s.name()); });
        List<PolicyIr.State> states = p.states().stream().filter(s -> read.contains(s.name())).toList();
        Set<String> dead = new HashSet<>();
        p.states().forEach(s -> { if (!read.contains(s.name())) dead.add(s.name()); });
        PolicyIr q = Rewrite.blocks(p.withStates(states), b -> dropWrites(b, dead));

        // liveness: effects and computation results are roots; a live definition makes its operands live
        Map<Integer, Instr.Def> defs = new HashMap<>();
        List<Integer> roots = new ArrayList<>();
        forEachInstr(q, i -> {
            if (i instanceof Instr.Def d) defs.put(d.id(), d);
            else dev.kvpc.ir.IrWalk.uses(i, roots::add);
        });
        for (Computation c : computations(q)) roots.add(c.result());
        Set<Integer> live = new HashSet<>();
        ArrayList<Integer> work = new ArrayList<>(roots);
        while (!work.isEmpty()) {
            int id = work.removeLast();
            if (!live.add(id)) continue;
            Instr.Def d = defs.get(id);
            if (d != null) work.addAll(d.op().operands());
        }
        return Rewrite.blocks(q, b -> keepLive(b, live));
    }

    private static Block dropWrites(Block b, Set<String> dead) {
        List<Instr> out = new ArrayList<>();
        for (Instr i : b.instrs()) {
            switch (i) {
                case Instr.StateWrite w when dead.contains(w.state()) -> { }
                case Instr.If f -> out.add(new Instr.If(f.cond(), dropWrites(f.then(), dead), dropWrites(f.otherwise(), dead)));
                default -> out.add(i);
            }
        }
        return new Block(out);
    }

    private static Block keepLive(Block b, Set<Integer> live) {
        List<Instr> out = new ArrayList<>();
        for (Instr i : b.instrs()) {
            switch (i) {
                case Instr.Def d -> { if (live.contains(d.id())) out.add(d); }
                case Instr.If f -> {
                    Block t = keepLive(f.then(), live), e = keepLive(f.otherwise(), live);
                    if (!t.instrs().isEmpty() || !e.instrs().isEmpty()) out.add(new Instr.If(f.cond(), t, e));
                }
                default -> out.add(i);
            }
        }
        return new Block(out);
    }

    static List<Computation> computations(PolicyIr p) {
        return IrWalk.computations(p);
    }

    static void forEachInstr(PolicyIr p, java.util.function.Consumer<Instr> f) {
        IrWalk.forEachInstr(p, f);
    }
}
