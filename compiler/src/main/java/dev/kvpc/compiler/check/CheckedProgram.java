package dev.kvpc.compiler.check;

import dev.kvpc.compiler.ast.Decl;
import dev.kvpc.compiler.ast.Expr;
import dev.kvpc.compiler.model.ModelShape;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * The front end's output, for lowering: the program, every declaration visible from the root by name, the type of
 * every expression and what every name resolves to (both keyed by node identity), and the model shape checked for.
 */
public record CheckedProgram(Program program, Map<String, Decl> decls, Map<Expr, Type> types, Map<Object, Sym> symbols, ModelShape model) {
    public CheckedProgram {
        decls = Map.copyOf(decls);
        types = Collections.unmodifiableMap(new IdentityHashMap<>(types));
        symbols = Collections.unmodifiableMap(new IdentityHashMap<>(symbols));
    }

    public Type typeOf(Expr e) {
        return types.get(e);
    }
}
