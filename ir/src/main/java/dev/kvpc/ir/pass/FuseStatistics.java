package dev.kvpc.ir.pass;

import dev.kvpc.ir.*;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Pass 4, fusion of statistics into the attention kernel: a sum, mean or max of {@code attn} or {@code logits}
 * over the query axis becomes a {@link Op.KernelStat} the kernel accumulates while it computes attention
 * (H2O's column sums), so the rows themselves need not be materialised (the dead-code pass then drops them).
 */
public final class FuseStatistics {
    private FuseStatistics() {}

    public static PolicyIr run(PolicyIr p) {
        Map<Integer, Instr.Def> defs = new HashMap<>();
        DeadCode.forEachInstr(p, i -> {
            if (i instanceof Instr.Def d) defs.put(d.id(), d);
        });
        return Rewrite.blocks(p, b -> block(b, defs));
    }

    private static Block block(Block b, Map<Integer, Instr.Def> defs) {
        List<Instr> out = new ArrayList<>();
        for (Instr i : b.instrs()) {
            if (i instanceof Instr.Def d && d.op() instanceof Op.Reduce r && r.over().contains(Axis.QUERY) && r.fn().kernelStatistic
                    && defs.get(r.x()) instanceof Instr.Def src && src.op() instanceof Op.Signal s
                    && s.signal().attention()) {
                out.add(new Instr.Def(d.id(), d.type(), new Op.KernelStat(s.signal(), r.fn(), r.over())));
            } else if (i instanceof Instr.If f) {
                out.add(new Instr.If(f.cond(), block(f.then(), defs), block(f.otherwise(), defs)));
            } else {
                out.add(i);
            }
        }
        return new Block(out);
    }
}
