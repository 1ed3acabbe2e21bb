package dev.kvpc.compiler.ast;

import java.util.List;

/** Items of a policy block. Statements that may also stand at policy level ({@code let}, {@code store}) implement both. */
public sealed interface PolicyItem permits PolicyItem.Positions, PolicyItem.Selection, PolicyItem.Observe,
        PolicyItem.State, PolicyItem.On, PolicyItem.Every, Stmt.Let, Stmt.Store, Composition.HeadsWhere, Composition.Layers {
    Span span();

    /** {@code positions original | cache}. */
    record Positions(Name mode, Span span) implements PolicyItem {}

    /** {@code selection per layer | lane}. */
    record Selection(Name scope, Span span) implements PolicyItem {}

    /** {@code observe S queries at EVENT}: which queries of that event the policy sees as the {@code query} axis. */
    record Observe(Expr queries, Name at, Span span) implements PolicyItem {}

    /** {@code state name: elem[axes] per scope [= init]}. */
    record State(Name name, StateType type, StateScope scope, Expr init, Span span) implements PolicyItem {}

    record StateType(Name elem, List<Name> axes, Span span) {
        public StateType { axes = List.copyOf(axes); }
    }

    /** {@code per token}, {@code per lane}, {@code per model}, or {@code per page(size)} (size null otherwise). */
    record StateScope(Scope scope, Expr pageSize, Span span) {}

    enum Scope { TOKEN, LANE, PAGE, MODEL }

    record On(List<Event> events, Block body, Span span) implements PolicyItem {
        public On { events = List.copyOf(events); }
    }

    record Every(Expr period, Block body, Span span) implements PolicyItem {}

    /** {@code prefill}, {@code chunk}, {@code decode}, or {@code overflow(budget)} (budget null otherwise). */
    record Event(EventKind kind, Expr budget, Span span) {}

    enum EventKind {
        PREFILL, CHUNK, DECODE, OVERFLOW;

        public String word() { return name().toLowerCase(java.util.Locale.ROOT); }
    }

    record Block(List<Stmt> stmts, Span span) {
        public Block { stmts = List.copyOf(stmts); }
    }
}
