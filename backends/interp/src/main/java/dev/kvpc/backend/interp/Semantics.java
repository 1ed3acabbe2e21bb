package dev.kvpc.backend.interp;

import dev.kvpc.ir.*;
import dev.kvpc.runtime.exec.Prims;
import dev.kvpc.runtime.exec.Select;

import java.util.BitSet;
import java.util.List;

/**
 * What each IR op computes, on {@link Tensor}s and {@link TokenSet}s: the interpreter's nodes ({@link OpNodes}) and
 * the context compiled kernels run against ({@link ExecLaneContext}) both call these. Where a rule is shared with
 * compiled code it is not restated here but called: scalar functions and reductions ({@link Op.Fn1}, {@link Op.Fn2},
 * {@link Op.Red}), set algebra ({@link Op.SetFn}), the quantile ({@link Op.Quantile#of}) and ranking
 * ({@link Select#rank}). The rules a reader needs besides:
 * <ul>
 *   <li>elementwise ops broadcast by axis name; ints stay ints (division gives a float);</li>
 *   <li>{@code within(x, S)}: x with entries outside S set to NaN, which never rank;</li>
 *   <li>{@code pool}: a window of {@code kernel} entries centred on each (clipped at the ends), max or mean over
 *       the entries inside.</li>
 * </ul>
 */
final class Semantics {
    private Semantics() {}

    /** {@code fn(x, y)} as a value of {@code elem}: an int result is truncated, but a division's stays a float. */
    static double map2(Op.Fn2 fn, Ty.Elem elem, double x, double y) {
        double r = fn.apply(x, y);
        return elem == Ty.Elem.INT && fn != Op.Fn2.DIV ? (double) (long) r : r;
    }

    /** A reduction by its rule ({@link Op.Red}: identity, fold, finish). */
    static Tensor reduce(Op.Red fn, Tensor x, List<Axis> over, Ty.Elem out) {
        return Tensor.reduce(x, over, out, fn.identity(), fn::fold, fn::finish);
    }

    /** {@code a . b} over channels: the sum of the products, folded in channel order. */
    static Tensor dot(Tensor a, Tensor b) {
        return reduce(Op.Red.SUM, Tensor.map2(a, b, Ty.Elem.FLOAT, (x, y) -> x * y), List.of(Axis.CHANNEL), Ty.Elem.FLOAT);
    }

    static Tensor pool(Op.Red fn, Tensor x, int kernel, Axis along) {
        if (kernel < 1) throw new InterpreterException("pooling kernel " + kernel);
        double[][] sl = x.slices(along);
        double[][] out = new double[sl.length][];
        int half = kernel / 2;
        for (int i = 0; i < sl.length; i++) {
            double[] s = sl[i];
            out[i] = new double[s.length];
            for (int t = 0; t < s.length; t++) {
                double acc = fn == Op.Red.MAX ? Double.NEGATIVE_INFINITY : 0;
                int n = 0;
                for (int u = Math.max(0, t - half); u <= Math.min(s.length - 1, t - half + kernel - 1); u++) {
                    acc = fn == Op.Red.MAX ? Math.max(acc, s[u]) : acc + s[u];
                    n++;
                }
                out[i][t] = fn == Op.Red.MAX ? acc : acc / Math.max(1, n);
            }
        }
        return x.fromSlices(along, out, fn == Op.Red.MAX ? x.elem : Ty.Elem.FLOAT);
    }

    /** The {@code p} quantile of every value of {@code x} ({@link Op.Quantile#of}). */
    static Tensor quantile(Tensor x, double p) {
        return Tensor.scalar(Ty.Elem.FLOAT, Op.Quantile.of(x.data.clone(), p));
    }

    /** The {@code p} quantile of {@code x} along the axes {@code over}, for each cell of the others ({@link Op.Quantile#along}). */
    static Tensor quantile(Tensor x, List<Axis> over, double p) {
        boolean[] reduced = new boolean[x.axes.size()];
        List<Axis> rest = new java.util.ArrayList<>();
        List<Integer> restDims = new java.util.ArrayList<>();
        for (int i = 0; i < reduced.length; i++) {
            reduced[i] = over.contains(x.axes.get(i));
            if (!reduced[i]) {
                rest.add(x.axes.get(i));
                restDims.add(x.dims[i]);
            }
        }
        return new Tensor(Ty.Elem.FLOAT, rest, restDims.stream().mapToInt(Integer::intValue).toArray(), Op.Quantile.along(x.data, x.dims, reduced, p));
    }

    static TokenSet where(Tensor pred) {
        double[][] sl = pred.slices(Axis.TOKEN);
        BitSet[] out = new BitSet[sl.length];
        for (int i = 0; i < sl.length; i++) {
            out[i] = new BitSet();
            for (int t = 0; t < sl[i].length; t++) if (sl[i][t] != 0) out[i].set(t);
        }
        return new TokenSet(Axis.TOKEN, out, false, null, pred.axes.contains(Axis.GROUP));
    }

    /** {@code a fn b}, head by head ({@link Op.SetFn}). */
    static TokenSet setOp(Op.SetFn fn, TokenSet a, TokenSet b) {
        return TokenSet.combine(a, b, fn::apply, fn.compensation(a.compensation(), b.compensation()));
    }

    /** A set restricted to another: their intersection, without the compensation entry. */
    static TokenSet within(TokenSet x, TokenSet s) {
        return TokenSet.combine(x, s, Op.SetFn.INTER::apply, false);
    }

    /**
     * Values with entries outside {@code s} set to NaN (a head's row of the value reads the set of that head; a query
     * head's row, the set of that query head when the set is per query head).
     */
    static Tensor within(Tensor x, TokenSet s) {
        double[][] sl = x.slices(Axis.TOKEN);
        int heads = x.axes.contains(Axis.HEAD) ? x.dim(Axis.HEAD) : 1;
        int per = sl.length / heads;
        int group = s.queryHeads() ? x.dim(Axis.GROUP) : 0, inner = 1;
        for (int j = x.axes.indexOf(Axis.TOKEN) + 1; j < x.dims.length; j++) inner *= x.dims[j];
        for (int i = 0; i < sl.length; i++) {
            // the axes between group and token are none (page never meets token), so a row's query head is this
            BitSet b = s.queryHeads() ? s.forHead(i / inner % group) : s.forHead(Math.min(i / Math.max(1, per), s.heads() - 1));
            for (int t = 0; t < sl[i].length; t++) if (!b.get(t)) sl[i][t] = Double.NaN;
        }
        return x.fromSlices(Axis.TOKEN, sl, x.elem);
    }

    /**
     * {@code top|bottom(score, count)} over {@code domain}, with a per-head {@code floor} (-1: none): the runtime's
     * ranking rule ({@link Select#rank}); a lane's compensation entry never ranks.
     */
    static TokenSet rank(boolean top, Tensor score, long count, long floor, Axis domain, ExecContext c) {
        if (score.axes.contains(Axis.GROUP)) {
            // each query head of the lane's group ranks its own row ({@link Select#rankEach})
            int comp = domain == Axis.TOKEN ? compensation(c.lanes.getFirst()) : -1;
            return TokenSet.perQueryHead(Select.rankEach(score.slices(domain), top, count, comp), false);
        }
        int heads = score.axes.contains(Axis.HEAD) ? score.dim(Axis.HEAD) : 1;
        double[][] sl = score.slices(domain);
        if (sl.length != heads) throw new InterpreterException("rank score has axes " + score.axes + " beyond head and " + domain.word());
        int[] comp = null;
        if (domain == Axis.TOKEN) {
            comp = new int[heads];
            for (int h = 0; h < heads; h++) comp[h] = compensation(c.lanes.get(Math.min(h, c.lanes.size() - 1)));
        }
        return new TokenSet(domain, Select.rank(sl, top, count, floor, comp), false);
    }

    /**
     * A primitive ({@link Op.PrimFn}) by the runtime's rules ({@link Prims#values}, {@link Prims#set}), over the lanes
     * of the event: operands in order ({@link Tensor}s and {@link TokenSet}s), the result of type {@code type}.
     */
    static Object prim(Op.PrimFn fn, Object[] a, Ty type, ExecContext c) {
        Tensor x = null;
        TokenSet set = null, rows = null;
        double arg = 0;
        for (int i = 0; i < a.length; i++) {
            switch (fn.operands[i]) {
                case VALUES -> x = (Tensor) a[i];
                case SET -> {
                    if (set == null) set = (TokenSet) a[i];
                    else rows = (TokenSet) a[i];
                }
                case SCALAR -> arg = ((Tensor) a[i]).scalar();
            }
        }
        if (fn.setResult()) {
            int lanes = x.axes.contains(Axis.HEAD) ? x.dim(Axis.HEAD) : 1;
            return new TokenSet(Axis.TOKEN, Prims.set(fn, facts(c), lanes, perLane(x, lanes), arg), false);
        }
        Ty.Tensor out = (Ty.Tensor) type;
        if (fn == Op.PrimFn.MEMBER && set.queryHeads()) {
            // member(S) of a set per query head: [group, token], a row per query head of the one lane
            int n = c.lanes.getFirst().size();
            int[] sizes = new int[set.heads()];
            java.util.Arrays.fill(sizes, n);
            return new Tensor(out.elem(), out.axes(), new int[] {sizes.length, n}, Prims.joined(Prims.member(set.perHead(), sizes)));
        }
        int lanes = out.axes().contains(Axis.HEAD) ? c.lanes.size() : 1;
        double[][] r = Prims.values(fn, facts(c), lanes, x == null ? null : perLane(x, lanes), x != null && x.axes.contains(Axis.CHANNEL) ? x.dim(Axis.CHANNEL) : 1,
                set == null ? null : bits(set, c.lanes.size()), rows == null ? null : bits(rows, c.lanes.size()), arg);
        int[] dims = new int[out.axes().size()];
        for (int i = 0; i < dims.length; i++) dims[i] = out.axes().get(i) == Axis.HEAD ? lanes : r[0].length;
        return new Tensor(out.elem(), out.axes(), dims, Prims.joined(r));
    }

    /** A value over [head?, token, ...] as one slice per lane (the head axis leads). */
    private static double[][] perLane(Tensor x, int lanes) {
        if (lanes > 1 && x.axes.getFirst() != Axis.HEAD) throw new InterpreterException("a value over " + x.axes + " read per lane");
        return Prims.perLane(x.data, lanes);
    }

    /** A lane's compensation entry (its last, if any), or -1. */
    private static int compensation(LaneState l) {
        int n = l.size();
        return n > 0 && l.entries.get(n - 1).compensation ? n - 1 : -1;
    }

    /** The event's lanes as the primitives read them. */
    private static Prims.Lanes facts(ExecContext c) {
        return new Prims.Lanes() {
            public int count() {
                return c.lanes.size();
            }

            public int size(int lane) {
                return c.lanes.get(lane).size();
            }

            public int compensation(int lane) {
                return Semantics.compensation(c.lanes.get(lane));
            }

            public long position(int lane, int entry) {
                return c.lanes.get(lane).entries.get(entry).pos;
            }

            public int kvHead(int lane) {
                return c.lanes.get(lane).kvHead;
            }

            public long step() {
                return c.decodeStep;
            }

            public long layer() {
                return c.layer;
            }
        };
    }

    private static BitSet[] bits(TokenSet s, int lanes) {
        BitSet[] out = new BitSet[lanes];
        for (int h = 0; h < lanes; h++) out[h] = s.forHead(Math.min(h, s.heads() - 1));
        return out;
    }
}
