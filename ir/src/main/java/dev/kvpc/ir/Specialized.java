package dev.kvpc.ir;

import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * A policy specialised to a model shape and parameter values: the distinct leaf policies its lanes run
 * ({@code classes}, without parameters, folded), which class each (layer, KV head) lane runs ({@code classOf},
 * -1 for the full cache), and the attention variant.
 */
public record Specialized(String root, LaneShape shape, List<PolicyIr> classes, int[][] classOf, AttentionIr variant) {
    public Specialized {
        classes = List.copyOf(classes);
        if (classOf.length != shape.layers()) throw new IllegalArgumentException("lane map has " + classOf.length + " layers");
        for (int[] row : classOf) {
            if (row.length != shape.kvHeads()) throw new IllegalArgumentException("lane map row has " + row.length + " heads");
            for (int c : row) if (c < -1 || c >= classes.size()) throw new IllegalArgumentException("bad lane class " + c);
        }
    }

    /** Applies a pass to every lane class. */
    public Specialized map(UnaryOperator<PolicyIr> pass) {
        List<PolicyIr> out = new ArrayList<>();
        for (PolicyIr p : classes) out.add(pass.apply(p));
        return new Specialized(root, shape, out, classOf, variant);
    }

    /** The text form: the lane map, then each class. */
    public String print() {
        StringBuilder sb = new StringBuilder();
        sb.append("specialized ").append(root).append(" layers=").append(shape.layers()).append(" heads=").append(shape.heads())
                .append(" kv_heads=").append(shape.kvHeads()).append(" head_dim=").append(shape.headDim()).append('\n');
        for (int l = 0; l < classOf.length; ) {
            int end = l;
            while (end + 1 < classOf.length && java.util.Arrays.equals(classOf[end + 1], classOf[l])) end++;
            sb.append("lanes layer").append(end > l ? "s " + l + ".." + end : " " + l).append(':');
            int first = classOf[l][0];
            boolean same = java.util.Arrays.stream(classOf[l]).allMatch(c -> c == first);
            if (same) {
                sb.append(" all ").append(classOf[l][0] < 0 ? "full" : "#" + classOf[l][0]);
            } else {
                for (int c : classOf[l]) sb.append(' ').append(c < 0 ? "full" : "#" + c);
            }
            sb.append('\n');
            l = end + 1;
        }
        if (variant != null) sb.append(IrPrinter.print(new IrProgram(List.of(), List.of(variant))));
        for (int i = 0; i < classes.size(); i++) {
            sb.append("# class ").append(i).append('\n').append(IrPrinter.print(classes.get(i)));
        }
        return sb.toString();
    }
}
