package dev.kvpc.compiler.ast;

/** An identifier as written, with where it was written. */
public record Name(String text, Span span) {
    public Name {
        if (text == null || text.isEmpty()) throw new IllegalArgumentException("empty name");
    }
}
