package dev.kvpc.compiler.check;

import java.util.Map;
import java.util.TreeMap;

/**
 * A linear form {@code c + sum(coef_i * atom_i)} over symbolic atoms: the runtime quantities {@code len},
 * {@code context}, {@code step}, and opaque sub-expressions the checker cannot fold (named by their text).
 * Sizes and budgets are compared as such forms, so {@code r + (budget - r)} is exactly {@code budget}.
 * Each atom has a range; {@link #lowerBound} and {@link #upperBound} use them.
 */
public record Lin(double constant, Map<String, Double> terms, Map<String, double[]> ranges) {
    public Lin {
        TreeMap<String, Double> t = new TreeMap<>();
        terms.forEach((k, v) -> { if (v != 0.0) t.put(k, v); });
        terms = Map.copyOf(t);
        ranges = Map.copyOf(ranges);
    }

    public static Lin of(double c) {
        return new Lin(c, Map.of(), Map.of());
    }

    /** An atom with a range [lo, hi] (infinities allowed). */
    public static Lin atom(String name, double lo, double hi) {
        return new Lin(0, Map.of(name, 1.0), Map.of(name, new double[] {lo, hi}));
    }

    public boolean isConstant() {
        return terms.isEmpty();
    }

    public Lin plus(Lin o) {
        TreeMap<String, Double> t = new TreeMap<>(terms);
        o.terms.forEach((k, v) -> t.merge(k, v, Double::sum));
        return new Lin(constant + o.constant, t, mergeRanges(o));
    }

    public Lin scale(double f) {
        TreeMap<String, Double> t = new TreeMap<>();
        terms.forEach((k, v) -> t.put(k, v * f));
        return new Lin(constant * f, t, ranges);
    }

    public Lin minus(Lin o) {
        return plus(o.scale(-1));
    }

    private Map<String, double[]> mergeRanges(Lin o) {
        if (o.ranges.isEmpty()) return ranges;
        if (ranges.isEmpty()) return o.ranges;
        TreeMap<String, double[]> r = new TreeMap<>(ranges);
        r.putAll(o.ranges);
        return r;
    }

    /** This form with {@code atom} replaced by {@code by}. */
    public Lin substitute(String atom, Lin by) {
        Double c = terms.get(atom);
        if (c == null) return this;
        java.util.TreeMap<String, Double> t = new java.util.TreeMap<>(terms);
        t.remove(atom);
        return new Lin(constant, t, ranges).plus(by.scale(c));
    }

    public double lowerBound() {
        double lo = constant;
        for (var e : terms.entrySet()) {
            double[] r = ranges.getOrDefault(e.getKey(), new double[] {Double.NEGATIVE_INFINITY, Double.POSITIVE_INFINITY});
            lo += e.getValue() > 0 ? e.getValue() * r[0] : e.getValue() * r[1];
        }
        return Double.isNaN(lo) ? Double.NEGATIVE_INFINITY : lo;
    }

    public double upperBound() {
        return scale(-1).lowerBound() * -1;
    }

    /** The text of this form, for messages and for naming opaque atoms built from it. */
    public String show() {
        StringBuilder sb = new StringBuilder();
        for (var e : terms.entrySet()) {
            double v = e.getValue();
            if (!sb.isEmpty()) sb.append(v < 0 ? " - " : " + ");
            else if (v < 0) sb.append('-');
            double a = Math.abs(v);
            if (a != 1.0) sb.append(num(a)).append('*');
            sb.append(e.getKey());
        }
        if (sb.isEmpty()) return num(constant);
        if (constant != 0) sb.append(constant < 0 ? " - " : " + ").append(num(Math.abs(constant)));
        return sb.toString();
    }

    public static String num(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e15) return Long.toString((long) v);
        return Double.toString(v);
    }
}
