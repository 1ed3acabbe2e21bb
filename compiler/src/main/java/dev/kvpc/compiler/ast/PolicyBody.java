package dev.kvpc.compiler.ast;

import java.util.List;

/** What follows a policy's parameters: a block of items, or {@code = other(args)}. */
public sealed interface PolicyBody {
    Span span();

    record Items(List<PolicyItem> items, Span span) implements PolicyBody {
        public Items { items = List.copyOf(items); }
    }

    record Alias(PolicyRef target, Span span) implements PolicyBody {}
}
