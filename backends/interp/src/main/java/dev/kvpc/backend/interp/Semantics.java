package dev.kvpc.backend.interp;

import dev.kvpc.ir.*;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.Comparator;
import java.util.List;

/**
 * What each IR op computes, on {@link Tensor}s and {@link TokenSet}s. The rules a reader needs:
 * <ul>
 *   <li>elementwise ops broadcast by axis name; ints stay ints (division gives a float);</li>
 *   <li>{@code within(x, S)}: x with entries outside S set to NaN, which never rank;</li>
 *   <li>{@code rank top|bottom(score, n)}: the n best non-NaN candidates; ties go to the later position (higher
 *       index), then the lower head; with a floor, each head first gets its best {@code floor}, the rest is filled
 *       globally; the compensation entry never ranks;</li>
 *   <li>{@code pool}: a window of {@code kernel} entries centred on each (clipped at the ends), max or mean over
 *       the entries inside;</li>
 *   <li>{@code quantile}: linear interpolation between order statistics.</li>
 * </ul>
 */
final class Semantics {
    private Semantics() {}

    static Object eval(Op op, Ty type, Object[] a, ExecContext c) {
        return switch (op) {
            case Op.Const k -> Tensor.scalar(((Ty.Tensor) type).elem(), Interpreter.toDouble(k.value()));
            case Op.Param p -> throw new InterpreterException("parameter " + p.name() + " was not specialised");
            case Op.Table t -> throw new InterpreterException("table " + t.file() + " was not specialised");
            case Op.Signal s -> c.signal(s.name());
            case Op.StateRead s -> c.readState(s.name());
            case Op.Map1 m -> {
                Tensor x = (Tensor) a[0];
                Ty.Elem e = ((Ty.Tensor) type).elem();
                yield Tensor.map1(x, e, v -> m.fn().apply(v));
            }
            case Op.Map2 m -> {
                Ty.Elem e = ((Ty.Tensor) type).elem();
                yield Tensor.map2((Tensor) a[0], (Tensor) a[1], e, (x, y) -> {
                    double r = m.fn().apply(x, y);
                    return e == Ty.Elem.INT && m.fn() != Op.Fn2.DIV ? (double) (long) r : r;
                });
            }
            case Op.Choose ch -> {
                if (a[1] instanceof TokenSet x && a[2] instanceof TokenSet y) yield ((Tensor) a[0]).scalar() != 0 ? x : y;
                yield Tensor.mapN(((Ty.Tensor) type).elem(), new Tensor[] {(Tensor) a[0], (Tensor) a[1], (Tensor) a[2]}, v -> v[0] != 0 ? v[1] : v[2]);
            }
            case Op.Reduce r -> reduce(r.fn(), (Tensor) a[0], r.over(), ((Ty.Tensor) type).elem());
            case Op.KernelStat k -> reduce(k.fn(), (Tensor) c.signal(k.signal()), k.over(), ((Ty.Tensor) type).elem());
            case Op.Pool p -> pool(p.fn(), (Tensor) a[0], (int) ((Tensor) a[1]).scalar(), p.along());
            case Op.Quantile q -> quantile((Tensor) a[0], ((Tensor) a[1]).scalar(), q.over());
            case Op.Dot d -> reduce(Op.Red.SUM, Tensor.map2((Tensor) a[0], (Tensor) a[1], Ty.Elem.FLOAT, (x, y) -> x * y), List.of(Axis.CHANNEL), Ty.Elem.FLOAT);
            case Op.Slope s -> throw new InterpreterException("slope outside an attention variant");
            case Op.Rank r -> rank(r, a[0], (long) ((Tensor) a[1]).scalar(), r.floor() >= 0 ? (long) ((Tensor) a[2]).scalar() : -1, (Ty.SetTy) type, c);
            case Op.Range r -> c.range(r.end(), (long) ((Tensor) a[0]).scalar());
            case Op.All x -> c.all();
            case Op.Compensation x -> c.compensation();
            case Op.Where w -> where((Tensor) a[0]);
            case Op.Pages p -> c.pages((TokenSet) a[0]);
            case Op.SetOp s -> {
                TokenSet x = (TokenSet) a[0], y = (TokenSet) a[1];
                yield switch (s.fn()) {
                    case UNION -> TokenSet.combine(x, y, (p, q) -> {
                        p.or(q);
                        return p;
                    }, x.compensation() || y.compensation());
                    case DIFF -> TokenSet.combine(x, y, (p, q) -> {
                        p.andNot(q);
                        return p;
                    }, x.compensation() && !y.compensation());
                    case INTER -> TokenSet.combine(x, y, (p, q) -> {
                        p.and(q);
                        return p;
                    }, x.compensation() && y.compensation());
                };
            }
            case Op.Within w -> {
                TokenSet s = (TokenSet) a[1];
                if (a[0] instanceof TokenSet x) {
                    yield TokenSet.combine(x, s, (p, q) -> {
                        p.and(q);
                        return p;
                    }, false);
                }
                Tensor x = (Tensor) a[0];
                double[][] sl = x.slices(Axis.TOKEN);
                int heads = x.axes.contains(Axis.HEAD) ? x.dim(Axis.HEAD) : 1;
                int per = sl.length / heads;
                for (int i = 0; i < sl.length; i++) {
                    BitSet b = s.forHead(Math.min(i / Math.max(1, per), s.heads() - 1));
                    for (int t = 0; t < sl[i].length; t++) if (!b.get(t)) sl[i][t] = Double.NaN;
                }
                yield x.fromSlices(Axis.TOKEN, sl, x.elem);
            }
        };
    }

    /** A reduction by its rule ({@link Op.Red}: identity, fold, finish). */
    static Tensor reduce(Op.Red fn, Tensor x, List<Axis> over, Ty.Elem out) {
        return Tensor.reduce(x, over, out, fn.identity(), fn::fold, fn::finish);
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

    static Tensor quantile(Tensor x, double p, List<Axis> over) {
        if (!over.isEmpty()) throw new InterpreterException("quantile over some axes is not supported by the interpreter");
        double[] all = x.data.clone();
        java.util.Arrays.sort(all);
        if (all.length == 0) return Tensor.scalar(Ty.Elem.FLOAT, Double.NaN);
        double q = Math.max(0, Math.min(1, p)) * (all.length - 1);
        int lo = (int) Math.floor(q), hi = (int) Math.ceil(q);
        return Tensor.scalar(Ty.Elem.FLOAT, all[lo] + (all[hi] - all[lo]) * (q - lo));
    }

    static TokenSet where(Tensor pred) {
        double[][] sl = pred.slices(Axis.TOKEN);
        BitSet[] out = new BitSet[sl.length];
        for (int i = 0; i < sl.length; i++) {
            out[i] = new BitSet();
            for (int t = 0; t < sl[i].length; t++) if (sl[i][t] != 0) out[i].set(t);
        }
        return new TokenSet(Axis.TOKEN, out, false);
    }

    private record Candidate(int head, int index, double score) {}

    static TokenSet rank(Op.Rank r, Object scoreObj, long count, long floor, Ty.SetTy type, ExecContext c) {
        if (scoreObj instanceof TokenSet) throw new InterpreterException("rank of a set");
        Tensor score = (Tensor) scoreObj;
        Axis domain = type.domain();
        boolean top = r.order() == Op.Order.TOP;
        int heads = score.axes.contains(Axis.HEAD) ? score.dim(Axis.HEAD) : 1;
        double[][] sl = score.slices(domain);
        if (sl.length != heads) throw new InterpreterException("rank score has axes " + score.axes + " beyond head and " + domain.word());
        List<Candidate> cands = new ArrayList<>();
        for (int h = 0; h < heads; h++) {
            LaneState lane = domain == Axis.TOKEN ? c.lanes.get(Math.min(h, c.lanes.size() - 1)) : null;
            for (int t = 0; t < sl[h].length; t++) {
                if (Double.isNaN(sl[h][t])) continue;
                if (lane != null && lane.entries.get(t).compensation) continue;
                cands.add(new Candidate(h, t, sl[h][t]));
            }
        }
        Comparator<Candidate> best = Comparator.comparingDouble((Candidate x) -> top ? -x.score : x.score)
                .thenComparing(Comparator.comparingInt((Candidate x) -> x.index).reversed())
                .thenComparingInt(x -> x.head);
        cands.sort(best);
        BitSet[] out = new BitSet[heads];
        for (int h = 0; h < heads; h++) out[h] = new BitSet();
        long left = Math.max(0, count);
        List<Candidate> rest = new ArrayList<>(cands);
        if (floor > 0) {
            int[] given = new int[heads];
            List<Candidate> remaining = new ArrayList<>();
            for (Candidate x : cands) {
                if (given[x.head] < floor && left > 0) {
                    out[x.head].set(x.index);
                    given[x.head]++;
                    left--;
                } else {
                    remaining.add(x);
                }
            }
            rest = remaining;
        }
        for (Candidate x : rest) {
            if (left <= 0) break;
            out[x.head].set(x.index);
            left--;
        }
        return new TokenSet(domain, out, false);
    }
}
