package dev.kvpc.gpu.kir;

import java.util.List;
import java.util.Objects;

/** A kernel IR statement. Blocks are lists; a {@link Let} is visible to the statements after it in its block. */
public sealed interface Stmt {
    /** Declares a work-item's private variable, mutable by {@link Assign}. */
    record Let(String name, KType type, Expr init) implements Stmt {
        public Let {
            Objects.requireNonNull(name);
            Objects.requireNonNull(init);
        }
    }

    record Assign(String name, Expr value) implements Stmt {
    }

    /** {@code array[index] = value}; a half array takes a float, a uchar array an int. */
    record Store(String array, Expr index, Expr value) implements Stmt {
    }

    /** {@code array[index] += value} atomically across work-items; float or int arrays. */
    record AtomicAdd(String array, Expr index, Expr value) implements Stmt {
    }

    /** {@code for (int var = from; var < to; var += step)}; {@code var} is read-only inside. */
    record For(String var, Expr from, Expr to, Expr step, List<Stmt> body) implements Stmt {
        public For {
            body = List.copyOf(body);
        }
    }

    record If(Expr cond, List<Stmt> then, List<Stmt> otherwise) implements Stmt {
        public If {
            then = List.copyOf(then);
            otherwise = List.copyOf(otherwise);
        }
    }

    /**
     * Every work-item of the work-group waits here; local and global memory written before it by the group is seen
     * after it. Only in control flow every work-item of the group takes alike ({@link KirVerifier}).
     */
    record Barrier() implements Stmt {
    }
}
