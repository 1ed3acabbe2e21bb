package dev.kvpc.gpu.policy;

import dev.kvpc.gpu.kernels.ScalarFns;
import dev.kvpc.ir.Op;
import dev.kvpc.ir.Ty;
import dev.kvpc.ir.loop.Loop;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * A loop nest of a policy kernel (the loop IR's {@code for}, with its assignments, accumulations and conditions) as
 * one kernel in kernel IR text, computing in double as the JVM backend does. Buffers are {@code b<id>}, extents
 * {@code x_<symbol>}, loop variables {@code v_<name>}.
 *
 * <p>Where one loop variable splits the nest's writes (every write to a buffer, and every read of a buffer the nest
 * writes, has that variable at the same index position, and its bounds use no other loop variable), a work-item runs
 * each of its values and the rest of the nest in order; the loops outside it in the nest move inside (its bounds do
 * not depend on them). Each cell is then computed by one work-item with the same operations in the same order as the
 * JVM's loops: the same bits. A nest with no such variable runs whole on one work-item.
 */
public final class NestLowering {
    private static final ScalarFns F = ScalarFns.DOUBLE;

    /** The nest as a kernel: its text, the buffers it reads and writes, the extents it takes, and how it is launched. */
    public record Nest(String name, String text, List<Integer> buffers, Set<Integer> written, List<String> extents, Loop.For parallel) {
        /** Whether work-items split the nest (else one work-item runs it). */
        public boolean split() {
            return parallel != null;
        }
    }

    private final Map<Integer, List<Loop.Dim>> dims;
    private final Map<Integer, Ty.Elem> elems;
    private final Set<Integer> buffers = new TreeSet<>();
    private final Set<String> extents = new TreeSet<>();

    private NestLowering(Map<Integer, List<Loop.Dim>> dims, Map<Integer, Ty.Elem> elems) {
        this.dims = dims;
        this.elems = elems;
    }

    /** {@code nest} as kernel {@code name}; {@code dims} and {@code elems} give every buffer's shape and element type. */
    public static Nest lower(String name, Loop.For nest, Map<Integer, List<Loop.Dim>> dims, Map<Integer, Ty.Elem> elems) {
        NestLowering l = new NestLowering(dims, elems);
        Set<Integer> written = new TreeSet<>();
        writes(List.of(nest), written);
        Loop.For par = parallel(nest, written);
        StringBuilder body = new StringBuilder();
        if (par != null) {
            body.append("  let int v_").append(par.var()).append(" = (lo + global_id(0));\n");
            body.append("  if (global_id(0) < n) {\n");
            l.block(List.of(without(nest, par)), body, 2);
            body.append("  }\n");
        } else {
            l.block(List.of(nest), body, 1);
        }
        List<String> params = new ArrayList<>();
        for (int b : l.buffers) params.add((written.contains(b) ? "out " : "") + "buffer double b" + b);
        for (String x : l.extents) params.add("int x_" + x);
        if (par != null) {
            params.add("int lo");
            params.add("int n");
        }
        String text = "kernel " + name + " (" + String.join(", ", params) + ") {\n" + body + "}\n";
        return new Nest(name, text, List.copyOf(l.buffers), written, List.copyOf(l.extents), par);
    }

    // ------------------------------------------------------------------------------------------ which loop splits

    /**
     * The loop of the nest's perfect prefix ({@code nest}, its only statement if that is a loop, and so on) whose
     * variable splits the writes, outermost first; null if none does.
     */
    static Loop.For parallel(Loop.For nest, Set<Integer> written) {
        // its bounds use no loop variable (the host evaluates them, and moving the loops outside it inward keeps them)
        for (Loop.For f = nest; f != null; f = f.body().size() == 1 && f.body().getFirst() instanceof Loop.For g ? g : null) {
            if (!hasVar(f.from()) && !hasVar(f.to()) && splits(nest, f.var(), written)) return f;
        }
        return null;
    }

    /** Whether every write, and every read of a written buffer, has {@code var} alone at one index position per buffer. */
    private static boolean splits(Loop.For nest, String var, Set<Integer> written) {
        Map<Integer, Integer> position = new java.util.HashMap<>();
        return accesses(List.of(nest), var, written, position);
    }

    private static boolean accesses(List<Loop.Stmt> body, String var, Set<Integer> written, Map<Integer, Integer> position) {
        for (Loop.Stmt s : body) {
            boolean ok = switch (s) {
                case Loop.For f -> reads(f.from(), var, written, position) && reads(f.to(), var, written, position) && accesses(f.body(), var, written, position);
                case Loop.Assign a -> at(a.buf(), a.index(), var, position) && a.index().stream().allMatch(e -> reads(e, var, written, position))
                        && reads(a.value(), var, written, position);
                case Loop.Accumulate a -> at(a.buf(), a.index(), var, position) && a.index().stream().allMatch(e -> reads(e, var, written, position))
                        && reads(a.value(), var, written, position);
                case Loop.If i -> reads(i.cond(), var, written, position) && accesses(i.then(), var, written, position)
                        && accesses(i.otherwise(), var, written, position);
                default -> false;
            };
            if (!ok) return false;
        }
        return true;
    }

    /** Whether buffer {@code buf} indexed by {@code index} has {@code var} alone at the position recorded for it. */
    private static boolean at(int buf, List<Loop.Expr> index, String var, Map<Integer, Integer> position) {
        Integer p = position.get(buf);
        if (p != null) return p < index.size() && index.get(p) instanceof Loop.Var v && v.name().equals(var);
        for (int i = 0; i < index.size(); i++) {
            if (index.get(i) instanceof Loop.Var v && v.name().equals(var)) {
                position.put(buf, i);
                return true;
            }
        }
        return false;
    }

    private static boolean reads(Loop.Expr e, String var, Set<Integer> written, Map<Integer, Integer> position) {
        return switch (e) {
            case Loop.Load l -> (!written.contains(l.buf()) || at(l.buf(), l.index(), var, position))
                    && l.index().stream().allMatch(x -> reads(x, var, written, position));
            case Loop.Un u -> reads(u.x(), var, written, position);
            case Loop.Bin b -> reads(b.a(), var, written, position) && reads(b.b(), var, written, position);
            case Loop.Choose c -> reads(c.cond(), var, written, position) && reads(c.a(), var, written, position) && reads(c.b(), var, written, position);
            default -> true;
        };
    }

    /** The nest without loop {@code par}: its body in its place. */
    private static Loop.Stmt without(Loop.For nest, Loop.For par) {
        if (nest == par) return par.body().size() == 1 ? par.body().getFirst() : new Loop.If(new Loop.Const(1L), par.body(), List.of());
        return new Loop.For(nest.var(), nest.from(), nest.to(), List.of(without((Loop.For) nest.body().getFirst(), par)));
    }

    static void writes(List<Loop.Stmt> body, Set<Integer> out) {
        for (Loop.Stmt s : body) {
            switch (s) {
                case Loop.For f -> writes(f.body(), out);
                case Loop.Assign a -> out.add(a.buf());
                case Loop.Accumulate a -> out.add(a.buf());
                case Loop.If i -> {
                    writes(i.then(), out);
                    writes(i.otherwise(), out);
                }
                default -> throw new IllegalArgumentException("a loop nest holds only loops, assignments, accumulations and conditions, not " + s);
            }
        }
    }

    static boolean hasVar(Loop.Expr e) {
        return switch (e) {
            case Loop.Var v -> true;
            case Loop.Load l -> l.index().stream().anyMatch(NestLowering::hasVar);
            case Loop.Un u -> hasVar(u.x());
            case Loop.Bin b -> hasVar(b.a()) || hasVar(b.b());
            case Loop.Choose c -> hasVar(c.cond()) || hasVar(c.a()) || hasVar(c.b());
            default -> false;
        };
    }

    // ------------------------------------------------------------------------------------------ text

    /** Lets the statement being written needs first (operands named once, not repeated in the text). */
    private StringBuilder lets;
    private String letIndent;
    private int temps;
    /** Inside a choice's branch: nothing is hoisted (a branch not taken must not be evaluated: it may index out of range). */
    private int lazy;

    private void block(List<Loop.Stmt> body, StringBuilder sb, int depth) {
        String ind = "  ".repeat(depth);
        StringBuilder outerLets = lets;
        String outerIndent = letIndent;
        for (Loop.Stmt s : body) {
            StringBuilder mine = new StringBuilder(), line = new StringBuilder();
            lets = mine;
            letIndent = ind;
            stmt(s, line, depth, ind);
            sb.append(mine).append(line);
        }
        lets = outerLets;
        letIndent = outerIndent;
    }

    private void stmt(Loop.Stmt s, StringBuilder sb, int depth, String ind) {
        {
            switch (s) {
                case Loop.For f -> {
                    sb.append(ind).append("for v_").append(f.var()).append(" = ").append(intExpr(f.from())).append(" to ").append(intExpr(f.to())).append(" step 1 {\n");
                    block(f.body(), sb, depth + 1);
                    sb.append(ind).append("}\n");
                }
                case Loop.Assign a -> {
                    String v = expr(a.value());
                    // an int buffer keeps a whole number: (long) of what any operation but a division gives, as the JVM's D2L
                    if (elems.get(a.buf()) == Ty.Elem.INT && a.value() instanceof Loop.Bin b && b.fn() != Op.Fn2.DIV) v = F.fn1(Op.Fn1.TO_INT, v);
                    sb.append(ind).append("store b").append(a.buf()).append('[').append(index(a.buf(), a.index())).append("] = ").append(v).append(";\n");
                }
                case Loop.Accumulate a -> {
                    String cell = "b" + a.buf() + "[" + index(a.buf(), a.index()) + "]";
                    Op.Fn2 fold = switch (a.op()) {
                        case SUM -> Op.Fn2.ADD;
                        case MAX -> Op.Fn2.MAX;
                        case MIN -> Op.Fn2.MIN;
                        default -> throw new IllegalStateException("accumulation by " + a.op());
                    };
                    sb.append(ind).append("store ").append(cell).append(" = ").append(F.fn2(fold, cell, expr(a.value()))).append(";\n");
                }
                case Loop.If i -> {
                    sb.append(ind).append("if ").append(truth(expr(i.cond()))).append(" {\n");
                    block(i.then(), sb, depth + 1);
                    sb.append(ind).append('}');
                    if (!i.otherwise().isEmpty()) {
                        sb.append(" else {\n");
                        block(i.otherwise(), sb, depth + 1);
                        sb.append(ind).append('}');
                    }
                    sb.append('\n');
                }
                default -> throw new IllegalArgumentException("a loop nest holds only loops, assignments, accumulations and conditions, not " + s);
            }
        }
    }

    /** A value taken as a condition, as the JVM's {@code dcmpl} with 0 then {@code ifeq} does: NaN is true. */
    private static String truth(String v) {
        return "(" + v + " != 0.0d)";
    }

    /**
     * {@code text} as an operand: itself when it is a name, a literal or a load, else a {@code let} before the
     * statement (the scalar functions' text repeats operands; naming them keeps the kernel's size linear).
     */
    private String named(String text) {
        if (lazy > 0 || text.matches("[A-Za-z_][A-Za-z0-9_]*|-?[0-9][0-9.E+-]*d|-?infd|b[0-9]+\\[[^\\[\\]]*\\]")) return text;
        String name = "e" + temps++;
        lets.append(letIndent).append("let double ").append(name).append(" = ").append(text).append(";\n");
        return name;
    }

    private String index(int buf, List<Loop.Expr> index) {
        buffers.add(buf);
        List<Loop.Dim> ds = dims.get(buf);
        if (ds == null) throw new IllegalStateException("%" + buf + " has no shape");
        if (ds.size() != index.size()) throw new IllegalStateException("%" + buf + " has " + ds.size() + " axes, indexed by " + index.size());
        if (index.isEmpty()) return "0";
        String s = intExpr(index.getFirst());
        for (int i = 1; i < index.size(); i++) s = "((" + s + " * " + extent(ds.get(i)) + ") + " + intExpr(index.get(i)) + ")";
        return s;
    }

    private String extent(Loop.Dim d) {
        if (d.symbol() == null) return Long.toString(d.value());
        extents.add(d.symbol());
        return "x_" + d.symbol();
    }

    private String intExpr(Loop.Expr e) {
        if (e instanceof Loop.Var v) return "v_" + v.name();
        if (e instanceof Loop.Extent x) return extent(x.dim());
        return "int(" + expr(e) + ")";
    }

    private String expr(Loop.Expr e) {
        return switch (e) {
            case Loop.Const c -> F.lit(switch (c.value()) {
                case Long l -> (double) l;
                case Double d -> d;
                case Integer i -> (double) i;
                case Boolean b -> b ? 1.0 : 0.0;
                default -> throw new IllegalArgumentException("constant " + c.value());
            });
            case Loop.Var v -> "double(v_" + v.name() + ")";
            case Loop.Extent x -> "double(" + extent(x.dim()) + ")";
            case Loop.Load l -> "b" + l.buf() + "[" + index(l.buf(), l.index()) + "]";
            case Loop.Un u -> F.fn1(u.fn(), named(expr(u.x())));
            case Loop.Bin b -> F.fn2(b.fn(), named(expr(b.a())), named(expr(b.b())));
            case Loop.Choose c -> {
                String cond = truth(named(expr(c.cond())));
                lazy++;
                String a = expr(c.a()), b = expr(c.b());
                lazy--;
                yield "select(" + cond + ", " + a + ", " + b + ")";
            }
        };
    }
}
