package dev.kvpc.compiler.check;

import dev.kvpc.compiler.ast.Decl;
import dev.kvpc.compiler.ast.PolicyItem;
import dev.kvpc.compiler.ast.Stmt;

/** What a name in an expression resolves to; {@link CheckedProgram#symbols()} records it for every name. */
public sealed interface Sym {
    String name();

    Type type();

    record Param(Decl.Param param, Type type) implements Sym {
        public String name() { return param.name().text(); }
    }

    record State(PolicyItem.State state, Type type) implements Sym {
        public String name() { return state.name().text(); }
    }

    record Local(Stmt.Let let, Type type) implements Sym {
        public String name() { return let.name().text(); }
    }

    /** A signal of the host or the model shape ({@code attn}, {@code len}, {@code layer}, ...). */
    record Signal(String name, Type type) implements Sym {}
}
