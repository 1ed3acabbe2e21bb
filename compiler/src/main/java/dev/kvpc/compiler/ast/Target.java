package dev.kvpc.compiler.ast;

/** What a {@code layers} or {@code heads where} clause assigns: a named policy or an inline block. */
public sealed interface Target {
    Span span();

    record Use(PolicyRef ref, Span span) implements Target {}

    record Inline(PolicyBody.Items body, Span span) implements Target {}
}
