package dev.kvpc.ir.pass;

import dev.kvpc.ir.*;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Constant folding for one lane: evaluates every definition whose operands are known (constants, parameters,
 * the lane's location and the model shape, tables) and replaces it by a constant. Quantiles read a table whole;
 * everything else reads the lane's part of it: its cell, a channel table's row, or under per-layer selection the
 * layer's heads ({@link Op.Vector}). The rest is left as it is.
 */
public final class Fold {
    /** What is known at compile time for one lane. */
    public record Lane(LaneShape shape, int layer, int head, Map<String, Object> params, java.util.function.Function<String, double[][]> tables) {}

    private final Lane lane;
    private final Map<Integer, Object> known = new HashMap<>();
    /**
     * Definitions holding a table the lane reads as a vector (channels, or heads), known whole and read at run time:
     * the lane's part of each, over its axes.
     */
    private final Map<Integer, Part> parts = new HashMap<>();

    private record Part(Op.Vector values, List<Axis> axes) {}

    private Fold(Lane lane) {
        this.lane = lane;
    }

    /** Folds a whole leaf policy: parameters become constants and are dropped. */
    public static PolicyIr policy(PolicyIr p, Lane lane) {
        Fold f = new Fold(lane);
        List<PolicyIr.State> states = new ArrayList<>();
        for (PolicyIr.State s : p.states()) {
            // a model state keeps its declared cells (layer, head); every other value is read at the lane's cell
            Ty.Tensor type = s.scope() == PolicyIr.StateScope.MODEL ? s.type() : stripLocation(s.type(), p.selection());
            states.add(new PolicyIr.State(s.name(), type, s.scope(),
                    f.comp(s.pageSize(), p.selection()), f.comp(s.init(), p.selection()), s.derived()));
        }
        List<PolicyIr.Observe> observes = new ArrayList<>();
        for (PolicyIr.Observe o : p.observes()) observes.add(new PolicyIr.Observe(o.end(), f.comp(o.count(), p.selection()), o.at()));
        List<PolicyIr.Handler> handlers = new ArrayList<>();
        for (PolicyIr.Handler h : p.handlers()) {
            handlers.add(new PolicyIr.Handler(h.events(), f.comp(h.limit(), p.selection()), h.slack(), f.block(h.body(), p.selection()), h.origin()));
        }
        return new PolicyIr(p.name(), List.of(), p.positions(), p.selection(), states, observes, f.block(p.standing(), p.selection()),
                handlers, List.of(), p.variant());
    }

    /** Evaluates a computation to a value (Long, Double, Boolean or double[][]), or null if it depends on runtime data. */
    public static Object evaluate(Computation c, Lane lane) {
        Fold f = new Fold(lane);
        f.block(c.block(), PolicyIr.Selection.LANE);
        return f.known.get(c.result());
    }

    private Computation comp(Computation c, PolicyIr.Selection sel) {
        if (c == null) return null;
        return new Computation(block(c.block(), sel), c.result());
    }

    private Block block(Block b, PolicyIr.Selection sel) {
        List<Instr> out = new ArrayList<>();
        for (Instr i : b.instrs()) {
            switch (i) {
                case Instr.Def d -> out.add(def(d, sel));
                case Instr.If f -> {
                    Object c = known.get(f.cond());
                    if (c instanceof Boolean bool) {
                        // a known condition: keep only the branch taken (its definitions keep their ids)
                        out.addAll(block(bool ? f.then() : f.otherwise(), sel).instrs());
                    } else {
                        out.add(new Instr.If(f.cond(), block(f.then(), sel), block(f.otherwise(), sel)));
                    }
                }
                default -> out.add(i);
            }
        }
        return new Block(out);
    }

    private Instr.Def def(Instr.Def d, PolicyIr.Selection sel) {
        Object v = value(d.op());
        if (v instanceof double[][] t) {
            // a table: known whole (quantiles read all of it), and for everything at run time the lane's part of it:
            // its cell, a constant; a channel table's row; under per-layer selection the layer's heads
            known.put(d.id(), t);
            Ty.Tensor tt = (Ty.Tensor) d.type();
            boolean channels = tt.axes().contains(Axis.CHANNEL), layerHeads = sel == PolicyIr.Selection.LAYER;
            if (!channels && !layerHeads) return new Instr.Def(d.id(), Ty.FLOAT, new Op.Const(scalar(d.id())));
            Ty.Tensor at = stripLocation(tt, sel);
            Op.Vector part = part(t, channels, layerHeads);
            parts.put(d.id(), new Part(part, at.axes()));
            return new Instr.Def(d.id(), at, part);
        }
        Ty type = d.type() instanceof Ty.Tensor t ? stripLocation(t, sel) : d.type();
        if (v != null) {
            known.put(d.id(), v);
            // a value with axes left (a known scalar broadcast over tokens, as `layer >= 30 ? 0.5 : dot(k, v)` in a late
            // layer) keeps its op: a scalar constant would drop the axes that ranking and masking read
            if (!(type instanceof Ty.Tensor t) || t.axes().isEmpty()) return new Instr.Def(d.id(), scalarType(v), new Op.Const(v));
        }
        return new Instr.Def(d.id(), type, d.op());
    }

    static Ty.Tensor stripLocation(Ty.Tensor t, PolicyIr.Selection sel) {
        List<Axis> axes = new ArrayList<>(t.axes());
        axes.remove(Axis.LAYER);
        if (sel == PolicyIr.Selection.LANE) axes.remove(Axis.HEAD);
        return new Ty.Tensor(t.elem(), axes);
    }

    private static Ty scalarType(Object v) {
        return v instanceof Long ? Ty.INT : v instanceof Double ? Ty.FLOAT : Ty.BOOL;
    }

    /** The value of an op if its operands are known, else null. */
    private Object value(Op op) {
        return switch (op) {
            case Op.Const c -> c.value();
            case Op.Param p -> {
                if (!lane.params().containsKey(p.name())) throw new IllegalStateException("parameter " + p.name() + " has no value");
                yield lane.params().get(p.name());
            }
            case Op.Table t -> lane.tables().apply(t.file());
            case Op.Signal s -> switch (s.signal()) {
                case LAYER -> (long) lane.layer();
                case HEAD -> (long) lane.head();
                case LAYERS -> (long) lane.shape().layers();
                case HEADS -> (long) lane.shape().kvHeads();
                case GROUP -> (long) lane.shape().group();
                case HEAD_DIM -> (long) lane.shape().headDim();
                default -> null;
            };
            case Op.Map1 m -> {
                Object x = scalar(m.x());
                yield x == null ? null : map1(m.fn(), x);
            }
            case Op.Map2 m -> {
                Object a = scalar(m.a()), b = scalar(m.b());
                yield a == null || b == null ? null : map2(m.fn(), a, b);
            }
            case Op.Choose c -> {
                Object cond = scalar(c.cond());
                if (!(cond instanceof Boolean bool)) yield null;
                yield scalar(bool ? c.a() : c.b());
            }
            case Op.Reduce r -> {
                // a table's part reduced over all its axes (a channel table's row summed in a guard or a count)
                Part part = parts.get(r.x());
                if (part == null || !r.over().containsAll(part.axes())) yield null;
                yield r.fn().all(part.values().values());
            }
            case Op.Quantile q -> {
                Object x = known.get(q.x()), p = scalar(q.p());
                if (x instanceof double[][] t && p != null && q.over().isEmpty()) yield quantile(t, toDouble(p));
                yield null;
            }
            default -> null;
        };
    }

    /** A known operand as a scalar: tables read at the lane's cell. */
    private Object scalar(int id) {
        Object v = known.get(id);
        if (parts.containsKey(id)) return null;
        if (v instanceof double[][] t) {
            if (lane.layer() < t.length && lane.head() < t[lane.layer()].length) return t[lane.layer()][lane.head()];
            throw new IllegalStateException("table is " + t.length + " x " + (t.length == 0 ? 0 : t[0].length)
                    + ", the lane is layer " + lane.layer() + " head " + lane.head());
        }
        return v;
    }

    /**
     * The lane's part of a table: a channel table's row at the lane's cell (its rows are (layer, KV head) pairs,
     * layer-major, of one value per channel), or under per-layer selection the layer's heads: their cells, or their
     * rows of channels.
     */
    private Op.Vector part(double[][] t, boolean channels, boolean layerHeads) {
        LaneShape s = lane.shape();
        int heads = s.kvHeads(), d = s.headDim();
        boolean fits = channels ? t.length == s.layers() * heads && Arrays.stream(t).allMatch(r -> r.length == d)
                : t.length == s.layers() && Arrays.stream(t).allMatch(r -> r.length == heads);
        if (!fits) {
            throw new IllegalStateException("table is " + t.length + " x " + (t.length == 0 ? 0 : t[0].length) + ", the model has "
                    + s.layers() + " layers x " + heads + " KV heads" + (channels ? " of " + d + " channels" : ""));
        }
        if (!layerHeads) return new Op.Vector(new int[] {d}, t[Op.Table.channelRow(lane.layer(), lane.head(), heads)]);
        if (!channels) return new Op.Vector(new int[] {heads}, t[lane.layer()]);
        double[] v = new double[heads * d];
        for (int h = 0; h < heads; h++) System.arraycopy(t[Op.Table.channelRow(lane.layer(), h, heads)], 0, v, h * d, d);
        return new Op.Vector(new int[] {heads, d}, v);
    }

    static Object map1(Op.Fn1 fn, Object x) {
        return switch (fn) {
            case NEG -> x instanceof Long l ? (Object) (-l) : (Object) (-toDouble(x));
            case NOT -> !(Boolean) x;
            case ABS -> x instanceof Long l ? (Object) Math.abs(l) : (Object) Math.abs(toDouble(x));
            case EXP, LOG, SQRT, TANH, SIGMOID -> fn.apply(toDouble(x));
            case TO_INT -> x instanceof Long ? x : (Object) (long) toDouble(x);
            case TO_FLOAT -> toDouble(x);
        };
    }

    static Object map2(Op.Fn2 fn, Object a, Object b) {
        boolean ints = a instanceof Long && b instanceof Long;
        return switch (fn) {
            case ADD -> ints ? (Object) ((Long) a + (Long) b) : (Object) (toDouble(a) + toDouble(b));
            case SUB -> ints ? (Object) ((Long) a - (Long) b) : (Object) (toDouble(a) - toDouble(b));
            case MUL -> ints ? (Object) ((Long) a * (Long) b) : (Object) (toDouble(a) * toDouble(b));
            case DIV -> toDouble(a) / toDouble(b);
            case MOD -> ints ? ((Long) b == 0 ? null : (Object) ((Long) a % (Long) b)) : (Object) (toDouble(a) % toDouble(b));
            case LT -> toDouble(a) < toDouble(b);
            case LE -> toDouble(a) <= toDouble(b);
            case GT -> toDouble(a) > toDouble(b);
            case GE -> toDouble(a) >= toDouble(b);
            case EQ -> a instanceof Boolean ? a.equals(b) : (Object) (toDouble(a) == toDouble(b));
            case NE -> a instanceof Boolean ? !a.equals(b) : (Object) (toDouble(a) != toDouble(b));
            case AND -> (Boolean) a && (Boolean) b;
            case OR -> (Boolean) a || (Boolean) b;
            case MAX -> ints ? (Object) Math.max((Long) a, (Long) b) : (Object) Math.max(toDouble(a), toDouble(b));
            case MIN -> ints ? (Object) Math.min((Long) a, (Long) b) : (Object) Math.min(toDouble(a), toDouble(b));
            case POW -> fn.apply(toDouble(a), toDouble(b));
        };
    }

    static double toDouble(Object o) {
        return o instanceof Long l ? l : o instanceof Double d ? d : ((Boolean) o ? 1 : 0);
    }

    /** The quantile of every value of a table ({@link Op.Quantile#of}), as the checker computes it. */
    static double quantile(double[][] t, double p) {
        return Op.Quantile.of(Arrays.stream(t).flatMapToDouble(Arrays::stream).toArray(), p);
    }
}
