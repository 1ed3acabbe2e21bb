package dev.kvpc.compiler.check;

import dev.kvpc.compiler.ast.*;

import java.util.function.Consumer;

/** Visits every expression below a node, outermost first. Used by scans that look for a signal or a call. */
final class AstWalk {
    private AstWalk() {}

    static void exprs(Object node, Consumer<Expr> visit) {
        switch (node) {
            case null -> { }
            case Expr e -> {
                visit.accept(e);
                switch (e) {
                    case Expr.Unary u -> exprs(u.operand(), visit);
                    case Expr.Binary b -> { exprs(b.left(), visit); exprs(b.right(), visit); }
                    case Expr.Conditional c -> { exprs(c.condition(), visit); exprs(c.ifTrue(), visit); exprs(c.ifFalse(), visit); }
                    case Expr.Cast c -> exprs(c.operand(), visit);
                    case Expr.Call c -> c.args().forEach(a -> exprs(a, visit));
                    default -> { }
                }
            }
            case Arg.Positional p -> exprs(p.value(), visit);
            case Arg.Named n -> exprs(n.value(), visit);
            case Arg.PerHeadAtLeast ph -> exprs(ph.value(), visit);
            case PolicyItem.Observe o -> exprs(o.queries(), visit);
            case PolicyItem.State s -> { exprs(s.init(), visit); exprs(s.scope().pageSize(), visit); }
            case PolicyItem.On on -> { on.events().forEach(ev -> exprs(ev.budget(), visit)); exprs(on.body(), visit); }
            case PolicyItem.Every ev -> { exprs(ev.period(), visit); exprs(ev.body(), visit); }
            case PolicyItem.Block b -> b.stmts().forEach(s -> exprs(s, visit));
            case Stmt.Let l -> exprs(l.value(), visit);
            case Stmt.Keep k -> exprs(k.set(), visit);
            case Stmt.Evict k -> exprs(k.set(), visit);
            case Stmt.Attend k -> exprs(k.set(), visit);
            case Stmt.Merge m -> { exprs(m.source(), visit); exprs(m.dest(), visit); exprs(m.weight(), visit); }
            case Stmt.Store st -> {
                exprs(st.format().bits(), visit);
                st.options().forEach(q -> exprs(q.size(), visit));
                if (st.scope() != null) exprs(st.scope().set(), visit);
            }
            case Stmt.If i -> { exprs(i.condition(), visit); exprs(i.then(), visit); exprs(i.elseBlock(), visit); exprs(i.elseIf(), visit); }
            case Stmt.Assign a -> exprs(a.value(), visit);
            case Composition.HeadsWhere h -> exprs(h.condition(), visit);
            case Composition.Layers l -> { exprs(l.from(), visit); exprs(l.to(), visit); }
            default -> { }
        }
    }
}
