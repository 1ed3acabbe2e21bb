package dev.kvpc.compiler.diag;

import dev.kvpc.compiler.ast.Span;

import java.util.List;

/** One finding: a code, a message, the span it underlines, and notes that point elsewhere or explain. */
public record Diagnostic(Code code, String message, Span span, List<Note> notes) implements Comparable<Diagnostic> {
    public Diagnostic {
        notes = List.copyOf(notes);
    }

    public Severity severity() {
        return code.severity();
    }

    /** A note; {@code span} may be null for a note with no place. */
    public record Note(String message, Span span) {}

    @Override
    public int compareTo(Diagnostic o) {
        int c = span.file().compareTo(o.span.file());
        if (c != 0) return c;
        c = Integer.compare(span.start(), o.span.start());
        if (c != 0) return c;
        return code.compareTo(o.code);
    }
}
