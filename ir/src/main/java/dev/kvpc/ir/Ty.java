package dev.kvpc.ir;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

/** IR types: tensors of int, float or bool over named axes, and sets of tokens or pages. */
public sealed interface Ty {
    String show();

    enum Elem {
        INT, FLOAT, BOOL;

        /**
         * Bytes a state element of any kind takes: the runtime holds states in f32 columns, an int or a bool too, and
         * {@code kvpc memory} predicts what it holds.
         */
        public static final int STATE_BYTES = 4;

        public String word() { return name().toLowerCase(Locale.ROOT); }

        /** A value as a state of this kind holds it: an int drops its fraction, a float rounds to f32. */
        public double stored(double x) {
            return switch (this) {
                case INT -> (long) x;
                case FLOAT -> (float) x;
                case BOOL -> x;
            };
        }
    }

    /** A tensor; {@code axes} are distinct and in canonical order (checked). */
    record Tensor(Elem elem, List<Axis> axes) implements Ty {
        public Tensor {
            axes = List.copyOf(axes);
            for (int i = 1; i < axes.size(); i++) {
                if (axes.get(i - 1).compareTo(axes.get(i)) >= 0) throw new IllegalArgumentException("axes not distinct and ordered: " + axes);
            }
        }

        public static Tensor of(Elem elem, Iterable<Axis> axes) {
            EnumSet<Axis> set = EnumSet.noneOf(Axis.class);
            axes.forEach(set::add);
            return new Tensor(elem, new ArrayList<>(set));
        }

        public static Tensor scalar(Elem elem) { return new Tensor(elem, List.of()); }

        public boolean isScalar() { return axes.isEmpty(); }

        @Override
        public String show() {
            return elem.word() + (axes.isEmpty() ? "" : axes.stream().map(Axis::word).collect(Collectors.joining(", ", "[", "]")));
        }
    }

    /**
     * A set of entries ({@code TOKEN}) or pages ({@code PAGE}) of a lane; {@code perHead} under per-layer selection;
     * {@code perQueryHead}: one set of entries for each query head of the lane's group.
     */
    record SetTy(Axis domain, boolean perHead, boolean perQueryHead) implements Ty {
        public SetTy {
            if (domain != Axis.TOKEN && domain != Axis.PAGE) throw new IllegalArgumentException("sets are of tokens or pages, not " + domain);
            if (perQueryHead && domain != Axis.TOKEN) throw new IllegalArgumentException("a set per query head is of tokens");
        }

        public SetTy(Axis domain, boolean perHead) {
            this(domain, perHead, false);
        }

        @Override
        public String show() { return (domain == Axis.TOKEN ? "tokens" : "pages") + (perHead ? "[head]" : "") + (perQueryHead ? "[group]" : ""); }
    }

    Tensor INT = Tensor.scalar(Elem.INT);
    Tensor FLOAT = Tensor.scalar(Elem.FLOAT);
    Tensor BOOL = Tensor.scalar(Elem.BOOL);
    SetTy TOKENS = new SetTy(Axis.TOKEN, false);
}
