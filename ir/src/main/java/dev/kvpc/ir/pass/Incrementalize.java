package dev.kvpc.ir.pass;

import dev.kvpc.ir.*;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Pass 5, incrementalisation: a per-page state defined as a reduction over its page's entries (Quest's channel-wise
 * key min and max) is marked {@code derived}: the runtime keeps it up to date as entries are appended to the page
 * (one min/max per new entry) instead of reducing the page again at every read.
 */
public final class Incrementalize {
    private Incrementalize() {}

    public static PolicyIr run(PolicyIr p) {
        List<PolicyIr.State> out = new ArrayList<>();
        for (PolicyIr.State s : p.states()) {
            boolean derived = s.derived() || (s.scope() == PolicyIr.StateScope.PAGE && s.init() != null && reducesPageTokens(s.init()));
            out.add(new PolicyIr.State(s.name(), s.type(), s.scope(), s.pageSize(), s.init(), derived));
        }
        return p.withStates(out);
    }

    private static boolean reducesPageTokens(Computation c) {
        Map<Integer, Instr.Def> defs = new HashMap<>();
        for (Instr i : c.block().instrs()) if (i instanceof Instr.Def d) defs.put(d.id(), d);
        Instr.Def r = defs.get(c.result());
        return r != null && r.op() instanceof Op.Reduce red && red.over().equals(List.of(Axis.TOKEN))
                && red.fn().incremental
                && defs.get(red.x()) instanceof Instr.Def x && x.op() instanceof Op.Signal s && (s.signal() == Signal.K || s.signal() == Signal.V);
    }
}
