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

    /** Reads the text form of {@link #print()}; errors name the line. */
    public static Specialized parse(String text) {
        String[] lines = text.split("\n", -1);
        int at = 0;
        while (at < lines.length && lines[at].isBlank()) at++;
        if (at >= lines.length || !lines[at].startsWith("specialized ")) throw new IrParser.IrParseException(at + 1, "expected 'specialized NAME layers=..'");
        String[] head = lines[at].strip().split(" +");
        if (head.length != 6) throw new IrParser.IrParseException(at + 1, "expected 'specialized NAME layers=L heads=H kv_heads=K head_dim=D'");
        String root = head[1];
        int layers = field(head[2], "layers", at), heads = field(head[3], "heads", at), kv = field(head[4], "kv_heads", at), hd = field(head[5], "head_dim", at);
        at++;
        int[][] classOf = new int[layers][];
        while (at < lines.length && lines[at].startsWith("lanes ")) {
            String l = lines[at].strip();
            int colon = l.indexOf(':');
            if (colon < 0) throw new IrParser.IrParseException(at + 1, "expected 'lanes layer(s) A[..B]: ...'");
            String range = l.substring(0, colon).replaceFirst("^lanes layers? ", "").strip();
            int from, to;
            try {
                int dots = range.indexOf("..");
                from = Integer.parseInt(dots < 0 ? range : range.substring(0, dots));
                to = dots < 0 ? from : Integer.parseInt(range.substring(dots + 2));
            } catch (NumberFormatException e) {
                throw new IrParser.IrParseException(at + 1, "bad layer range '" + range + "'");
            }
            String[] words = l.substring(colon + 1).strip().split(" +");
            int[] row = new int[kv];
            if (words.length == 2 && words[0].equals("all")) {
                java.util.Arrays.fill(row, laneClass(words[1], at));
            } else if (words.length == kv) {
                for (int h = 0; h < kv; h++) row[h] = laneClass(words[h], at);
            } else {
                throw new IrParser.IrParseException(at + 1, "expected 'all C' or " + kv + " lane classes");
            }
            if (from < 0 || to >= layers || from > to) throw new IrParser.IrParseException(at + 1, "layer range " + range + " outside 0.." + (layers - 1));
            for (int x = from; x <= to; x++) classOf[x] = row.clone();
            at++;
        }
        for (int l = 0; l < layers; l++) if (classOf[l] == null) throw new IrParser.IrParseException(at + 1, "no lanes line for layer " + l);
        StringBuilder rest = new StringBuilder();
        for (int i = at; i < lines.length; i++) {
            // '# class N' lines separate classes; keep line numbering for errors
            rest.append(lines[i].startsWith("# class ") ? "" : lines[i]).append('\n');
        }
        IrProgram p;
        try {
            p = IrParser.parse(rest.toString());
        } catch (IrParser.IrParseException e) {
            throw new IrParser.IrParseException(e.line + at, e.getMessage().replaceFirst("^line \\d+: ", ""));
        }
        if (p.variants().size() > 1) throw new IrParser.IrParseException(at + 1, "more than one attention variant");
        return new Specialized(root, new LaneShape(layers, heads, kv, hd), p.policies(), classOf, p.variants().isEmpty() ? null : p.variants().getFirst());
    }

    private static int field(String word, String key, int at) {
        if (!word.startsWith(key + "=")) throw new IrParser.IrParseException(at + 1, "expected " + key + "=N, got '" + word + "'");
        try {
            return Integer.parseInt(word.substring(key.length() + 1));
        } catch (NumberFormatException e) {
            throw new IrParser.IrParseException(at + 1, "bad number in '" + word + "'");
        }
    }

    private static int laneClass(String word, int at) {
        if (word.equals("full")) return -1;
        if (!word.startsWith("#")) throw new IrParser.IrParseException(at + 1, "expected a lane class '#N' or 'full', got '" + word + "'");
        try {
            return Integer.parseInt(word.substring(1));
        } catch (NumberFormatException e) {
            throw new IrParser.IrParseException(at + 1, "bad lane class '" + word + "'");
        }
    }
}
