package dev.kvpc.compiler.ast;

/** Items of an attention variant. */
public sealed interface AttentionItem permits Stmt.Let, AttentionItem.Logits, AttentionItem.Mask, AttentionItem.Normalize {
    Span span();

    record Logits(Expr value, Span span) implements AttentionItem {}

    record Mask(Expr value, Span span) implements AttentionItem {}

    record Normalize(Name how, Span span) implements AttentionItem {}
}
