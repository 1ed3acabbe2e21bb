package dev.kvpc.compiler.ast;

import java.util.List;

/** Top-level declarations of a KVP file. {@code doc} holds the {@code ///} comment lines above it (null if none). */
public sealed interface Decl {
    String doc();

    Name name();

    Span span();

    /**
     * A policy: a block of items, or an alias of another policy with arguments ({@code policy p(...) = q(...)}).
     * {@code params} is null when no parameter list was written.
     */
    record Policy(String doc, Name name, List<Param> params, PolicyBody body, Span span) implements Decl {
        public Policy { params = params == null ? null : List.copyOf(params); }

        public List<Param> paramList() { return params == null ? List.of() : params; }
    }

    record Fn(String doc, Name name, List<Param> params, TypeName returnType, List<Stmt.Let> lets, Expr result, Span span)
            implements Decl {
        public Fn {
            params = List.copyOf(params);
            lets = List.copyOf(lets);
        }
    }

    record Attention(String doc, Name name, List<Param> params, List<AttentionItem> items, Span span) implements Decl {
        public Attention {
            params = params == null ? null : List.copyOf(params);
            items = List.copyOf(items);
        }

        public List<Param> paramList() { return params == null ? List.of() : params; }
    }

    record Config(String doc, Name name, List<Param> params, List<ConfigItem> items, Span span) implements Decl {
        public Config {
            params = params == null ? null : List.copyOf(params);
            items = List.copyOf(items);
        }

        public List<Param> paramList() { return params == null ? List.of() : params; }
    }

    /** A parameter: {@code name: type [in lo..hi] [= default]}. */
    record Param(Name name, TypeName type, Expr lo, Expr hi, Expr defaultValue, Span span) {}

    record TypeName(String name, Span span) {}
}
