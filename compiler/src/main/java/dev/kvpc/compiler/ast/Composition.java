package dev.kvpc.compiler.ast;

/** Clauses that give lanes to policies, in policy bodies and configs. */
public sealed interface Composition {
    Span span();

    /** {@code heads where cond use A otherwise use B}. */
    record HeadsWhere(Expr condition, Target then, Target otherwise, Span span) implements Composition, PolicyItem, ConfigItem {}

    /** {@code layers from[..[to]] use P}; inclusive; {@code ranged} false for a single layer, {@code to} null when open. */
    record Layers(Expr from, boolean ranged, Expr to, Target target, Span span) implements Composition, PolicyItem, ConfigItem {}
}
