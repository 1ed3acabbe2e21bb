package dev.kvpc.compiler.ast;

/** Items of a {@code config}: the attention variant, and which policy each layer and head uses. */
public sealed interface ConfigItem permits ConfigItem.AttentionUse, Composition.HeadsWhere, Composition.Layers {
    Span span();

    record AttentionUse(PolicyRef variant, Span span) implements ConfigItem {}
}
