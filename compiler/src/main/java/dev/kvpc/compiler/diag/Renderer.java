package dev.kvpc.compiler.diag;

import dev.kvpc.compiler.ast.Span;

import java.util.function.Function;

/**
 * Renders a diagnostic the way compilers people trust do:
 * <pre>
 * file:line:col: error[E302]: message
 *    |
 *  7 |     on overflow(budget) { keep all }
 *    |                           ^^^^^^^^
 *    = note: ...
 * </pre>
 */
public final class Renderer {
    private final Function<String, String> sourceOf;

    /** {@code sourceOf} returns a file's text, or null when it cannot be shown. */
    public Renderer(Function<String, String> sourceOf) {
        this.sourceOf = sourceOf;
    }

    public String render(Diagnostic d) {
        StringBuilder out = new StringBuilder();
        Span s = d.span();
        out.append(s.file()).append(':').append(s.line()).append(':').append(s.col()).append(": ")
                .append(d.severity().word()).append('[').append(d.code().name()).append("]: ").append(d.message()).append('\n');
        excerpt(out, s, "^");
        for (Diagnostic.Note n : d.notes()) {
            if (n.span() != null && !n.span().equals(s)) {
                out.append("   = note: ").append(n.message()).append(" (").append(n.span()).append(")\n");
                excerpt(out, n.span(), "-");
            } else {
                out.append("   = note: ").append(n.message()).append('\n');
            }
        }
        return out.toString();
    }

    private void excerpt(StringBuilder out, Span s, String mark) {
        String text = sourceOf.apply(s.file());
        if (text == null) return;
        String line = lineOf(text, s.line());
        if (line == null) return;
        String num = Integer.toString(s.line());
        String pad = " ".repeat(num.length());
        String shown = line.replace('\t', ' ');
        int from = Math.min(s.col() - 1, shown.length());
        int to = s.endLine() == s.line() ? Math.max(s.endCol() - 1, from + 1) : Math.max(shown.length(), from + 1);
        if (shown.length() > WIDTH) {
            // a long line shows a window around the place: at most WIDTH columns, elided ends marked
            int start = Math.max(0, Math.min(from - CONTEXT, shown.length() - WIDTH));
            int end = Math.min(shown.length(), start + WIDTH);
            String head = start > 0 ? "..." : "", tail = end < shown.length() ? "..." : "";
            shown = head + shown.substring(start, end) + tail;
            from = from - start + head.length();
            to = Math.min(to - start, end - start) + head.length();
            to = Math.max(to, from + 1);
        }
        out.append(' ').append(pad).append(" |\n");
        out.append(' ').append(num).append(" | ").append(shown).append('\n');
        out.append(' ').append(pad).append(" | ").append(" ".repeat(from)).append(mark.repeat(to - from))
                .append(s.endLine() > s.line() ? " (continues to line " + s.endLine() + ")" : "").append('\n');
    }

    /** Source lines longer than this are shown as a window of it around the place, starting {@link #CONTEXT} before. */
    static final int WIDTH = 120, CONTEXT = 40;

    private static String lineOf(String text, int line) {
        int start = 0;
        for (int i = 1; i < line; i++) {
            int nl = text.indexOf('\n', start);
            if (nl < 0) return null;
            start = nl + 1;
        }
        int end = text.indexOf('\n', start);
        String l = end < 0 ? text.substring(start) : text.substring(start, end);
        return l.endsWith("\r") ? l.substring(0, l.length() - 1) : l;
    }
}
