package dev.kvpc.ir.pass;

import dev.kvpc.ir.*;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Pass 6, amortised eviction: an {@code on overflow(B)} handler keeps {@code B - slack} entries instead of
 * {@code B}, so the next {@code slack} appends need no selection and it runs once per {@code slack + 1} steps.
 * The slack shrinks the ranked term of the final keep (or its recent window when there is none); the handler
 * records it. With slack 0 (the default) the pass changes nothing. The lane never exceeds B.
 */
public final class AmortizeEviction {
    private AmortizeEviction() {}

    public static PolicyIr run(PolicyIr p, int slack) {
        if (slack <= 0) return p;
        int[] next = {maxId(p) + 1};
        Map<Integer, Instr.Def> defs = new HashMap<>();
        DeadCode.forEachInstr(p, i -> {
            if (i instanceof Instr.Def d) defs.put(d.id(), d);
        });
        List<PolicyIr.Handler> hs = new ArrayList<>();
        for (PolicyIr.Handler h : p.handlers()) {
            if (!h.events().contains(PolicyIr.Event.OVERFLOW)) {
                hs.add(h);
                continue;
            }
            List<Instr> body = new ArrayList<>(h.body().instrs());
            int keepAt = -1;
            for (int i = 0; i < body.size(); i++) if (body.get(i) instanceof Instr.Keep) keepAt = i;
            if (keepAt < 0) {
                hs.add(h);
                continue;
            }
            List<Instr> added = new ArrayList<>();
            int newSet = shrink(((Instr.Keep) body.get(keepAt)).set(), defs, slack, next, added, true);
            if (newSet < 0) newSet = shrink(((Instr.Keep) body.get(keepAt)).set(), defs, slack, next, added, false);
            if (newSet < 0) {
                hs.add(h);
                continue;
            }
            body.addAll(keepAt, added);
            body.set(keepAt + added.size(), new Instr.Keep(newSet));
            hs.add(new PolicyIr.Handler(h.events(), h.limit(), slack, new Block(body), h.origin()));
        }
        return p.withHandlers(hs);
    }

    /**
     * Rebuilds the set {@code id} with its ranked term (or, if {@code ranked} is false, its last(n) term) counting
     * {@code slack} fewer; returns the new set's id, or -1 if it has no such term.
     */
    private static int shrink(int id, Map<Integer, Instr.Def> defs, int slack, int[] next, List<Instr> out, boolean ranked) {
        Instr.Def d = defs.get(id);
        if (d == null) return -1;
        switch (d.op()) {
            case Op.Rank r when ranked -> {
                int s = def(out, next, Ty.INT, new Op.Const((long) slack));
                int c = def(out, next, Ty.INT, new Op.Map2(Op.Fn2.SUB, r.count(), s));
                int z = def(out, next, Ty.INT, new Op.Const(0L));
                int cc = def(out, next, Ty.INT, new Op.Map2(Op.Fn2.MAX, c, z));
                return def(out, next, d.type(), new Op.Rank(r.order(), r.score(), cc, r.floor(), r.algorithm()));
            }
            case Op.Range r when !ranked && r.end() == Op.End.LAST -> {
                int s = def(out, next, Ty.INT, new Op.Const((long) slack));
                int c = def(out, next, Ty.INT, new Op.Map2(Op.Fn2.SUB, r.count(), s));
                int one = def(out, next, Ty.INT, new Op.Const(1L));
                int cc = def(out, next, Ty.INT, new Op.Map2(Op.Fn2.MAX, c, one));
                return def(out, next, d.type(), new Op.Range(r.end(), cc));
            }
            case Op.SetOp u when u.fn() == Op.SetFn.UNION -> {
                int a = shrink(u.a(), defs, slack, next, out, ranked);
                if (a >= 0) return def(out, next, d.type(), new Op.SetOp(Op.SetFn.UNION, a, u.b()));
                int b = shrink(u.b(), defs, slack, next, out, ranked);
                if (b >= 0) return def(out, next, d.type(), new Op.SetOp(Op.SetFn.UNION, u.a(), b));
                return -1;
            }
            default -> {
                return -1;
            }
        }
    }

    private static int def(List<Instr> out, int[] next, Ty type, Op op) {
        int id = next[0]++;
        out.add(new Instr.Def(id, type, op));
        return id;
    }

    static int maxId(PolicyIr p) {
        int[] max = {-1};
        DeadCode.forEachInstr(p, i -> {
            if (i instanceof Instr.Def d) max[0] = Math.max(max[0], d.id());
        });
        return max[0];
    }
}
