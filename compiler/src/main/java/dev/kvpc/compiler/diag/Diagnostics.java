package dev.kvpc.compiler.diag;

import dev.kvpc.compiler.ast.Span;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Collects diagnostics; identical ones (same code and span) are reported once. */
public final class Diagnostics {
    private final List<Diagnostic> list = new ArrayList<>();

    public void report(Diagnostic d) {
        for (Diagnostic e : list) {
            if (e.code() == d.code() && e.span().equals(d.span())) return;
        }
        list.add(d);
    }

    public void error(Code code, Span span, String message, Diagnostic.Note... notes) {
        report(new Diagnostic(code, message, span, Arrays.asList(notes)));
    }

    public boolean hasErrors() {
        return list.stream().anyMatch(d -> d.severity() == Severity.ERROR);
    }

    public int errorCount() {
        return (int) list.stream().filter(d -> d.severity() == Severity.ERROR).count();
    }

    public int warningCount() {
        return list.size() - errorCount();
    }

    /** Sorted by file and position. */
    public List<Diagnostic> all() {
        return list.stream().sorted().toList();
    }

    public void addAll(Diagnostics other) {
        other.list.forEach(this::report);
    }
}
