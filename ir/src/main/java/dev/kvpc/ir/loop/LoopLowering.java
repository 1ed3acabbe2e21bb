package dev.kvpc.ir.loop;

import dev.kvpc.ir.*;
import dev.kvpc.ir.loop.Loop.*;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Lowers a specialised lane class from tensor IR to loop IR.
 *
 * <p>Elementwise chains are fused: a float elementwise value read once, by an elementwise value, a reduction or a dot
 * product later in the same block with no effect in between, gets no buffer; its expression is evaluated inside
 * the reader's loop instead (Quest's {@code sum(max(q * kmin, q * kmax), over: channel)} is one loop nest with no
 * [query, group, page, channel] buffers). Every element is computed by the same operations in the same order, so
 * results are identical to the unfused lowering's.
 */
public final class LoopLowering {
    private final Map<Integer, Ty> types = new HashMap<>();
    /** Fused values: the expression a read of the value stands for, in the canonical loop variables of its axes. */
    private final Map<Integer, Expr> fused = new HashMap<>();
    /** Values read by a fused reader: each is read once, there. */
    private final java.util.Set<Integer> fusable = new java.util.HashSet<>();

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
        // what is fused is decided per kernel
        fusable.clear();
        fused.clear();
        findFusable(b, result);
        return new Kernel(name, block(b), result, origin);
    }

    /** Whether an op is computed elementwise into its own buffer (a map, or a choice between values). */
    private static boolean elementwise(Instr.Def d) {
        return d.op() instanceof Op.Map1 || d.op() instanceof Op.Map2 || d.op() instanceof Op.Choose && d.type() instanceof Ty.Tensor;
    }

    /** Whether a definition's loop reads its operands through {@link #load} at the canonical variables of their axes. */
    private static boolean fusingReader(Instr.Def d) {
        return elementwise(d) || d.op() instanceof Op.Reduce || d.op() instanceof Op.Dot;
    }

    /** The axes a fusing reader's loop nest runs over: its input's for a reduction, both inputs' for a dot product, else its own. */
    private List<Axis> iteration(Instr.Def reader) {
        return switch (reader.op()) {
            case Op.Reduce r -> types.get(r.x()) instanceof Ty.Tensor x ? x.axes() : null;
            case Op.Dot dot -> types.get(dot.a()) instanceof Ty.Tensor a && types.get(dot.b()) instanceof Ty.Tensor b
                    ? Ty.Tensor.of(Ty.Elem.FLOAT, union(a.axes(), b.axes())).axes() : null;
            default -> reader.type() instanceof Ty.Tensor t ? t.axes() : null;
        };
    }

    /**
     * Marks the values of a kernel's block that are fused into their reader: float elementwise values read exactly
     * once in the whole kernel, by a fusing reader of the same block whose loops run over exactly the value's axes
     * (so that each element is still computed once), with only definitions (no effect, no branch) between them, and
     * not the kernel's result.
     */
    private void findFusable(Block b, int result) {
        IrWalk.forEachInstr(b, i -> {
            if (i instanceof Instr.Def d) types.put(d.id(), d.type());
        });
        Map<Integer, Integer> reads = new HashMap<>();
        for (Instr i : b.instrs()) IrWalk.uses(i, id -> reads.merge(id, 1, Integer::sum));
        List<Instr> is = b.instrs();
        for (int at = 0; at < is.size(); at++) {
            if (!(is.get(at) instanceof Instr.Def d) || !elementwise(d) || d.id() == result) continue;
            if (!(d.type() instanceof Ty.Tensor t) || t.elem() != Ty.Elem.FLOAT || reads.getOrDefault(d.id(), 0) != 1) continue;
            for (int r = at + 1; r < is.size(); r++) {
                if (!(is.get(r) instanceof Instr.Def reader)) break;
                if (reader.op().operands().contains(d.id())) {
                    if (fusingReader(reader) && t.axes().equals(iteration(reader))) fusable.add(d.id());
                    break;
                }
            }
        }
    }

    private List<Stmt> block(Block b) {
        List<Stmt> out = new ArrayList<>();
        for (Instr i : b.instrs()) {
            switch (i) {
                case Instr.Def d -> {
                    types.put(d.id(), d.type());
                    if (fusable.contains(d.id())) {
                        fused.put(d.id(), value(d));
                        continue;
                    }
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

    /** A load of {@code id} indexed by the loop variables of its axes (or its expression, when it is fused). */
    private Expr load(int id) {
        Expr f = fused.get(id);
        if (f != null) return f;
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
            case Op.Signal s -> out.add(new Bind(d.id(), s, type));
            case Op.StateRead s -> out.add(new Bind(d.id(), s, type));
            case Op.Param p -> out.add(new Bind(d.id(), p, type));
            case Op.Table t -> out.add(new Bind(d.id(), t, type));
            case Op.Vector v -> out.add(new Bind(d.id(), v, type));
            case Op.KernelStat k -> out.add(new Bind(d.id(), k, type));
            case Op.ModelStat m -> out.add(new Bind(d.id(), m, type));
            case Op.Map1 m -> elementwise(d, value(d), out);
            case Op.Map2 m -> elementwise(d, value(d), out);
            case Op.Choose c -> {
                if (type instanceof Ty.SetTy) out.add(new SetPrim(d.id(), type, d.op()));
                else elementwise(d, value(d), out);
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

    /** The element of an elementwise definition, in the loop variables of its axes. */
    private Expr value(Instr.Def d) {
        return switch (d.op()) {
            case Op.Map1 m -> new Un(m.fn(), load(m.x()));
            case Op.Map2 m -> new Bin(m.fn(), load(m.a()), load(m.b()));
            case Op.Choose c -> new Loop.Choose(load(c.cond()), load(c.a()), load(c.b()));
            default -> throw new IllegalStateException("%" + d.id() + " is not elementwise");
        };
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

    /**
     * out[kept] = fn over {@code over} of value, iterating {@code all} axes: the reduction's rule ({@link Op.Red}):
     * its identity, each value mapped by its {@code pre} and folded, then its {@code post} of the fold and the count.
     */
    private void reduceOver(Instr.Def d, Op.Red fn, List<Axis> all, List<Axis> over, Expr value, List<Stmt> out) {
        Ty.Tensor t = (Ty.Tensor) d.type();
        out.add(new Alloc(d.id(), t.elem(), dims(t)));
        out.addAll(nest(t.axes(), List.of(new Assign(d.id(), vars(t.axes()), new Const(fn.identity())))));
        Op.Red acc = switch (fn.fold) {
            case SUM -> Op.Red.SUM;
            case MAX -> Op.Red.MAX;
            case MIN -> Op.Red.MIN;
        };
        Expr v = fn.pre == null ? value : scalar(fn.pre, value, null);
        out.addAll(nest(all, List.of(new Accumulate(d.id(), vars(t.axes()), acc, v))));
        if (fn.post != null) {
            Expr count = new Const(1L);
            for (Axis a : over) count = new Bin(Op.Fn2.MUL, count, new Extent(dim(a)));
            Expr cur = new Load(d.id(), vars(t.axes()));
            out.addAll(nest(t.axes(), List.of(new Assign(d.id(), vars(t.axes()), scalar(fn.post, cur, count)))));
        }
    }

    /** A rule's formula as a loop expression: variable 0 is {@code v}, variable 1 is {@code n}. */
    private static Expr scalar(Op.Scalar f, Expr v, Expr n) {
        return switch (f) {
            case Op.Scalar.Var x -> x.i() == 0 ? v : n;
            case Op.Scalar.Num c -> new Const(c.value());
            case Op.Scalar.Un u -> new Un(u.fn(), scalar(u.x(), v, n));
            case Op.Scalar.Bin b -> new Bin(b.fn(), scalar(b.a(), v, n), scalar(b.b(), v, n));
            case Op.Scalar.If c -> new Loop.Choose(scalar(c.cond(), v, n), scalar(c.a(), v, n), scalar(c.b(), v, n));
        };
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
