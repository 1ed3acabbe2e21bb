package dev.kvpc.ir.loop;

import dev.kvpc.ir.*;
import dev.kvpc.ir.loop.Loop.*;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** Lowers a specialised lane class from tensor IR to loop IR. */
public final class LoopLowering {
    private final Map<Integer, Ty> types = new HashMap<>();

    private LoopLowering() {}

    public static Loop.Program lower(PolicyIr p) {
        LoopLowering l = new LoopLowering();
        List<Kernel> ks = new ArrayList<>();
        for (PolicyIr.State s : p.states()) {
            if (s.pageSize() != null) ks.add(l.kernel("state." + s.name() + ".size", s.pageSize().block(), s.pageSize().result()));
            if (s.init() != null) ks.add(l.kernel(initName(s), s.init().block(), s.init().result()));
        }
        for (PolicyIr.Observe o : p.observes()) {
            if (o.count() != null) ks.add(l.kernel("observe." + o.at().word() + ".count", o.count().block(), o.count().result()));
        }
        if (!p.standing().instrs().isEmpty()) ks.add(l.kernel(STANDING, p.standing(), -1));
        for (int i = 0; i < p.handlers().size(); i++) {
            PolicyIr.Handler h = p.handlers().get(i);
            if (h.limit() != null) ks.add(l.kernel(limitName(i, h), h.limit().block(), h.limit().result(), h.origin()));
            ks.add(l.kernel(bodyName(i, h), h.body(), -1, h.origin()));
        }
        return new Loop.Program(p.name(), ks);
    }

    /** The kernel name of the standing rules. */
    public static final String STANDING = "standing";

    /** The kernel name of handler {@code i}'s body. */
    public static String bodyName(int i, PolicyIr.Handler h) {
        return "handler" + i + "." + events(h) + (h.slack() > 0 ? ".slack" + h.slack() : "");
    }

    /** The kernel name of handler {@code i}'s limit (overflow budget or every-N count). */
    public static String limitName(int i, PolicyIr.Handler h) {
        return "handler" + i + "." + events(h) + ".limit";
    }

    /** The kernel name of a state's initialiser. */
    public static String initName(PolicyIr.State s) {
        return "state." + s.name() + ".init";
    }

    private static String events(PolicyIr.Handler h) {
        return String.join(",", h.events().stream().map(PolicyIr.Event::word).toList());
    }

    private Kernel kernel(String name, Block b, int result) {
        return kernel(name, b, result, null);
    }

    private Kernel kernel(String name, Block b, int result, String origin) {
        return new Kernel(name, block(b), result, origin);
    }

    private List<Stmt> block(Block b) {
        List<Stmt> out = new ArrayList<>();
        for (Instr i : b.instrs()) {
            switch (i) {
                case Instr.Def d -> {
                    types.put(d.id(), d.type());
                    def(d, out);
                }
                case Instr.If f -> out.add(new Loop.If(new Load(f.cond(), List.of()), block(f.then()), block(f.otherwise())));
                default -> out.add(new Effect(i));
            }
        }
        return out;
    }

    /** The extent of an axis, as loops and buffers name it. */
    public static Dim dim(Axis a) {
        return Dim.sym(switch (a) {
            case TOKEN -> "len";
            case CHANNEL -> "head_dim";
            case QUERY -> "query";
            case GROUP -> "group";
            case PAGE -> "pages";
            case HEAD -> "heads";
            case LAYER -> "layers";
        });
    }

    /** The loop variable of an axis. */
    public static String var(Axis a) {
        return switch (a) {
            case TOKEN -> "t";
            case CHANNEL -> "c";
            case QUERY -> "q";
            case GROUP -> "g";
            case PAGE -> "p";
            case HEAD -> "h";
            case LAYER -> "l";
        };
    }

    private static List<Dim> dims(Ty.Tensor t) {
        return t.axes().stream().map(LoopLowering::dim).toList();
    }

    /** A load of {@code id} indexed by the loop variables of its axes. */
    private Expr load(int id) {
        Ty t = types.get(id);
        if (!(t instanceof Ty.Tensor tt)) throw new IllegalStateException("%" + id + " is not a tensor");
        return new Load(id, tt.axes().stream().map(a -> (Expr) new Var(var(a))).toList());
    }

    /** Wraps {@code body} in loops over {@code axes} (outermost first). */
    private static List<Stmt> nest(List<Axis> axes, List<Stmt> body) {
        List<Stmt> inner = body;
        for (int i = axes.size() - 1; i >= 0; i--) {
            Axis a = axes.get(i);
            inner = List.of(new For(var(a), new Const(0L), new Extent(dim(a)), inner));
        }
        return inner;
    }

    private static List<Expr> vars(List<Axis> axes) {
        return axes.stream().map(a -> (Expr) new Var(var(a))).toList();
    }

    private void def(Instr.Def d, List<Stmt> out) {
        Ty type = d.type();
        switch (d.op()) {
            case Op.Const c -> {
                out.add(new Alloc(d.id(), ((Ty.Tensor) type).elem(), List.of()));
                out.add(new Assign(d.id(), List.of(), new Const(c.value())));
            }
            case Op.Signal s -> out.add(new Bind(d.id(), "signal", s.name(), type));
            case Op.StateRead s -> out.add(new Bind(d.id(), "state", s.name(), type));
            case Op.Param p -> out.add(new Bind(d.id(), "param", p.name(), type));
            case Op.Table t -> out.add(new Bind(d.id(), "table", t.file(), type));
            case Op.KernelStat k -> out.add(new Bind(d.id(), "kernelstat", k.signal() + ":" + k.fn().word() + ":"
                    + String.join("+", k.over().stream().map(Axis::word).toList()), type));
            case Op.Map1 m -> elementwise(d, new Un(m.fn(), load(m.x())), out);
            case Op.Map2 m -> elementwise(d, new Bin(m.fn(), load(m.a()), load(m.b())), out);
            case Op.Choose c -> {
                if (type instanceof Ty.SetTy) out.add(new SetPrim(d.id(), type, d.op()));
                else elementwise(d, new Loop.Choose(load(c.cond()), load(c.a()), load(c.b())), out);
            }
            case Op.Reduce r -> reduce(d, r.fn(), r.x(), r.over(), load(r.x()), out);
            case Op.Dot dot -> {
                Ty.Tensor a = (Ty.Tensor) types.get(dot.a()), b = (Ty.Tensor) types.get(dot.b());
                List<Axis> all = new ArrayList<>(Ty.Tensor.of(Ty.Elem.FLOAT, union(a.axes(), b.axes())).axes());
                types.put(-1, new Ty.Tensor(Ty.Elem.FLOAT, all));
                reduceOver(d, Op.Red.SUM, all, List.of(Axis.CHANNEL), new Bin(Op.Fn2.MUL, load(dot.a()), load(dot.b())), out);
            }
            case Op.Pool p -> pool(d, p, out);
            default -> out.add(new SetPrim(d.id(), type, d.op()));
        }
    }

    private static List<Axis> union(List<Axis> a, List<Axis> b) {
        List<Axis> r = new ArrayList<>(a);
        for (Axis x : b) if (!r.contains(x)) r.add(x);
        return r;
    }

    private void elementwise(Instr.Def d, Expr value, List<Stmt> out) {
        Ty.Tensor t = (Ty.Tensor) d.type();
        out.add(new Alloc(d.id(), t.elem(), dims(t)));
        out.addAll(nest(t.axes(), List.of(new Assign(d.id(), vars(t.axes()), value))));
    }

    private void reduce(Instr.Def d, Op.Red fn, int x, List<Axis> over, Expr value, List<Stmt> out) {
        Ty.Tensor xt = (Ty.Tensor) types.get(x);
        reduceOver(d, fn, xt.axes(), over, value, out);
    }

    /** out[kept] = fn over {@code over} of value, iterating {@code all} axes. */
    private void reduceOver(Instr.Def d, Op.Red fn, List<Axis> all, List<Axis> over, Expr value, List<Stmt> out) {
        Ty.Tensor t = (Ty.Tensor) d.type();
        out.add(new Alloc(d.id(), t.elem(), dims(t)));
        Object init = switch (fn) {
            case MAX -> Double.NEGATIVE_INFINITY;
            case MIN -> Double.POSITIVE_INFINITY;
            default -> 0.0;
        };
        out.addAll(nest(t.axes(), List.of(new Assign(d.id(), vars(t.axes()), new Const(init)))));
        Op.Red acc = fn == Op.Red.MEAN || fn == Op.Red.NORM ? Op.Red.SUM : fn;
        Expr v = fn == Op.Red.NORM ? new Bin(Op.Fn2.MUL, value, value) : value;
        out.addAll(nest(all, List.of(new Accumulate(d.id(), vars(t.axes()), acc, v))));
        if (fn == Op.Red.MEAN) {
            Expr count = new Const(1L);
            for (Axis a : over) count = new Bin(Op.Fn2.MUL, count, new Extent(dim(a)));
            Expr cur = new Load(d.id(), vars(t.axes()));
            out.addAll(nest(t.axes(), List.of(new Assign(d.id(), vars(t.axes()), new Bin(Op.Fn2.DIV, cur, count)))));
        } else if (fn == Op.Red.NORM) {
            Expr cur = new Load(d.id(), vars(t.axes()));
            out.addAll(nest(t.axes(), List.of(new Assign(d.id(), vars(t.axes()), new Un(Op.Fn1.SQRT, cur)))));
        }
    }

    private void pool(Instr.Def d, Op.Pool p, List<Stmt> out) {
        Ty.Tensor t = (Ty.Tensor) d.type();
        out.add(new Alloc(d.id(), t.elem(), dims(t)));
        String a = var(p.along());
        Expr k = new Load(p.kernel(), List.of());
        Expr half = new Un(Op.Fn1.TO_INT, new Bin(Op.Fn2.DIV, k, new Const(2L)));
        Expr from = new Bin(Op.Fn2.MAX, new Const(0L), new Bin(Op.Fn2.SUB, new Var(a), half));
        Expr to = new Bin(Op.Fn2.MIN, new Extent(dim(p.along())), new Bin(Op.Fn2.ADD, new Bin(Op.Fn2.SUB, new Var(a), half), k));
        List<Expr> outIdx = vars(t.axes());
        List<Expr> inIdx = new ArrayList<>();
        for (Axis x : t.axes()) inIdx.add(new Var(x == p.along() ? "u" : var(x)));
        List<Stmt> body = new ArrayList<>();
        body.add(new Assign(d.id(), outIdx, new Const(p.fn() == Op.Red.MAX ? Double.NEGATIVE_INFINITY : 0.0)));
        body.add(new For("u", from, to, List.of(new Accumulate(d.id(), outIdx, p.fn() == Op.Red.MAX ? Op.Red.MAX : Op.Red.SUM, new Load(p.x(), inIdx)))));
        if (p.fn() == Op.Red.MEAN) {
            body.add(new Assign(d.id(), outIdx, new Bin(Op.Fn2.DIV, new Load(d.id(), outIdx), new Bin(Op.Fn2.SUB, to, from))));
        }
        out.addAll(nest(t.axes(), body));
    }
}
