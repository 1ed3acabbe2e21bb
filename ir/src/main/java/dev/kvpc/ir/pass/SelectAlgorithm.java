package dev.kvpc.ir.pass;

import dev.kvpc.ir.*;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Pass 7, choice of the selection algorithm for each rank, by the sizes involved:
 * <ul>
 *   <li>{@code min_track}: a rank in the final keep of an {@code on overflow} handler without slack drops exactly
 *       one entry per decode step, so tracking the minimum of the candidates is enough;</li>
 *   <li>{@code heap}: a constant count of at most 64, or a rank that drops at most 64 entries (an overflow handler
 *       with slack below 64): a bounded heap of the smaller side;</li>
 *   <li>{@code quickselect}: everything else (prefill-time selection over whole prompts).</li>
 * </ul>
 * The choice never changes which entries are selected (ties break the same way in every algorithm).
 */
public final class SelectAlgorithm {
    static final int SMALL = 64;

    private SelectAlgorithm() {}

    public static PolicyIr run(PolicyIr p) {
        Map<Integer, Instr.Def> defs = new HashMap<>();
        DeadCode.forEachInstr(p, i -> {
            if (i instanceof Instr.Def d) defs.put(d.id(), d);
        });
        List<PolicyIr.Handler> hs = new ArrayList<>();
        for (PolicyIr.Handler h : p.handlers()) {
            boolean overflow = h.events().contains(PolicyIr.Event.OVERFLOW) && h.events().size() == 1;
            hs.add(h.withBody(block(h.body(), defs, overflow, h.slack())));
        }
        return p.withHandlers(hs);
    }

    private static Block block(Block b, Map<Integer, Instr.Def> defs, boolean overflow, int slack) {
        List<Instr> out = new ArrayList<>();
        for (Instr i : b.instrs()) {
            if (i instanceof Instr.Def d && d.op() instanceof Op.Rank r && r.algorithm() == Op.Algorithm.AUTO) {
                out.add(new Instr.Def(d.id(), d.type(), new Op.Rank(r.order(), r.score(), r.count(), r.floor(), choose(r, defs, overflow, slack))));
            } else if (i instanceof Instr.If f) {
                out.add(new Instr.If(f.cond(), block(f.then(), defs, overflow, slack), block(f.otherwise(), defs, overflow, slack)));
            } else {
                out.add(i);
            }
        }
        return new Block(out);
    }

    private static Op.Algorithm choose(Op.Rank r, Map<Integer, Instr.Def> defs, boolean overflow, int slack) {
        if (r.floor() >= 0) return Op.Algorithm.QUICKSELECT;
        if (overflow && slack == 0) return Op.Algorithm.MIN_TRACK;
        if (overflow && slack < SMALL) return Op.Algorithm.HEAP;
        if (defs.get(r.count()) instanceof Instr.Def c && c.op() instanceof Op.Const k && k.value() instanceof Long n && n <= SMALL) {
            return Op.Algorithm.HEAP;
        }
        return Op.Algorithm.QUICKSELECT;
    }
}
