package dev.kvpc.gpu.kir;

import java.util.List;
import java.util.Objects;

/** A kernel IR expression: a value of one work-item. */
public sealed interface Expr {
    /** A literal: an int, a float or a double (finite or infinite, never NaN), or a bool (0 or 1). */
    record Lit(KType type, double value) implements Expr {
        public Lit {
            Objects.requireNonNull(type);
            if (type != KType.INT && type != KType.FLOAT && type != KType.DOUBLE && type != KType.BOOL) {
                throw new IllegalArgumentException("a literal is int, float, double or bool");
            }
            if (Double.isNaN(value)) throw new IllegalArgumentException("a NaN literal");
            if (type == KType.INT && (value != Math.rint(value) || value < Integer.MIN_VALUE || value > Integer.MAX_VALUE)) {
                throw new IllegalArgumentException("int literal " + value);
            }
            if (type == KType.FLOAT && !Double.isInfinite(value) && (double) (float) value != value) {
                throw new IllegalArgumentException("float literal " + value + " is not a float");
            }
        }
    }

    /** A variable, a loop index, a scalar parameter or a module constant, by name. */
    record Ref(String name) implements Expr {
        public Ref {
            Objects.requireNonNull(name);
        }
    }

    /** A work-item's coordinates: {@code global_id(d)} and the rest, dimension 0 to 2. */
    record Id(IdFn fn, int dim) implements Expr {
        public Id {
            if (dim < 0 || dim > 2) throw new IllegalArgumentException("dimension " + dim);
        }
    }

    enum IdFn {
        GLOBAL_ID("global_id"), LOCAL_ID("local_id"), GROUP_ID("group_id"), LOCAL_SIZE("local_size"), NUM_GROUPS("num_groups");

        public final String text;

        IdFn(String text) {
            this.text = text;
        }

        /** Whether work-items of one work-group may see different values (local and global ids). */
        public boolean divergent() {
            return this == GLOBAL_ID || this == LOCAL_ID;
        }

        public static IdFn of(String text) {
            for (IdFn f : values()) if (f.text.equals(text)) return f;
            return null;
        }
    }

    /** An element of a buffer or a local array. */
    record Load(String array, Expr index) implements Expr {
    }

    /** A primitive applied (the table {@link Prim}). */
    record Call(Prim prim, List<Expr> args) implements Expr {
        public Call {
            args = List.copyOf(args);
            if (args.size() != prim.arity()) throw new IllegalArgumentException(prim.text + " takes " + prim.arity() + " operands");
        }
    }

    static Lit i(int v) {
        return new Lit(KType.INT, v);
    }

    static Lit f(float v) {
        return new Lit(KType.FLOAT, v);
    }

    static Lit d(double v) {
        return new Lit(KType.DOUBLE, v);
    }

    static Ref ref(String name) {
        return new Ref(name);
    }

    static Call call(Prim p, Expr... args) {
        return new Call(p, List.of(args));
    }
}
