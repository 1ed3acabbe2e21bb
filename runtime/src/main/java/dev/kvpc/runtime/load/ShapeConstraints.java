package dev.kvpc.runtime.load;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * What model shapes a compiled policy runs on: for each of layers, heads, KV heads and head dimension, either one
 * exact size (the compiler specialised the code for it) or {@link Dim#ANY}.
 */
public record ShapeConstraints(Dim layers, Dim heads, Dim kvHeads, Dim headDim) {

    /** The manifest names of the four dimensions, in order. */
    public static final List<String> DIMENSIONS = List.of("layers", "heads", "kv-heads", "head-dim");

    /** Fits every model. */
    public static final ShapeConstraints ANY = new ShapeConstraints(Dim.ANY, Dim.ANY, Dim.ANY, Dim.ANY);

    public ShapeConstraints {
        Objects.requireNonNull(layers, "layers");
        Objects.requireNonNull(heads, "heads");
        Objects.requireNonNull(kvHeads, "kvHeads");
        Objects.requireNonNull(headDim, "headDim");
    }

    /** Exactly the given shape. */
    public static ShapeConstraints exactly(ModelShapeSpec shape) {
        return new ShapeConstraints(Dim.exactly(shape.layers()), Dim.exactly(shape.heads()), Dim.exactly(shape.kvHeads()),
                Dim.exactly(shape.headDim()));
    }

    /** The constraint on one dimension, by its manifest name. */
    public Dim get(String dimension) {
        return switch (dimension) {
            case "layers" -> layers;
            case "heads" -> heads;
            case "kv-heads" -> kvHeads;
            case "head-dim" -> headDim;
            default -> throw new IllegalArgumentException("no model dimension " + dimension);
        };
    }

    /** Whether a model of this shape satisfies every constraint. */
    public boolean admits(ModelShapeSpec host) {
        return misfits(host).isEmpty();
    }

    /** The dimensions (manifest names, in {@link #DIMENSIONS} order) whose constraint the host does not meet. */
    public List<String> misfits(ModelShapeSpec host) {
        List<String> out = new ArrayList<>();
        for (String d : DIMENSIONS) {
            if (!get(d).admits(host.size(d))) out.add(d);
        }
        return out;
    }

    /**
     * Throws unless the host fits, with a message such as {@code "policy h2o needs kv-heads=8, this model has 4"} or,
     * for several dimensions, {@code "policy h2o needs kv-heads=8 and head-dim=128, this model has kv-heads=4 and
     * head-dim=64"}.
     */
    public void check(String policyName, ModelShapeSpec host) throws PolicyLoadException {
        List<String> bad = misfits(host);
        if (bad.isEmpty()) return;
        String message;
        if (bad.size() == 1) {
            String d = bad.getFirst();
            message = "policy " + policyName + " needs " + d + "=" + get(d) + ", this model has " + host.size(d);
        } else {
            List<String> needs = new ArrayList<>(), has = new ArrayList<>();
            for (String d : bad) {
                needs.add(d + "=" + get(d));
                has.add(d + "=" + host.size(d));
            }
            message = "policy " + policyName + " needs " + and(needs) + ", this model has " + and(has);
        }
        throw new PolicyLoadException(message);
    }

    private static String and(List<String> items) {
        if (items.size() == 1) return items.getFirst();
        return String.join(", ", items.subList(0, items.size() - 1)) + " and " + items.getLast();
    }

    /**
     * One dimension's constraint: {@code value > 0} is an exact size, {@code value == 0} is "any" ({@link #ANY}).
     * Written and parsed as the size or the word {@code any}.
     */
    public record Dim(int value) {
        public static final Dim ANY = new Dim(0);

        public Dim {
            if (value < 0) throw new IllegalArgumentException("a dimension constraint is a positive size or any, got " + value);
        }

        public static Dim exactly(int size) {
            if (size <= 0) throw new IllegalArgumentException("an exact dimension must be positive, got " + size);
            return new Dim(size);
        }

        /** {@code any} or a positive decimal integer; anything else is an {@link IllegalArgumentException}. */
        public static Dim parse(String text) {
            String t = text.strip();
            if (t.equals("any")) return ANY;
            if (t.isEmpty() || t.length() > 10 || !t.chars().allMatch(c -> c >= '0' && c <= '9')) {
                throw new IllegalArgumentException("expected a positive integer or 'any', got '" + text + "'");
            }
            long v = Long.parseLong(t);
            if (v <= 0 || v > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("expected a positive integer or 'any', got '" + text + "'");
            }
            return new Dim((int) v);
        }

        public boolean isAny() {
            return value == 0;
        }

        public boolean admits(int size) {
            return isAny() || value == size;
        }

        @Override
        public String toString() {
            return isAny() ? "any" : Integer.toString(value);
        }
    }
}
