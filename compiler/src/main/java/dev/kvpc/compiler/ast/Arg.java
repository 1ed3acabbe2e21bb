package dev.kvpc.compiler.ast;

/** An argument of a call or of a policy reference. */
public sealed interface Arg {
    Span span();

    record Positional(Expr value, Span span) implements Arg {}

    record Named(Name name, Expr value, Span span) implements Arg {}

    /** {@code per head at least n}: the floor of a per-layer allocation ({@code top} under {@code selection per layer}). */
    record PerHeadAtLeast(Expr value, Span span) implements Arg {}
}
