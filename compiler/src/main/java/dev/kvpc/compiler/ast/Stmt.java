package dev.kvpc.compiler.ast;

import java.util.List;

/** Statements of event handlers. */
public sealed interface Stmt {
    Span span();

    record Let(Name name, Expr value, Span span) implements Stmt, PolicyItem, AttentionItem {}

    record Keep(Expr set, Span span) implements Stmt {}

    record Evict(Expr set, Span span) implements Stmt {}

    record Attend(Expr set, Span span) implements Stmt {}

    /** {@code merge source into dest [by how] [weighted by weight]}; {@code by} and {@code weight} may be null. */
    record Merge(Expr source, Expr dest, MergeBy by, Expr weight, Span span) implements Stmt {}

    /** {@code cosine(k)} / {@code cosine(v)} (with {@code of}), or {@code nearest} ({@code of} null). */
    record MergeBy(Name kind, Name of, Span span) {}

    /** {@code store keys, values as FORMAT [per token|channel] [group(n)] [for S | except S | otherwise]}. */
    record Store(List<Name> targets, Format format, List<QuantOption> options, StoreScope scope, Span span)
            implements Stmt, PolicyItem {
        public Store {
            targets = List.copyOf(targets);
            options = List.copyOf(options);
        }
    }

    /** A format word ({@code f16}, {@code int4}, ...) or {@code int(bits)} ({@code bits} non-null). */
    record Format(Name word, Expr bits, Span span) {}

    /** {@code per AXIS} ({@code axis} set) or {@code group(n)} ({@code size} set). */
    record QuantOption(Name axis, Expr size, Span span) {}

    record StoreScope(ScopeKind kind, Expr set, Span span) {}

    enum ScopeKind { FOR, EXCEPT, OTHERWISE }

    /** {@code if c {..} [else {..} | else if ...]}: at most one of elseBlock and elseIf is non-null. */
    record If(Expr condition, PolicyItem.Block then, PolicyItem.Block elseBlock, If elseIf, Span span) implements Stmt {}

    record Assign(Name target, AssignOp op, Expr value, Span span) implements Stmt {}

    enum AssignOp {
        SET("="), ADD("+="), SUB("-="), MUL("*=");
        public final String symbol;
        AssignOp(String symbol) { this.symbol = symbol; }
    }
}
