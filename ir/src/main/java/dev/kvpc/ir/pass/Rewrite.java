package dev.kvpc.ir.pass;

import dev.kvpc.ir.*;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntUnaryOperator;

/** Renaming of value ids inside ops and instructions, shared by the passes. */
public final class Rewrite {
    private Rewrite() {}

    public static Op op(Op op, IntUnaryOperator m) {
        return switch (op) {
            case Op.Const c -> c;
            case Op.Param p -> p;
            case Op.Signal s -> s;
            case Op.StateRead s -> s;
            case Op.Table t -> t;
            case Op.Vector v -> v;
            case Op.All a -> a;
            case Op.Compensation c -> c;
            case Op.KernelStat k -> k;
            case Op.ModelStat ms -> ms;
            case Op.Map1 x -> new Op.Map1(x.fn(), m.applyAsInt(x.x()));
            case Op.Map2 x -> new Op.Map2(x.fn(), m.applyAsInt(x.a()), m.applyAsInt(x.b()));
            case Op.Choose x -> new Op.Choose(m.applyAsInt(x.cond()), m.applyAsInt(x.a()), m.applyAsInt(x.b()));
            case Op.Reduce x -> new Op.Reduce(x.fn(), m.applyAsInt(x.x()), x.over());
            case Op.Pool x -> new Op.Pool(x.fn(), m.applyAsInt(x.x()), m.applyAsInt(x.kernel()), x.along());
            case Op.Quantile x -> new Op.Quantile(m.applyAsInt(x.x()), m.applyAsInt(x.p()), x.over());
            case Op.Dot x -> new Op.Dot(m.applyAsInt(x.a()), m.applyAsInt(x.b()));
            case Op.Slope x -> new Op.Slope(m.applyAsInt(x.head()));
            case Op.Rank x -> new Op.Rank(x.order(), m.applyAsInt(x.score()), m.applyAsInt(x.count()),
                    x.floor() < 0 ? -1 : m.applyAsInt(x.floor()), x.algorithm());
            case Op.Range x -> new Op.Range(x.end(), m.applyAsInt(x.count()));
            case Op.Where x -> new Op.Where(m.applyAsInt(x.pred()));
            case Op.Pages x -> new Op.Pages(m.applyAsInt(x.pages()));
            case Op.SetOp x -> new Op.SetOp(x.fn(), m.applyAsInt(x.a()), m.applyAsInt(x.b()));
            case Op.Within x -> new Op.Within(m.applyAsInt(x.x()), m.applyAsInt(x.set()));
            case Op.Prim x -> new Op.Prim(x.fn(), x.args().stream().map(m::applyAsInt).toList());
        };
    }

    static Instr instr(Instr i, IntUnaryOperator m) {
        return switch (i) {
            case Instr.Def d -> new Instr.Def(d.id(), d.type(), op(d.op(), m));
            case Instr.Keep k -> new Instr.Keep(m.applyAsInt(k.set()));
            case Instr.Evict e -> new Instr.Evict(m.applyAsInt(e.set()));
            case Instr.Attend a -> new Instr.Attend(m.applyAsInt(a.set()));
            case Instr.Merge x -> new Instr.Merge(m.applyAsInt(x.source()), m.applyAsInt(x.dest()), x.by(), x.weight() < 0 ? -1 : m.applyAsInt(x.weight()));
            case Instr.Store s -> new Instr.Store(s.parts(), s.format(), s.bits() < 0 ? -1 : m.applyAsInt(s.bits()), s.axis(),
                    s.group() < 0 ? -1 : m.applyAsInt(s.group()), s.scope(), s.set() < 0 ? -1 : m.applyAsInt(s.set()));
            case Instr.StateWrite w -> new Instr.StateWrite(w.state(), w.op(), m.applyAsInt(w.value()));
            case Instr.If f -> new Instr.If(m.applyAsInt(f.cond()), block(f.then(), m), block(f.otherwise(), m));
        };
    }

    static Block block(Block b, IntUnaryOperator m) {
        List<Instr> out = new ArrayList<>();
        for (Instr i : b.instrs()) out.add(instr(i, m));
        return new Block(out);
    }

    /** Applies {@code f} to every block of a leaf policy (computations included). */
    static PolicyIr blocks(PolicyIr p, java.util.function.UnaryOperator<Block> f) {
        return blocks(p, f, id -> id);
    }

    /** As {@link #blocks(PolicyIr, java.util.function.UnaryOperator)}, renaming computation results with {@code m}. */
    static PolicyIr blocks(PolicyIr p, java.util.function.UnaryOperator<Block> f, IntUnaryOperator m) {
        List<PolicyIr.State> states = new ArrayList<>();
        for (PolicyIr.State s : p.states()) states.add(new PolicyIr.State(s.name(), s.type(), s.scope(), comp(s.pageSize(), f, m), comp(s.init(), f, m), s.derived()));
        List<PolicyIr.Observe> obs = new ArrayList<>();
        for (PolicyIr.Observe o : p.observes()) obs.add(new PolicyIr.Observe(o.end(), comp(o.count(), f, m), o.at()));
        List<PolicyIr.Handler> hs = new ArrayList<>();
        for (PolicyIr.Handler h : p.handlers()) hs.add(new PolicyIr.Handler(h.events(), comp(h.limit(), f, m), h.slack(), f.apply(h.body()), h.origin()));
        return new PolicyIr(p.name(), p.params(), p.positions(), p.selection(), states, obs, f.apply(p.standing()), hs, p.clauses(), p.variant());
    }

    static Computation comp(Computation c, java.util.function.UnaryOperator<Block> f, IntUnaryOperator m) {
        return c == null ? null : new Computation(f.apply(c.block()), m.applyAsInt(c.result()));
    }
}
