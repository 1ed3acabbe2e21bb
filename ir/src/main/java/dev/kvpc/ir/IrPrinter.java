package dev.kvpc.ir;

import java.util.List;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * The text form of the tensor IR. One item per line, two-space indentation, blocks in braces. {@link IrParser}
 * reads it back: {@code print(parse(text)).equals(text)} for every printed program.
 */
public final class IrPrinter {
    private final StringBuilder out = new StringBuilder();
    private int indent;

    private IrPrinter() {}

    public static String print(IrProgram p) {
        IrPrinter pr = new IrPrinter();
        for (AttentionIr a : p.variants()) pr.variant(a);
        for (PolicyIr pol : p.policies()) pr.policy(pol);
        return pr.out.toString();
    }

    public static String print(PolicyIr p) {
        IrPrinter pr = new IrPrinter();
        pr.policy(p);
        return pr.out.toString();
    }

    private void line(String s) {
        out.append("  ".repeat(indent)).append(s).append('\n');
    }

    private void variant(AttentionIr a) {
        line("attention " + a.name() + " {");
        indent++;
        for (PolicyIr.Param p : a.params()) param(p);
        comp("logits", a.logits());
        if (a.mask() != null) comp("mask", a.mask());
        line("normalize " + a.normalize().word());
        indent--;
        line("}");
    }

    private void policy(PolicyIr p) {
        line("policy " + p.name() + (p.variant() != null ? " variant " + p.variant() : "") + " {");
        indent++;
        items(p);
        indent--;
        line("}");
    }

    private void items(PolicyIr p) {
        for (PolicyIr.Param prm : p.params()) param(prm);
        if (p.positions() != PolicyIr.Positions.ORIGINAL) line("positions " + p.positions().word());
        if (p.selection() != PolicyIr.Selection.LANE) line("selection " + p.selection().word());
        for (PolicyIr.State s : p.states()) {
            line("state " + s.name() + ": " + s.type().show() + " per " + s.scope().word() + (s.derived() ? " derived" : "") + " {");
            indent++;
            if (s.pageSize() != null) comp("size", s.pageSize());
            if (s.init() != null) comp("init", s.init());
            indent--;
            line("}");
        }
        for (PolicyIr.Observe o : p.observes()) {
            if (o.count() == null) {
                line("observe " + (o.end() == null ? "all" : o.end().word()) + " at " + o.at().word());
            } else {
                comp("observe " + o.end().word() + " at " + o.at().word() + " count", o.count());
            }
        }
        if (!p.standing().instrs().isEmpty()) {
            line("standing {");
            block(p.standing());
            line("}");
        }
        for (PolicyIr.Handler h : p.handlers()) {
            String ev = h.events().stream().map(PolicyIr.Event::word).collect(Collectors.joining(", "));
            line("on " + ev + (h.slack() > 0 ? " slack " + h.slack() : "") + (h.origin() != null ? " @" + h.origin() : "") + " {");
            indent++;
            if (h.limit() != null) comp("limit", h.limit());
            indent--;
            block(h.body());
            line("}");
        }
        for (PolicyIr.Clause c : p.clauses()) {
            line("clause {");
            indent++;
            comp("guard", c.guard());
            switch (c.target()) {
                case PolicyIr.Use u -> {
                    line("use " + u.policy() + " {");
                    indent++;
                    new TreeMap<>(u.args()).forEach((k, v) -> comp("arg " + k, v));
                    indent--;
                    line("}");
                }
                case PolicyIr.Inline in -> {
                    line("inline {");
                    indent++;
                    items(in.body());
                    indent--;
                    line("}");
                }
            }
            indent--;
            line("}");
        }
    }

    private void param(PolicyIr.Param p) {
        String head = "param " + p.name() + ": " + p.kind().word();
        if (p.init() == null) line(head);
        else comp(head + " =", p.init());
    }

    /** A computation: {@code <head> %N {}, its definitions, {@code }}. */
    private void comp(String head, Computation c) {
        line(head + " %" + c.result() + " {");
        block(c.block());
        line("}");
    }

    private void block(Block b) {
        indent++;
        for (Instr i : b.instrs()) instr(i);
        indent--;
    }

    private void instr(Instr i) {
        switch (i) {
            case Instr.Def d -> line("%" + d.id() + ": " + d.type().show() + " = " + op(d.op()));
            case Instr.Keep k -> line("keep %" + k.set());
            case Instr.Evict e -> line("evict %" + e.set());
            case Instr.Attend a -> line("attend %" + a.set());
            case Instr.Merge m -> line("merge %" + m.source() + " into %" + m.dest() + " by " + m.by().word()
                    + (m.weight() >= 0 ? " weight %" + m.weight() : ""));
            case Instr.Store s -> {
                StringBuilder sb = new StringBuilder("store ");
                sb.append(s.parts().stream().sorted().map(Instr.Part::word).collect(Collectors.joining(",")));
                sb.append(" as ").append(s.format().word());
                if (s.bits() >= 0) sb.append(" bits %").append(s.bits());
                sb.append(" per ").append(s.axis().word());
                if (s.group() >= 0) sb.append(" group %").append(s.group());
                sb.append(" scope ").append(s.scope().word());
                if (s.set() >= 0) sb.append(" %").append(s.set());
                line(sb.toString());
            }
            case Instr.StateWrite w -> line("state " + w.state() + " " + w.op().symbol + " %" + w.value());
            case Instr.If f -> {
                line("if %" + f.cond() + " {");
                block(f.then());
                if (!f.otherwise().instrs().isEmpty()) {
                    line("} else {");
                    block(f.otherwise());
                }
                line("}");
            }
        }
    }

    static String op(Op op) {
        return switch (op) {
            case Op.Const c -> "const " + constText(c.value());
            case Op.Param p -> "param " + p.name();
            case Op.Signal s -> "signal " + s.signal().word();
            case Op.StateRead s -> "state " + s.name();
            case Op.Table t -> "table " + quote(t.file());
            case Op.Vector v -> "vector " + vectorText(v);
            case Op.Map1 m -> m.fn().word() + " %" + m.x();
            case Op.Map2 m -> m.fn().word() + " %" + m.a() + " %" + m.b();
            case Op.Choose c -> "choose %" + c.cond() + " %" + c.a() + " %" + c.b();
            case Op.Reduce r -> "reduce " + r.fn().word() + " %" + r.x() + " over " + axes(r.over());
            case Op.Pool p -> "pool " + p.fn().word() + " %" + p.x() + " kernel %" + p.kernel() + " along " + p.along().word();
            case Op.Quantile q -> "quantile %" + q.x() + " %" + q.p() + (q.over().isEmpty() ? "" : " over " + axes(q.over()));
            case Op.Dot d -> "dot %" + d.a() + " %" + d.b();
            case Op.Slope s -> "slope %" + s.head();
            case Op.Rank r -> "rank " + r.order().word() + " %" + r.score() + " %" + r.count() + (r.floor() >= 0 ? " floor %" + r.floor() : "")
                    + (r.algorithm() != Op.Algorithm.AUTO ? " algorithm " + r.algorithm().word() : "");
            case Op.Range r -> "range " + r.end().word() + " %" + r.count();
            case Op.All a -> "all";
            case Op.Compensation c -> "compensation";
            case Op.Where w -> "where %" + w.pred();
            case Op.Pages p -> "pages %" + p.pages();
            case Op.SetOp s -> "set " + s.fn().word() + " %" + s.a() + " %" + s.b();
            case Op.Within w -> "within %" + w.x() + " %" + w.set();
            case Op.Prim p -> "prim " + p.fn().word() + p.args().stream().map(a -> " %" + a).collect(Collectors.joining());
            case Op.KernelStat k -> "kernelstat " + k.input().word() + " " + k.fn().word() + " over " + axes(k.over());
            case Op.ModelStat m -> "modelstat " + m.stat().word() + " " + m.state() + " over " + axes(m.over());
        };
    }

    /** A vector constant: its extents joined by {@code x}, then its values, comma-separated ({@code 2x3 1.0, ...}). */
    public static String vectorText(Op.Vector v) {
        StringBuilder sb = new StringBuilder();
        int[] dims = v.dims();
        for (int i = 0; i < dims.length; i++) sb.append(i == 0 ? "" : "x").append(dims[i]);
        for (int i = 0; i < v.size(); i++) sb.append(i == 0 ? " " : ", ").append(v.at(i));
        return sb.toString();
    }

    static String constText(Object v) {
        return v instanceof Double d ? Double.toString(d) : v.toString();
    }

    private static String axes(List<Axis> axes) {
        return axes.stream().map(Axis::word).collect(Collectors.joining(", "));
    }

    static String quote(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n") + "\"";
    }
}
