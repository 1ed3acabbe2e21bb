package dev.kvpc.compiler.ast;

/**
 * A region of a source file: 1-based line and column of the first character, and of the character after the last,
 * plus 0-based character offsets [start, end). Every AST node carries one, so a diagnostic can underline its culprit.
 */
public record Span(String file, int line, int col, int endLine, int endCol, int start, int end) {
    public Span {
        if (line < 1 || col < 1 || endLine < line || start < 0 || end < start) {
            throw new IllegalArgumentException("bad span " + file + ":" + line + ":" + col + "-" + endLine + ":" + endCol);
        }
    }

    /** The smallest span covering both. */
    public Span to(Span other) {
        boolean thisFirst = start <= other.start;
        Span first = thisFirst ? this : other;
        Span last = end >= other.end ? this : other;
        return new Span(file, first.line, first.col, last.endLine, last.endCol, first.start, last.end);
    }

    @Override
    public String toString() {
        return file + ":" + line + ":" + col;
    }
}
