package dev.kvpc.backend.interp;

import dev.kvpc.ir.Axis;
import dev.kvpc.ir.Instr;
import dev.kvpc.ir.Op;
import dev.kvpc.ir.PolicyIr;
import dev.kvpc.ir.Signal;
import dev.kvpc.ir.Ty;
import dev.kvpc.runtime.policy.LaneContext;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * The {@link LaneContext} compiled kernels run against, over the reference interpreter's event: signals, states,
 * sets and effects are exactly the interpreter's ({@link ExecContext}, {@link Semantics}), so a difference between
 * a compiled policy and the interpreter can only come from the compiled code. One context per kernel run; its
 * epochs are the snapshots of the entries taken at each keep, evict or merge.
 */
final class ExecLaneContext implements LaneContext {
    private final ExecContext ctx;
    private final List<LaneState.Entry[][]> bases = new ArrayList<>();

    ExecLaneContext(ExecContext ctx) {
        this.ctx = ctx;
        bases.add(ctx.basisNow());
    }

    private static List<Axis> axes(int mask) {
        return Axis.of(mask);
    }

    // ------------------------------------------------------------------------------------------ conversions

    /** A buffer of compiled code as an interpreter tensor (dims from the context; tokens or pages from the length). */
    static Tensor tensor(ExecContext ctx, double[] data, List<Axis> axes, Ty.Elem elem) {
        int[] dims = new int[axes.size()];
        int known = 1, open = -1;
        for (int i = 0; i < dims.length; i++) {
            Axis a = axes.get(i);
            if (a == Axis.TOKEN || a == Axis.PAGE) {
                if (open >= 0) throw new InterpreterException("a buffer over both " + axes.get(open).word() + " and " + a.word());
                open = i;
                continue;
            }
            dims[i] = a == Axis.HEAD ? ctx.lanes.size() : a == Axis.LAYER ? ctx.shape.layers() : ctx.extent(a);
            known *= dims[i];
        }
        if (open >= 0) {
            if (known == 0 ? data.length != 0 : data.length % known != 0) {
                throw new InterpreterException("buffer of " + data.length + " values does not fit axes " + axes);
            }
            dims[open] = known == 0 ? 0 : data.length / known;
        } else if (known != data.length) {
            throw new InterpreterException("buffer of " + data.length + " values for axes " + axes + " of " + known);
        }
        return new Tensor(elem, axes, dims, data);
    }

    private Tensor tensor(double[] data, int axes) {
        return tensor(ctx, data, axes(axes), Ty.Elem.FLOAT);
    }

    /** An interpreter value laid out over {@code want} (broadcasting axes it lacks). */
    private double[] buffer(Object v, List<Axis> want) {
        if (!(v instanceof Tensor t)) throw new InterpreterException("expected a tensor, got " + v);
        if (t.axes.equals(want)) return t.data;
        for (Axis a : t.axes) if (!want.contains(a)) throw new InterpreterException("value over " + t.axes + " where " + want + " was expected");
        int[] dims = new int[want.size()];
        int n = 1;
        for (int i = 0; i < dims.length; i++) {
            Axis a = want.get(i);
            dims[i] = t.axes.contains(a) ? t.dim(a) : a == Axis.HEAD ? ctx.lanes.size() : a == Axis.TOKEN ? ctx.lanes.getFirst().size() : ctx.extent(a);
            n *= dims[i];
        }
        double[] out = new double[n];
        int[] idx = new int[dims.length];
        for (int f = 0; f < n; f++) {
            int src = 0;
            for (int j = 0; j < t.axes.size(); j++) {
                Axis a = t.axes.get(j);
                src = src * t.dims[j] + idx[want.indexOf(a)];
            }
            out[f] = t.data[src];
            for (int j = dims.length - 1; j >= 0; j--) {
                if (++idx[j] < dims[j]) break;
                idx[j] = 0;
            }
        }
        return out;
    }

    private Object set(Object s) {
        return ctx.rebase(s);
    }

    private Object stamped(Object s) {
        return ctx.stamp(s);
    }

    // ------------------------------------------------------------------------------------------ signals

    @Override
    public int extent(Axis axis) {
        return switch (axis) {
            case TOKEN -> ctx.lanes.getFirst().size();
            case CHANNEL -> ctx.shape.headDim();
            case QUERY -> ctx.observed.length;
            case GROUP -> ctx.shape.group();
            case HEAD -> ctx.lanes.size();
            case LAYER -> ctx.shape.layers();
            case PAGE -> {
                int regular = ctx.regularEntries(ctx.lanes.getFirst()).cardinality();
                int size = ctx.pageSize();
                yield (regular + size - 1) / size;
            }
        };
    }

    @Override
    public double[] signal(Signal signal, int axes) {
        return buffer(ctx.signal(signal), axes(axes));
    }

    @Override
    public double[] state(String name, int axes) {
        return buffer(ctx.readState(name), axes(axes));
    }

    @Override
    public double[] modelStat(Op.CellStat stat, String state, int axes) {
        return buffer(ctx.modelStat(stat, state), axes(axes));
    }

    @Override
    public double[] kernelStat(Signal signal, Op.Red fn, int over, int axes) {
        return buffer(Semantics.reduce(fn, (Tensor) ctx.signal(signal), axes(over), Ty.Elem.FLOAT), axes(axes));
    }

    @Override
    public int epoch() {
        return bases.size() - 1;
    }

    private void changed() {
        bases.add(ctx.basisNow());
    }

    @Override
    public double[] rebase(double[] values, int axes, int epoch) {
        if (values == null) return null;
        List<Axis> ax = axes(axes);
        Tensor t = tensorAt(values, ax, bases.get(epoch));
        Tensor r = (Tensor) ctx.rebase(t);
        return buffer(r, ax);
    }

    /** A buffer over tokens computed when the lanes held {@code basis}. */
    private Tensor tensorAt(double[] values, List<Axis> ax, LaneState.Entry[][] basis) {
        int[] dims = new int[ax.size()];
        for (int i = 0; i < dims.length; i++) {
            Axis a = ax.get(i);
            dims[i] = a == Axis.TOKEN ? basis[0].length : a == Axis.HEAD ? ctx.lanes.size() : ctx.extent(a);
        }
        Tensor t = new Tensor(Ty.Elem.FLOAT, ax, dims, values);
        t.basis = basis;
        return t;
    }

    // ------------------------------------------------------------------------------------------ sets

    @Override
    public Object all() {
        return stamped(ctx.all());
    }

    @Override
    public Object compensation() {
        return stamped(ctx.compensation());
    }

    @Override
    public Object range(boolean last, long count) {
        return stamped(ctx.range(last ? Op.End.LAST : Op.End.FIRST, count));
    }

    @Override
    public Object pages(Object pageSet) {
        return stamped(ctx.pages((TokenSet) set(pageSet)));
    }

    @Override
    public Object where(double[] predicate, int axes) {
        return stamped(Semantics.where(tensor(predicate, axes)));
    }

    @Override
    public Object rank(double[] score, int axes, boolean top, long count, long floor, Axis domain, Op.Algorithm algorithm) {
        return stamped(Semantics.rank(top, tensor(score, axes), count, floor, domain, ctx));
    }

    @Override
    public Object setOp(Op.SetFn fn, Object a, Object b) {
        return stamped(Semantics.setOp(fn, (TokenSet) set(a), (TokenSet) set(b)));
    }

    @Override
    public Object withinSet(Object a, Object s) {
        return stamped(Semantics.within((TokenSet) set(a), (TokenSet) set(s)));
    }

    @Override
    public double[] within(double[] values, int axes, Object s) {
        return buffer(Semantics.within(tensor(values, axes), (TokenSet) set(s)), axes(axes));
    }

    @Override
    public double quantile(double[] values, int axes, double p) {
        return Semantics.quantile(tensor(values, axes), p).scalar();
    }

    @Override
    public double[] prim(Op.PrimFn fn, double[] values, int valueAxes, Object set, Object rows, double arg, int axes) {
        List<Object> operands = new ArrayList<>();
        boolean second = false;
        for (Op.Operand o : fn.operands) {
            operands.add(switch (o) {
                case VALUES -> tensor(values, valueAxes);
                case SET -> set(second ? rows : set);
                case SCALAR -> Tensor.scalar(Ty.Elem.FLOAT, arg);
            });
            if (o == Op.Operand.SET) second = true;
        }
        Ty.Elem elem = fn == Op.PrimFn.MEMBER ? Ty.Elem.BOOL : fn == Op.PrimFn.COUNT ? Ty.Elem.INT : Ty.Elem.FLOAT;
        Tensor r = (Tensor) Semantics.prim(fn, operands.toArray(), new Ty.Tensor(elem, axes(axes)), ctx);
        return buffer(r, axes(axes));
    }

    @Override
    public Object primSet(Op.PrimFn fn, double[] values, int valueAxes, double arg) {
        return stamped((TokenSet) Semantics.prim(fn, new Object[] {tensor(values, valueAxes), Tensor.scalar(Ty.Elem.FLOAT, arg)}, null, ctx));
    }

    // ------------------------------------------------------------------------------------------ effects

    @Override
    public void keep(Object s) {
        ctx.keep((TokenSet) set(s));
        changed();
    }

    @Override
    public void evict(Object s) {
        ctx.evict((TokenSet) set(s));
        changed();
    }

    @Override
    public void attend(Object s) {
        ctx.attend((TokenSet) set(s));
    }

    @Override
    public void merge(Object source, Object dest, Instr.MergeBy by, double[] weight, int weightAxes) {
        Tensor w = weight == null ? null : tensor(weight, weightAxes);
        ctx.merge((TokenSet) set(source), (TokenSet) set(dest), by, w);
        changed();
    }

    @Override
    public void store(boolean keys, boolean values, Instr.Format format, long bits, Instr.QuantAxis axis, long group, Instr.Scope scope, Object s) {
        Set<Instr.Part> ps = EnumSet.noneOf(Instr.Part.class);
        if (keys) ps.add(Instr.Part.KEYS);
        if (values) ps.add(Instr.Part.VALUES);
        ctx.store(ps, format, (int) bits, axis, (int) group, scope, s == null ? null : (TokenSet) set(s));
    }

    @Override
    public void writeState(String name, Instr.Assign op, double[] value, int axes) {
        PolicyIr.State st = ctx.state(name);
        ctx.writeState(name, op, tensor(ctx, value, axes(axes), st.type().elem()));
    }
}
