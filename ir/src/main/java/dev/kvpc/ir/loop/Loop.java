package dev.kvpc.ir.loop;

import dev.kvpc.ir.Axis;
import dev.kvpc.ir.Instr;
import dev.kvpc.ir.Op;
import dev.kvpc.ir.Signal;
import dev.kvpc.ir.Ty;

import java.util.List;

/**
 * The loop-level IR: what backends emit code from. Tensors become buffers with symbolic extents ({@code len},
 * {@code head_dim}, {@code group}, {@code query}, {@code pages}, {@code heads}, or a number); elementwise ops,
 * reductions and pooling become explicit loop nests over scalar expressions; the runtime binds signals and state to
 * buffers; set primitives (ranking, ranges, set algebra) and effects stay whole operations, since each backend has
 * its own best algorithm for them (the selection pass already chose one per rank).
 */
public final class Loop {
    private Loop() {}

    /** A lane class's handlers and computations, each a kernel. */
    public record Program(String policy, List<Kernel> kernels) {
        public Program {
            kernels = List.copyOf(kernels);
        }
    }

    /** One entry point: a handler body, its limit, or a state initialiser; {@code result} is -1 or the buffer returned. */
    /** {@code origin}: the source of the handler it comes from ({@code h2o.kvp:12}), or null. */
    public record Kernel(String name, List<Stmt> body, int result, String origin) {
        public Kernel(String name, List<Stmt> body, int result) {
            this(name, body, result, null);
        }

        public Kernel {
            body = List.copyOf(body);
        }
    }

    /** An extent: a symbolic size of the lane or the model, or a constant. */
    public record Dim(String symbol, long value) {
        public Dim {
            if (symbol == null && value < 0) throw new IllegalArgumentException("negative extent");
        }

        public static Dim of(long v) {
            return new Dim(null, v);
        }

        public static Dim sym(String s) {
            return new Dim(s, -1);
        }

        public String show() {
            return symbol != null ? symbol : Long.toString(value);
        }
    }

    public sealed interface Stmt {}

    /** A buffer {@code %id} of {@code elem} over {@code dims} (no dims: a scalar). */
    public record Alloc(int id, Ty.Elem elem, List<Dim> dims) implements Stmt {
        public Alloc {
            dims = List.copyOf(dims);
        }
    }

    /**
     * {@code %id} is the runtime's buffer for what {@code source} reads: a signal, a state or a fused kernel
     * statistic (a parameter or a table only when not specialised away, which running refuses).
     */
    public record Bind(int id, Op source, Ty type) implements Stmt {
        public Bind {
            if (!(source instanceof Op.Signal || source instanceof Op.StateRead || source instanceof Op.KernelStat
                    || source instanceof Op.ModelStat || source instanceof Op.Param || source instanceof Op.Table || source instanceof Op.Vector)) {
                throw new IllegalArgumentException("a bind reads a signal, state, kernel statistic, vector constant, parameter or table, not " + source);
            }
        }

        /** Its kind in the loop text: signal, state, kernelstat, param or table. */
        public String kind() {
            return switch (source) {
                case Op.Signal s -> "signal";
                case Op.StateRead s -> "state";
                case Op.KernelStat k -> "kernelstat";
                case Op.ModelStat m -> "modelstat";
                case Op.Param p -> "param";
                case Op.Vector v -> "vector";
                default -> "table";
            };
        }

        /** What it reads in the loop text: a name, or a kernel statistic as {@code signal:fn:axis+axis}. */
        public String what() {
            return switch (source) {
                case Op.Signal s -> s.signal().word();
                case Op.StateRead s -> s.name();
                case Op.KernelStat k -> k.input().word() + ":" + k.fn().word() + ":" + String.join("+", k.over().stream().map(Axis::word).toList());
                case Op.ModelStat m -> m.stat().word() + ":" + m.state() + ":" + String.join("+", m.over().stream().map(Axis::word).toList());
                case Op.Param p -> p.name();
                case Op.Table t -> t.file();
                case Op.Vector v -> dev.kvpc.ir.IrPrinter.vectorText(v).replace(", ", ",").replace(' ', ',');
                default -> throw new IllegalStateException();
            };
        }

        /** The source a loop text's kind and what name (the inverse of {@link #kind} and {@link #what}). */
        public static Op source(String kind, String what) {
            return switch (kind) {
                case "signal" -> new Op.Signal(signal(what));
                case "state" -> new Op.StateRead(what);
                case "kernelstat" -> {
                    String[] p = what.split(":");
                    List<Axis> over = new java.util.ArrayList<>();
                    for (String a : p[2].split("\\+")) over.add(Axis.of(a));
                    yield new Op.KernelStat(signal(p[0]), Op.Red.valueOf(p[1].toUpperCase(java.util.Locale.ROOT)), over);
                }
                case "modelstat" -> {
                    String[] p = what.split(":");
                    List<Axis> over = new java.util.ArrayList<>();
                    for (String a : p[2].split("\\+")) over.add(Axis.of(a));
                    yield new Op.ModelStat(Op.CellStat.valueOf(p[0].toUpperCase(java.util.Locale.ROOT)), p[1], over);
                }
                case "param" -> new Op.Param(what);
                case "table" -> new Op.Table(what);
                case "vector" -> dev.kvpc.ir.IrParser.vector(what.split(","), 0);
                default -> throw new IllegalArgumentException("unknown bind kind " + kind);
            };
        }

        private static Signal signal(String word) {
            Signal s = Signal.of(word);
            if (s == null) throw new IllegalArgumentException("unknown signal " + word);
            return s;
        }
    }

    /** {@code for var in from..to { body }} (to exclusive). */
    public record For(String var, Expr from, Expr to, List<Stmt> body) implements Stmt {
        public For {
            body = List.copyOf(body);
        }
    }

    /** {@code %buf[index] = value}. */
    public record Assign(int buf, List<Expr> index, Expr value) implements Stmt {
        public Assign {
            index = List.copyOf(index);
        }
    }

    /** {@code %buf[index] op= value} with op sum, max or min. */
    public record Accumulate(int buf, List<Expr> index, Op.Red op, Expr value) implements Stmt {
        public Accumulate {
            index = List.copyOf(index);
            if (op != Op.Red.SUM && op != Op.Red.MAX && op != Op.Red.MIN) throw new IllegalArgumentException("accumulate with " + op);
        }
    }

    /** A whole-set operation, as the tensor IR op that defines {@code id} (operands are buffer ids). */
    public record SetPrim(int id, Ty type, Op op) implements Stmt {}

    /** An effect on the lane, as in the tensor IR (operands are buffer ids). */
    public record Effect(Instr effect) implements Stmt {
        public Effect {
            if (effect instanceof Instr.Def || effect instanceof Instr.If) throw new IllegalArgumentException("not an effect: " + effect);
        }
    }

    public record If(Expr cond, List<Stmt> then, List<Stmt> otherwise) implements Stmt {
        public If {
            then = List.copyOf(then);
            otherwise = List.copyOf(otherwise);
        }
    }

    /** Scalar expressions. */
    public sealed interface Expr {}

    public record Const(Object value) implements Expr {}

    public record Var(String name) implements Expr {}

    /** The extent of a dimension, as a value. */
    public record Extent(Dim dim) implements Expr {}

    public record Load(int buf, List<Expr> index) implements Expr {
        public Load {
            index = List.copyOf(index);
        }
    }

    public record Un(Op.Fn1 fn, Expr x) implements Expr {}

    public record Bin(Op.Fn2 fn, Expr a, Expr b) implements Expr {}

    public record Choose(Expr cond, Expr a, Expr b) implements Expr {}
}
