package dev.kvpc.compiler.check;

import java.util.EnumSet;
import java.util.Set;
import java.util.stream.Collectors;

/** Types of KVP expressions as the checker infers them. Lowering reads them from {@link CheckedProgram}. */
public sealed interface Type {
    String show();

    enum Elem { INT, FLOAT, BOOL }

    /** A tensor over named axes; a scalar has none. */
    record Tensor(Elem elem, Set<Axis> axes) implements Type {
        public Tensor {
            axes = axes.isEmpty() ? Set.of() : Set.copyOf(EnumSet.copyOf(axes));
        }

        public boolean isScalar() { return axes.isEmpty(); }

        public boolean numeric() { return elem != Elem.BOOL; }

        public EnumSet<Axis> axisSet() {
            return axes.isEmpty() ? EnumSet.noneOf(Axis.class) : EnumSet.copyOf(axes);
        }

        @Override
        public String show() {
            String e = elem.name().toLowerCase(java.util.Locale.ROOT);
            if (axes.isEmpty()) return e;
            return e + axisSet().stream().map(Axis::word).collect(Collectors.joining(", ", "[", "]"));
        }
    }

    /**
     * A set of entries of the lane ({@code TOKEN}) or of pages ({@code PAGE}); {@code perHead} under per-layer
     * selection; {@code perQueryHead}: one set for each query head of the lane's group (a token set only).
     */
    record SetOf(Axis domain, boolean perHead, boolean perQueryHead) implements Type {
        public SetOf(Axis domain, boolean perHead) {
            this(domain, perHead, false);
        }

        /** The set that combines this one with {@code o} (set algebra, within, a choice between them). */
        public SetOf with(SetOf o) {
            return new SetOf(domain, perHead || o.perHead, perQueryHead || o.perQueryHead);
        }

        @Override
        public String show() {
            return (domain == Axis.PAGE ? "page set" : "token set") + (perHead ? " per head" : "") + (perQueryHead ? " per query head" : "");
        }
    }

    record Str() implements Type {
        @Override
        public String show() { return "string"; }
    }

    /** The type of an expression already reported as wrong; it matches anything so one mistake gives one message. */
    record Error() implements Type {
        @Override
        public String show() { return "<error>"; }
    }

    Type ERROR = new Error();
    Type STRING = new Str();
    Tensor INT = new Tensor(Elem.INT, Set.of());
    Tensor FLOAT = new Tensor(Elem.FLOAT, Set.of());
    Tensor BOOL = new Tensor(Elem.BOOL, Set.of());
    SetOf TOKENS = new SetOf(Axis.TOKEN, false);

    static Tensor tensor(Elem e, Axis... axes) {
        return new Tensor(e, axes.length == 0 ? Set.of() : EnumSet.of(axes[0], axes));
    }
}
