package dev.kvpc.compiler.check;

import dev.kvpc.compiler.ast.Arg;
import dev.kvpc.compiler.ast.Decl;
import dev.kvpc.compiler.ast.Expr;
import dev.kvpc.compiler.ast.Stmt;
import dev.kvpc.compiler.model.ModelShape;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;
import java.util.function.BiFunction;

/**
 * Evaluates expressions for one lane at compile time: parameters and the model shape are constants, {@code layer}
 * and {@code head} are the lane's, {@code len}, {@code context} and {@code step} stay symbolic, runtime data is
 * {@link Val#UNKNOWN}. What cannot be folded becomes an opaque atom of a {@link Lin} with a conservative range.
 */
final class Evaluator {
    static final double INF = Double.POSITIVE_INFINITY;

    private final ModelShape model;
    private final int layer, head;
    private final Map<String, Decl> decls;
    private final BiFunction<Expr.StringLit, Boolean, Val> tableLoader;
    /** Called with each top/bottom/first/last count expression and its value (for the negative-count check). */
    private final BiConsumer<Expr.Call, Val> onCount;
    /** Called with each integer sum, difference or product whose known value lies beyond 64 bits (it would wrap). */
    private final BiConsumer<Expr.Binary, Double> onOverflow;
    private int depth;

    Evaluator(ModelShape model, int layer, int head, Map<String, Decl> decls, BiFunction<Expr.StringLit, Boolean, Val> tableLoader,
              BiConsumer<Expr.Call, Val> onCount, BiConsumer<Expr.Binary, Double> onOverflow) {
        this.model = model;
        this.layer = layer;
        this.head = head;
        this.decls = decls;
        this.tableLoader = tableLoader;
        this.onCount = onCount;
        this.onOverflow = onOverflow;
    }

    int layer() { return layer; }

    int head() { return head; }

    Val eval(Expr e, Map<String, Val> env) {
        return switch (e) {
            case Expr.IntLit i -> Val.Num.of(i.value(), true);
            case Expr.FloatLit f -> Val.Num.of(f.value(), false);
            case Expr.BoolLit b -> new Val.Bool(b.value());
            case Expr.StringLit s -> new Val.Str(s.value(), s.span());
            case Expr.AllSet a -> new Val.SetV(len(), len(), Lin.of(0), true, null);
            case Expr.Compensation c -> new Val.SetV(Lin.of(1), Lin.of(0), Lin.of(1), false, null);
            case Expr.NameRef n -> name(n.name(), env);
            case Expr.Unary u -> {
                Val v = eval(u.operand(), env);
                if (u.op() == Expr.UnaryOp.NEG && v instanceof Val.Num n) yield new Val.Num(n.lin().scale(-1), n.isInt());
                if (u.op() == Expr.UnaryOp.NOT && v instanceof Val.Bool b) yield new Val.Bool(b.value() == null ? null : !b.value());
                yield Val.UNKNOWN;
            }
            case Expr.Binary b -> binary(b, env);
            case Expr.Conditional c -> {
                Val cond = eval(c.condition(), env);
                if (cond instanceof Val.Bool b && b.value() != null) yield eval(b.value() ? c.ifTrue() : c.ifFalse(), env);
                Val x = eval(c.ifTrue(), env), y = eval(c.ifFalse(), env);
                if (x instanceof Val.Num nx && y instanceof Val.Num ny) {
                    double lo = Math.min(nx.lin().lowerBound(), ny.lin().lowerBound());
                    double hi = Math.max(nx.lin().upperBound(), ny.lin().upperBound());
                    yield new Val.Num(Lin.atom("(" + nx.lin().show() + " ? " + ny.lin().show() + ")", lo, hi), nx.isInt() && ny.isInt());
                }
                if (x instanceof Val.SetV sx && y instanceof Val.SetV sy) {
                    yield new Val.SetV(opaqueMax(sx.max(), sy.max()), Lin.of(0), Lin.of(0), sx.nonEmpty() && sy.nonEmpty(), null);
                }
                yield Val.UNKNOWN;
            }
            case Expr.Cast c -> {
                Val v = eval(c.operand(), env);
                if (!(v instanceof Val.Num n)) yield Val.UNKNOWN;
                if (c.to() == Expr.ScalarKind.FLOAT) yield new Val.Num(n.lin(), false);
                if (n.known()) yield Val.Num.of(trunc(n.value()), true);
                yield new Val.Num(Lin.atom("int(" + n.lin().show() + ")", trunc(n.lin().lowerBound()), trunc(n.lin().upperBound())), true);
            }
            case Expr.Call call -> call(call, env);
        };
    }

    static double trunc(double v) {
        return Double.isInfinite(v) ? v : (double) (long) v;
    }

    private Lin len() {
        return Lin.atom("len", 0, INF);
    }

    private Val name(String n, Map<String, Val> env) {
        Val v = env.get(n);
        if (v != null) return v;
        return switch (n) {
            case "layer" -> Val.Num.of(layer, true);
            case "head" -> Val.Num.of(head, true);
            case "layers" -> Val.Num.of(model.layers(), true);
            case "heads" -> Val.Num.of(model.kvHeads(), true);
            case "group" -> Val.Num.of(model.group(), true);
            case "head_dim" -> Val.Num.of(model.headDim(), true);
            case "len" -> new Val.Num(len(), true);
            case "context" -> new Val.Num(Lin.atom("context", 0, INF), true);
            case "step" -> new Val.Num(Lin.atom("step", 0, INF), true);
            default -> Val.UNKNOWN;
        };
    }

    /** A table read where one number per lane is meant is the lane's own cell. */
    /**
     * The most entries {@code where(rank(s) < n)} can hold: ranks are distinct whole numbers from 0, so {@code n}
     * (one more for {@code <=} or a fractional bound), or {@code len} when {@code n} is not known; null when the
     * predicate is not such a comparison (and then nothing of it was evaluated).
     */
    private Lin rankBound(Expr p, Map<String, Val> env) {
        if (!(p instanceof Expr.Binary b)) return null;
        boolean strict = b.op() == Expr.BinaryOp.LT || b.op() == Expr.BinaryOp.GT;
        Expr r, n;
        switch (b.op()) {
            case LT, LE -> {
                r = b.left();
                n = b.right();
            }
            case GT, GE -> {
                r = b.right();
                n = b.left();
            }
            default -> {
                return null;
            }
        }
        if (!(r instanceof Expr.Call c && c.callee().text().equals("rank")) || decls.get("rank") != null) return null;
        eval(r, env);
        if (!(laneValue(eval(n, env)) instanceof Val.Num num)) return len();
        return strict && num.isInt() ? num.lin() : num.lin().plus(Lin.of(1));
    }

    /**
     * A reduction over {@code channel} of a channel table: the lane's row reduced, a lane constant (as specialisation
     * folds it), or null when the call is not one.
     */
    private Val channelRowReduction(String f, Expr.Call call, List<Expr> pos, Map<String, Val> env) {
        dev.kvpc.ir.Op.Red red = dev.kvpc.ir.Op.Red.of(f);
        if (red == null || call.over() == null || pos.size() != 1 || call.over().stream().noneMatch(n -> n.text().equals("channel"))) return null;
        // a name or the table itself: looked at without evaluating anything else twice
        Expr a = pos.get(0);
        Val v = a instanceof Expr.NameRef n ? name(n.name(), env) : a instanceof Expr.Call c && c.axis() != null ? eval(a, env) : null;
        if (!(v instanceof Val.Table t && t.channels()) || model == null) return null;
        int r = dev.kvpc.ir.Op.Table.channelRow(layer, head, model.kvHeads());
        if (r >= t.rows().length) return Val.UNKNOWN;
        return Val.Num.of(red.all(t.rows()[r]), false);
    }

    private Val laneValue(Val v) {
        if (v instanceof Val.Table t) {
            if (t.channels()) return Val.UNKNOWN;
            if (layer < t.rows().length && head < t.rows()[layer].length) return Val.Num.of(t.rows()[layer][head], false);
            return Val.UNKNOWN;
        }
        return v;
    }

    /** {@code v}, told to {@link #onOverflow} first when it is a known integer beyond 64 bits (the runtime's would wrap). */
    private Val inRange(Expr.Binary b, Val.Num v) {
        if (v.isInt() && v.lin().isConstant()) {
            double x = v.lin().constant();
            if (!(x >= -0x1p63 && x < 0x1p63)) onOverflow.accept(b, x);
        }
        return v;
    }

    private Val binary(Expr.Binary b, Map<String, Val> env) {
        Val l = eval(b.left(), env), r = eval(b.right(), env);
        switch (b.op()) {
            case ADD, SUB, INTERSECT -> {
                if (l instanceof Val.SetV sl && r instanceof Val.SetV sr) return setOp(b.op(), sl, sr);
            }
            case WITHIN -> {
                if (r instanceof Val.SetV sr) {
                    if (l instanceof Val.SetV sl) return setOp(Expr.BinaryOp.INTERSECT, sl, sr);
                    return new Val.Restricted(sr);
                }
                return Val.UNKNOWN;
            }
            default -> { }
        }
        l = laneValue(l);
        r = laneValue(r);
        if (l instanceof Val.Num nl && r instanceof Val.Num nr) {
            Lin a = nl.lin(), c = nr.lin();
            boolean ints = nl.isInt() && nr.isInt();
            switch (b.op()) {
                case ADD: return inRange(b, new Val.Num(a.plus(c), ints));
                case SUB: return inRange(b, new Val.Num(a.minus(c), ints));
                case MUL:
                    if (a.isConstant()) return inRange(b, new Val.Num(c.scale(a.constant()), ints));
                    if (c.isConstant()) return inRange(b, new Val.Num(a.scale(c.constant()), ints));
                    return new Val.Num(opaque("*", a, c, productRange(a, c)), ints);
                case DIV:
                    if (c.isConstant() && c.constant() != 0) return new Val.Num(a.scale(1.0 / c.constant()), false);
                    return new Val.Num(opaque("/", a, c, new double[] {-INF, INF}), false);
                case MOD:
                    if (a.isConstant() && c.isConstant() && c.constant() != 0) return Val.Num.of(a.constant() % c.constant(), ints);
                    return new Val.Num(opaque("%", a, c, new double[] {-INF, INF}), ints);
                case LT, LE, GT, GE, EQ, NE: {
                    if (!a.isConstant() || !c.isConstant()) return new Val.Bool(null);
                    double x = a.constant(), y = c.constant();
                    return new Val.Bool(switch (b.op()) {
                        case LT -> x < y;
                        case LE -> x <= y;
                        case GT -> x > y;
                        case GE -> x >= y;
                        case EQ -> x == y;
                        default -> x != y;
                    });
                }
                default: return Val.UNKNOWN;
            }
        }
        if (l instanceof Val.Bool bl && r instanceof Val.Bool br) {
            Boolean x = bl.value(), y = br.value();
            return switch (b.op()) {
                case AND -> new Val.Bool(Boolean.FALSE.equals(x) || Boolean.FALSE.equals(y) ? Boolean.FALSE : x == null || y == null ? null : true);
                case OR -> new Val.Bool(Boolean.TRUE.equals(x) || Boolean.TRUE.equals(y) ? Boolean.TRUE : x == null || y == null ? null : false);
                case EQ -> new Val.Bool(x == null || y == null ? null : x.equals(y));
                case NE -> new Val.Bool(x == null || y == null ? null : !x.equals(y));
                default -> Val.UNKNOWN;
            };
        }
        if (b.op().isComparison() || b.op() == Expr.BinaryOp.AND || b.op() == Expr.BinaryOp.OR) return new Val.Bool(null);
        return Val.UNKNOWN;
    }

    private static double[] productRange(Lin a, Lin c) {
        double[] xs = {a.lowerBound(), a.upperBound()}, ys = {c.lowerBound(), c.upperBound()};
        double lo = INF, hi = -INF;
        for (double x : xs) {
            for (double y : ys) {
                double p = x * y;
                if (Double.isNaN(p)) p = 0;
                lo = Math.min(lo, p);
                hi = Math.max(hi, p);
            }
        }
        return new double[] {lo, hi};
    }

    private static Lin opaque(String op, Lin a, Lin c, double[] range) {
        return Lin.atom("(" + a.show() + " " + op + " " + c.show() + ")", range[0], range[1]);
    }

    private static Lin opaqueMax(Lin a, Lin b) {
        if (a.isConstant() && b.isConstant()) return Lin.of(Math.max(a.constant(), b.constant()));
        return Lin.atom("max(" + a.show() + ", " + b.show() + ")", Math.max(a.lowerBound(), b.lowerBound()), Math.max(a.upperBound(), b.upperBound()));
    }

    private static Lin opaqueMin(Lin a, Lin b) {
        if (a.isConstant() && b.isConstant()) return Lin.of(Math.min(a.constant(), b.constant()));
        return Lin.atom("min(" + a.show() + ", " + b.show() + ")", Math.min(a.lowerBound(), b.lowerBound()), Math.min(a.upperBound(), b.upperBound()));
    }

    private static Lin smaller(Lin a, Lin b) {
        if (a.isConstant() && b.isConstant()) return Lin.of(Math.min(a.constant(), b.constant()));
        if (b.isConstant()) return b;
        return a;
    }

    private static Val setOp(Expr.BinaryOp op, Val.SetV a, Val.SetV b) {
        Val.SetV r = switch (op) {
            case ADD -> new Val.SetV(a.max().plus(b.max()), a.min(), a.protectedSize().plus(b.protectedSize()),
                    a.nonEmpty() || b.nonEmpty(), a.firstSinks() != null ? a.firstSinks() : b.firstSinks());
            case SUB -> new Val.SetV(a.max(), a.min().minus(b.max()), a.protectedSize(), false, a.firstSinks());
            default -> new Val.SetV(smaller(a.max(), b.max()), Lin.of(0), Lin.of(0), false, null);
        };
        return r;
    }

    private Val call(Expr.Call call, Map<String, Val> env) {
        String f = call.callee().text();
        List<Expr> pos = new ArrayList<>();
        for (Arg a : call.args()) if (a instanceof Arg.Positional p) pos.add(p.value());
        Decl d = decls.get(f);
        if (d instanceof Decl.Fn fn) return userFn(fn, pos, env);
        Val row = channelRowReduction(f, call, pos, env);
        if (row != null) return row;
        if (f.equals("max") || f.equals("min")) {
            if (call.over() != null || pos.size() != 2) {
                for (Expr e : pos) eval(e, env);
                return Val.UNKNOWN;
            }
            Val a = laneValue(eval(pos.get(0), env)), b = laneValue(eval(pos.get(1), env));
            if (a instanceof Val.Num na && b instanceof Val.Num nb && na.known() && nb.known()) {
                return Val.Num.of(f.equals("max") ? Math.max(na.value(), nb.value()) : Math.min(na.value(), nb.value()), na.isInt() && nb.isInt());
            }
            // one side known: the result is bounded by it (max(0, x) is never negative, min(x, 16) never above 16),
            // whatever the other side is; a side the checker cannot follow ranges over every number
            Val.Num known = a instanceof Val.Num na && na.known() ? na : b instanceof Val.Num nb && nb.known() ? nb : null;
            if (known != null) {
                Val other = known == a ? b : a;
                Lin lo = other instanceof Val.Num no ? no.lin() : Lin.atom("data", -INF, INF);
                boolean ints = known.isInt() && (!(other instanceof Val.Num no) || no.isInt());
                return new Val.Num(f.equals("max") ? opaqueMax(known.lin(), lo) : opaqueMin(known.lin(), lo), ints);
            }
            return Val.UNKNOWN;
        }
        Builtin builtin = Builtin.of(f);
        if (builtin == null) {
            for (Expr e : pos) eval(e, env);
            return Val.UNKNOWN;
        }
        return switch (builtin) {
            case FIRST, LAST -> {
                if (pos.size() != 1) yield Val.UNKNOWN;
                Val n = laneValue(eval(pos.get(0), env));
                onCount.accept(call, n);
                Lin count = n instanceof Val.Num nn ? nn.lin() : Lin.atom("count", 0, INF);
                boolean nonEmpty = count.lowerBound() >= 1;
                yield new Val.SetV(count, Lin.of(0), count, nonEmpty, f.equals("first") ? call.span() : null);
            }
            case TOP, BOTTOM -> {
                if (pos.size() != 2) yield Val.UNKNOWN;
                Val score = eval(pos.get(0), env);
                Val n = laneValue(eval(pos.get(1), env));
                onCount.accept(call, n);
                for (Arg a : call.args()) if (a instanceof Arg.PerHeadAtLeast ph) eval(ph.value(), env);
                Lin count = n instanceof Val.Num nn ? nn.lin() : Lin.atom("count", 0, INF);
                boolean nonEmpty = count.lowerBound() >= 1 && !(score instanceof Val.Restricted rs && !rs.to().nonEmpty());
                yield new Val.SetV(count, Lin.of(0), Lin.of(0), nonEmpty, null);
            }
            case WHERE -> {
                Lin most = pos.size() == 1 ? rankBound(pos.get(0), env) : null;
                if (most == null && pos.size() == 1) eval(pos.get(0), env);
                yield new Val.SetV(most != null ? most : len(), Lin.of(0), Lin.of(0), false, null);
            }
            case PAGES -> {
                Val p = pos.size() == 1 ? eval(pos.get(0), env) : Val.UNKNOWN;
                boolean nonEmpty = p instanceof Val.SetV sp && sp.nonEmpty();
                yield new Val.SetV(len(), Lin.of(0), Lin.of(0), nonEmpty, null);
            }
            case TABLE -> {
                if (pos.size() == 1 && pos.get(0) instanceof Expr.StringLit s) yield tableLoader.apply(s, call.axis() != null);
                yield Val.UNKNOWN;
            }
            case QUANTILE -> {
                if (pos.size() != 2 || call.over() != null) yield Val.UNKNOWN;
                Val x = eval(pos.get(0), env), p = eval(pos.get(1), env);
                if (x instanceof Val.Table t && p instanceof Val.Num np && np.known()) yield Val.Num.of(quantile(t.rows(), np.value()), false);
                yield Val.UNKNOWN;
            }
            case STRATA -> {
                if (pos.size() != 2) yield Val.UNKNOWN;
                Val score = eval(pos.get(0), env);
                Val n = laneValue(eval(pos.get(1), env));
                onCount.accept(call, n);
                // at most n entries, one per stratum; at least one when n >= 1 and the lane has a candidate
                Lin count = n instanceof Val.Num nn ? nn.lin() : Lin.atom("count", 0, INF);
                boolean nonEmpty = count.lowerBound() >= 1 && !(score instanceof Val.Restricted rs && !rs.to().nonEmpty());
                yield new Val.SetV(count, Lin.of(0), Lin.of(0), nonEmpty, null);
            }
            case SHARE -> {
                // a part of a total: between 0 and the total (a negative total's parts are negative), one symbol per
                // total and weights (so a let bound to it, or the same call written twice, cancels in a budget check);
                // the parts of all cells add up to at most the total
                if (pos.size() != 2) yield Val.UNKNOWN;
                Val t = laneValue(eval(pos.get(0), env));
                double hi = t instanceof Val.Num nt ? Math.max(0, nt.lin().upperBound()) : INF;
                double lo = t instanceof Val.Num nt ? Math.min(0, nt.lin().lowerBound()) : -INF;
                String w = pos.get(1) instanceof Expr.NameRef n ? n.name() : "?";
                String total = t instanceof Val.Num nt ? nt.lin().show() : "?";
                yield new Val.Num(Lin.atom("share(" + total + ", " + w + ")", lo, hi), true);
            }
            case COUNT -> {
                // a number of entries: unknown, never negative (its own symbol, so count(A) - count(B) is not 0)
                for (Expr e : pos) eval(e, env);
                yield new Val.Num(Lin.atom("count@" + call.span().file() + ":" + call.span().start(), 0, INF), true);
            }
            // not known at compile time: their arguments are still checked for counts
            case MAXPOOL, AVGPOOL, POW, ABS, EXP, LOG, SQRT, TANH, SIGMOID, DOT, SLOPE, RANK, MEMBER, UNIFORM, GUMBEL, MAXCOS, MAXDOT -> {
                for (Expr e : pos) eval(e, env);
                yield Val.UNKNOWN;
            }
        };
    }

    /** The {@code p} quantile of a table's values ({@link dev.kvpc.ir.Op.Quantile#of}, the rule every engine uses). */
    static double quantile(double[][] rows, double p) {
        return dev.kvpc.ir.Op.Quantile.of(Arrays.stream(rows).flatMapToDouble(Arrays::stream).toArray(), p);
    }

    private Val userFn(Decl.Fn fn, List<Expr> args, Map<String, Val> env) {
        if (args.size() != fn.params().size() || depth > 32) return Val.UNKNOWN;
        Map<String, Val> inner = new HashMap<>();
        for (int i = 0; i < args.size(); i++) inner.put(fn.params().get(i).name().text(), eval(args.get(i), env));
        depth++;
        try {
            for (Stmt.Let l : fn.lets()) inner.put(l.name().text(), eval(l.value(), inner));
            Val r = eval(fn.result(), inner);
            if (r instanceof Val.Num n && fn.returnType().name().equals("int") && n.known()) return Val.Num.of(trunc(n.value()), true);
            return r;
        } finally {
            depth--;
        }
    }
}
