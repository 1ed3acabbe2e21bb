package dev.kvpc.compiler.parse;

import dev.kvpc.compiler.ast.*;
import dev.kvpc.compiler.ast.Expr.BinaryOp;
import dev.kvpc.grammar.KvpLexer;
import dev.kvpc.grammar.KvpParser.*;
import org.antlr.v4.runtime.CommonTokenStream;
import org.antlr.v4.runtime.ParserRuleContext;
import org.antlr.v4.runtime.Token;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The one place that turns ANTLR's parse tree into the immutable AST. No ANTLR type escapes this class.
 * It is only given trees that parsed without syntax errors.
 */
final class AstBuilder {
    private final String file;
    private final CommonTokenStream tokens;
    private final Set<Integer> docTokensUsed = new HashSet<>();
    /** What the tree cannot say as written: integer literals beyond 64 bits. */
    private final List<dev.kvpc.compiler.diag.Diagnostic> problems = new ArrayList<>();

    AstBuilder(String file, CommonTokenStream tokens) {
        this.file = file;
        this.tokens = tokens;
    }

    /** The problems found while building (each an error at its place). */
    List<dev.kvpc.compiler.diag.Diagnostic> problems() {
        return problems;
    }

    KvpFile build(FileContext ctx) {
        List<KvpFile.Import> imports = new ArrayList<>();
        for (ImportDeclContext i : ctx.importDecl()) {
            imports.add(new KvpFile.Import(unquote(i.STRING().getText()), span(i)));
        }
        List<Decl> decls = new ArrayList<>();
        for (DeclContext d : ctx.decl()) decls.add(decl(d));
        List<KvpFile.Comment> comments = new ArrayList<>();
        for (Token t : tokens.getTokens()) {
            boolean comment = t.getChannel() == 3 || (t.getChannel() == 2 && !docTokensUsed.contains(t.getTokenIndex()));
            if (comment) comments.add(new KvpFile.Comment(t.getText(), span(t, t)));
        }
        return new KvpFile(file, imports, decls, comments, span(ctx));
    }

    private Decl decl(DeclContext d) {
        ParserRuleContext inner = (ParserRuleContext) d.getChild(0);
        String doc = docOf(inner.getStart());
        return switch (inner) {
            case PolicyDeclContext p -> new Decl.Policy(doc, name(p.name), params(p.params()),
                    p.policyBlock() != null ? items(p.policyBlock()) : new PolicyBody.Alias(policyRef(p.policyRef()), span(p.policyRef())),
                    span(p));
            case FnDeclContext f -> {
                List<Stmt.Let> lets = new ArrayList<>();
                for (FnLetContext l : f.fnLet()) lets.add(new Stmt.Let(name(l.name), expr(l.expr()), span(l)));
                yield new Decl.Fn(doc, name(f.name), params(f.params()), typeName(f.returnType), lets, expr(f.expr()), span(f));
            }
            case AttentionDeclContext a -> {
                List<AttentionItem> items = new ArrayList<>();
                for (AttentionItemContext i : a.attentionItem()) items.add(attentionItem(i));
                yield new Decl.Attention(doc, name(a.name), params(a.params()), items, span(a));
            }
            case ConfigDeclContext c -> {
                List<ConfigItem> items = new ArrayList<>();
                for (ConfigItemContext i : c.configItem()) items.add(configItem(i));
                yield new Decl.Config(doc, name(c.name), params(c.params()), items, span(c));
            }
            default -> throw new IllegalStateException("unknown declaration " + inner.getClass());
        };
    }

    private String docOf(Token start) {
        List<Token> hidden = tokens.getHiddenTokensToLeft(start.getTokenIndex(), 2);
        if (hidden == null || hidden.isEmpty()) return null;
        StringBuilder sb = new StringBuilder();
        for (Token t : hidden) {
            docTokensUsed.add(t.getTokenIndex());
            String line = t.getText().substring(3);
            if (line.startsWith(" ")) line = line.substring(1);
            if (!sb.isEmpty()) sb.append('\n');
            sb.append(line.stripTrailing());
        }
        return sb.toString();
    }

    private List<Decl.Param> params(ParamsContext p) {
        if (p == null) return null;
        List<Decl.Param> out = new ArrayList<>();
        for (ParamContext pc : p.param()) {
            Expr def = pc.ASSIGN() != null ? expr(pc.expr(pc.expr().size() - 1)) : null;
            Expr lo = pc.lo != null ? expr(pc.lo) : null;
            Expr hi = pc.hi != null ? expr(pc.hi) : null;
            out.add(new Decl.Param(name(pc.name), typeName(pc.typeName()), lo, hi, def, span(pc)));
        }
        return out;
    }

    private Decl.TypeName typeName(TypeNameContext t) {
        return new Decl.TypeName(t.getText(), span(t));
    }

    private PolicyBody.Items items(PolicyBlockContext b) {
        List<PolicyItem> items = new ArrayList<>();
        for (PolicyItemContext i : b.policyItem()) items.add(policyItem(i));
        return new PolicyBody.Items(items, span(b));
    }

    private PolicyItem policyItem(PolicyItemContext i) {
        return switch (i) {
            case PositionsItemContext p -> new PolicyItem.Positions(name(p.positionMode), span(p));
            case SelectionItemContext s -> new PolicyItem.Selection(name(s.scope), span(s));
            case ObserveItemContext o -> new PolicyItem.Observe(expr(o.expr()), name(o.at), span(o));
            case StateItemContext s -> {
                StateTypeContext tc = s.stateType();
                List<Name> axes = new ArrayList<>();
                for (int k = 1; k < tc.ident().size(); k++) axes.add(name(tc.ident(k)));
                var type = new PolicyItem.StateType(name(tc.elem), axes, span(tc));
                StateScopeContext sc = s.stateScope();
                var scope = sc.TOKEN() != null ? new PolicyItem.StateScope(PolicyItem.Scope.TOKEN, null, span(sc))
                        : sc.LANE() != null ? new PolicyItem.StateScope(PolicyItem.Scope.LANE, null, span(sc))
                        : sc.MODEL() != null ? new PolicyItem.StateScope(PolicyItem.Scope.MODEL, null, span(sc))
                        : new PolicyItem.StateScope(PolicyItem.Scope.PAGE, expr(sc.expr()), span(sc));
                yield new PolicyItem.State(name(s.name), type, scope, s.expr() != null ? expr(s.expr()) : null, span(s));
            }
            case LetItemContext l -> new Stmt.Let(name(l.name), expr(l.expr()), span(l));
            case OnItemContext o -> {
                List<PolicyItem.Event> events = new ArrayList<>();
                for (EventContext e : o.event()) events.add(event(e));
                yield new PolicyItem.On(events, block(o.block()), span(o));
            }
            case EveryItemContext e -> new PolicyItem.Every(expr(e.expr()), block(e.block()), span(e));
            case StoreItemContext s -> store(s.storeStmt());
            case HeadsItemContext h -> new Composition.HeadsWhere(expr(h.expr()), target(h.then), target(h.otherwise), span(h));
            case LayersItemContext l -> layers(l.layerRange(), l.target(), span(l));
            default -> throw new IllegalStateException("unknown policy item " + i.getClass());
        };
    }

    private Composition.Layers layers(LayerRangeContext r, TargetContext t, Span span) {
        return new Composition.Layers(expr(r.from), r.RANGE() != null, r.to != null ? expr(r.to) : null, target(t), span);
    }

    private Target target(TargetContext t) {
        if (t.policyRef() != null) return new Target.Use(policyRef(t.policyRef()), span(t));
        return new Target.Inline(items(t.policyBlock()), span(t));
    }

    private PolicyRef policyRef(PolicyRefContext r) {
        List<Arg> args = r.LPAREN() == null ? null : r.argList() == null ? List.of() : argList(r.argList(), null);
        return new PolicyRef(name(r.name), args, span(r));
    }

    private PolicyItem.Event event(EventContext e) {
        PolicyItem.EventKind kind = e.PREFILL() != null ? PolicyItem.EventKind.PREFILL
                : e.CHUNK() != null ? PolicyItem.EventKind.CHUNK
                : e.DECODE() != null ? PolicyItem.EventKind.DECODE : PolicyItem.EventKind.OVERFLOW;
        return new PolicyItem.Event(kind, e.expr() != null ? expr(e.expr()) : null, span(e));
    }

    private PolicyItem.Block block(BlockContext b) {
        try {
            if (deeper(b)) return new PolicyItem.Block(List.of(), span(b));
            List<Stmt> stmts = new ArrayList<>();
            for (StmtContext s : b.stmt()) stmts.add(stmt(s));
            return new PolicyItem.Block(stmts, span(b));
        } finally {
            nesting--;
        }
    }

    private Stmt stmt(StmtContext s) {
        return switch (s) {
            case LetStmtContext l -> new Stmt.Let(name(l.name), expr(l.expr()), span(l));
            case KeepStmtContext k -> new Stmt.Keep(expr(k.expr()), span(k));
            case EvictStmtContext e -> new Stmt.Evict(expr(e.expr()), span(e));
            case AttendStmtContext a -> new Stmt.Attend(expr(a.expr()), span(a));
            case MergeStmtContext m -> {
                Stmt.MergeBy by = null;
                if (m.mergeBy() != null) {
                    MergeByContext mb = m.mergeBy();
                    by = mb.COSINE() != null
                            ? new Stmt.MergeBy(new Name("cosine", span(mb.COSINE().getSymbol(), mb.COSINE().getSymbol())), name(mb.ident()), span(mb))
                            : new Stmt.MergeBy(new Name("nearest", span(mb)), null, span(mb));
                }
                yield new Stmt.Merge(expr(m.source), expr(m.dest), by, m.weight != null ? expr(m.weight) : null, span(m));
            }
            case StoreStmtItemContext st -> store(st.storeStmt());
            case IfStmtContext i -> ifClause(i.ifClause());
            case AssignStmtContext a -> new Stmt.Assign(name(a.name), switch (a.op.getType()) {
                case KvpLexer.ASSIGN -> Stmt.AssignOp.SET;
                case KvpLexer.PLUS_ASSIGN -> Stmt.AssignOp.ADD;
                case KvpLexer.MINUS_ASSIGN -> Stmt.AssignOp.SUB;
                default -> Stmt.AssignOp.MUL;
            }, expr(a.expr()), span(a));
            default -> throw new IllegalStateException("unknown statement " + s.getClass());
        };
    }

    private Stmt.If ifClause(IfClauseContext c) {
        try {
            if (deeper(c)) return new Stmt.If(new Expr.BoolLit(false, span(c)), new PolicyItem.Block(List.of(), span(c)), null, null, span(c));
            return new Stmt.If(expr(c.expr()), block(c.block(0)), c.elseBlock != null ? block(c.elseBlock) : null,
                    c.elseIf != null ? ifClause(c.elseIf) : null, span(c));
        } finally {
            nesting--;
        }
    }

    private Stmt.Store store(StoreStmtContext s) {
        List<Name> targets = new ArrayList<>();
        for (StoreTargetContext t : s.storeTarget()) targets.add(new Name(t.getText(), span(t)));
        FormatContext f = s.format();
        Stmt.Format format = f.INT() != null
                ? new Stmt.Format(new Name("int", span(f.INT().getSymbol(), f.INT().getSymbol())), expr(f.expr()), span(f))
                : new Stmt.Format(name(f.name), null, span(f));
        List<Stmt.QuantOption> options = new ArrayList<>();
        for (QuantOptionContext q : s.quantOption()) {
            options.add(q.PER() != null ? new Stmt.QuantOption(name(q.axis), null, span(q)) : new Stmt.QuantOption(null, expr(q.expr()), span(q)));
        }
        Stmt.StoreScope scope = null;
        StoreScopeContext sc = s.storeScope();
        if (sc != null) {
            scope = sc.FOR() != null ? new Stmt.StoreScope(Stmt.ScopeKind.FOR, expr(sc.expr()), span(sc))
                    : sc.EXCEPT() != null ? new Stmt.StoreScope(Stmt.ScopeKind.EXCEPT, expr(sc.expr()), span(sc))
                    : new Stmt.StoreScope(Stmt.ScopeKind.OTHERWISE, null, span(sc));
        }
        return new Stmt.Store(targets, format, options, scope, span(s));
    }

    private AttentionItem attentionItem(AttentionItemContext i) {
        return switch (i) {
            case AttnLetContext l -> new Stmt.Let(name(l.name), expr(l.expr()), span(l));
            case AttnLogitsContext l -> new AttentionItem.Logits(expr(l.expr()), span(l));
            case AttnMaskContext m -> new AttentionItem.Mask(expr(m.expr()), span(m));
            case AttnNormalizeContext n -> new AttentionItem.Normalize(name(n.how), span(n));
            default -> throw new IllegalStateException("unknown attention item " + i.getClass());
        };
    }

    private ConfigItem configItem(ConfigItemContext i) {
        return switch (i) {
            case ConfigAttentionContext a -> new ConfigItem.AttentionUse(policyRef(a.policyRef()), span(a));
            case ConfigLayersContext l -> layers(l.layerRange(), l.target(), span(l));
            case ConfigHeadsContext h -> new Composition.HeadsWhere(expr(h.expr()), target(h.then), target(h.otherwise), span(h));
            default -> throw new IllegalStateException("unknown config item " + i.getClass());
        };
    }

    // ---------------------------------------------------------------- expressions

    /**
     * How deep expressions, else-if chains and blocks may nest in the tree: the later stages walk it recursively, so
     * deeper input is reported where the limit is crossed ({@code KvpParsing} stops deeper brackets before parsing).
     */
    static final int MAX_NESTING = 256;
    private int nesting;
    private boolean tooDeep;

    /** Whether entering one more level passes {@link #MAX_NESTING}: then reported once, at {@code where}. */
    private boolean deeper(ParserRuleContext where) {
        if (++nesting <= MAX_NESTING) return false;
        if (!tooDeep) {
            tooDeep = true;
            problems.add(new dev.kvpc.compiler.diag.Diagnostic(dev.kvpc.compiler.diag.Code.E001, "nested more than " + MAX_NESTING + " levels deep here",
                    span(where), List.of(new dev.kvpc.compiler.diag.Diagnostic.Note(
                            "expressions, else-if chains and blocks nest at most " + MAX_NESTING + " deep: name parts with let, or split the chain", null))));
        }
        return true;
    }

    Expr expr(ExprContext e) {
        try {
            // past the limit the rest is not built: a stand-in keeps the tree shallow (the file does not check)
            return deeper(e) ? new Expr.IntLit(0, span(e)) : exprAt(e);
        } finally {
            nesting--;
        }
    }

    private Expr exprAt(ExprContext e) {
        return switch (e) {
            case PrimaryExprContext p -> primary(p.primary());
            case UnaryExprContext u -> new Expr.Unary(u.op.getType() == KvpLexer.MINUS ? Expr.UnaryOp.NEG : Expr.UnaryOp.NOT, expr(u.expr()), span(u));
            case MulExprContext m -> binary(m.op, m.expr(0), m.expr(1), m);
            case IntersectExprContext m -> binary(m.op, m.expr(0), m.expr(1), m);
            case AddExprContext m -> binary(m.op, m.expr(0), m.expr(1), m);
            case WithinExprContext w -> new Expr.Binary(BinaryOp.WITHIN, expr(w.expr(0)), expr(w.expr(1)), span(w));
            case CompareExprContext m -> binary(m.op, m.expr(0), m.expr(1), m);
            case AndExprContext a -> new Expr.Binary(BinaryOp.AND, expr(a.expr(0)), expr(a.expr(1)), span(a));
            case OrExprContext o -> new Expr.Binary(BinaryOp.OR, expr(o.expr(0)), expr(o.expr(1)), span(o));
            case CondExprContext c -> new Expr.Conditional(expr(c.expr(0)), expr(c.expr(1)), expr(c.expr(2)), span(c));
            default -> throw new IllegalStateException("unknown expression " + e.getClass());
        };
    }

    private Expr binary(Token op, ExprContext l, ExprContext r, ParserRuleContext whole) {
        BinaryOp bop = switch (op.getType()) {
            case KvpLexer.STAR -> BinaryOp.MUL;
            case KvpLexer.SLASH -> BinaryOp.DIV;
            case KvpLexer.PERCENT -> BinaryOp.MOD;
            case KvpLexer.AMP -> BinaryOp.INTERSECT;
            case KvpLexer.PLUS -> BinaryOp.ADD;
            case KvpLexer.MINUS -> BinaryOp.SUB;
            case KvpLexer.LT -> BinaryOp.LT;
            case KvpLexer.LE -> BinaryOp.LE;
            case KvpLexer.GT -> BinaryOp.GT;
            case KvpLexer.GE -> BinaryOp.GE;
            case KvpLexer.EQ -> BinaryOp.EQ;
            default -> BinaryOp.NE;
        };
        return new Expr.Binary(bop, expr(l), expr(r), span(whole));
    }

    private Expr primary(PrimaryContext p) {
        return switch (p) {
            case IntLitContext i -> new Expr.IntLit(intLiteral(i), span(i));
            case FloatLitContext f -> new Expr.FloatLit(Double.parseDouble(f.getText()), f.getText(), span(f));
            case BoolLitContext b -> new Expr.BoolLit(b.TRUE() != null, span(b));
            case StringLitContext s -> new Expr.StringLit(unquote(s.getText()), span(s));
            case ParenExprContext pe -> expr(pe.expr());
            case AllSetContext a -> new Expr.AllSet(span(a));
            case CompensationSetContext c -> new Expr.Compensation(span(c));
            case CastExprContext c -> new Expr.Cast(c.INT() != null ? Expr.ScalarKind.INT : Expr.ScalarKind.FLOAT, expr(c.expr()), span(c));
            case CallExprContext c -> {
                List<Name> over = new ArrayList<>();
                List<Arg> args = c.argList() == null ? List.of() : argList(c.argList(), over);
                boolean hasOver = c.argList() != null && c.argList().overClause() != null;
                yield new Expr.Call(name(c.callee), args, hasOver ? over : null, span(c));
            }
            case AxisTableExprContext c -> {
                List<Name> over = new ArrayList<>();
                List<Arg> args = c.argList() == null ? List.of() : argList(c.argList(), over);
                boolean hasOver = c.argList() != null && c.argList().overClause() != null;
                yield new Expr.Call(new Name(c.TABLE().getText(), span(c.TABLE().getSymbol(), c.TABLE().getSymbol())), args, hasOver ? over : null, name(c.axis), span(c));
            }
            case NameExprContext n -> new Expr.NameRef(n.getText(), span(n));
            default -> throw new IllegalStateException("unknown primary " + p.getClass());
        };
    }

    /** An integer literal's value; one too large for 64 bits is an error (E205), and reads as the largest int. */
    private long intLiteral(IntLitContext i) {
        try {
            return Long.parseLong(i.getText());
        } catch (NumberFormatException e) {
            problems.add(new dev.kvpc.compiler.diag.Diagnostic(dev.kvpc.compiler.diag.Code.E205,
                    "integer literal " + i.getText() + " is beyond the 64-bit range (the largest int is " + Long.MAX_VALUE + ")", span(i), List.of()));
            return Long.MAX_VALUE;
        }
    }

    private List<Arg> argList(ArgListContext a, List<Name> overOut) {
        List<Arg> args = new ArrayList<>();
        for (ArgContext ac : a.arg()) {
            args.add(switch (ac) {
                case NamedArgContext n -> new Arg.Named(name(n.name), expr(n.expr()), span(n));
                case PerHeadArgContext ph -> new Arg.PerHeadAtLeast(expr(ph.expr()), span(ph));
                case PositionalArgContext pa -> new Arg.Positional(expr(pa.expr()), span(pa));
                default -> throw new IllegalStateException("unknown argument " + ac.getClass());
            });
        }
        if (a.overClause() != null && overOut != null) {
            for (IdentContext i : a.overClause().ident()) overOut.add(name(i));
        }
        return args;
    }

    // ---------------------------------------------------------------- spans and names

    private Name name(IdentContext i) {
        return new Name(i.getText(), span(i));
    }

    private Span span(ParserRuleContext ctx) {
        Token stop = ctx.getStop() == null || ctx.getStop().getTokenIndex() < ctx.getStart().getTokenIndex() ? ctx.getStart() : ctx.getStop();
        return span(ctx.getStart(), stop);
    }

    Span span(Token start, Token stop) {
        String text = stop.getText() == null ? "" : stop.getText();
        int nl = text.lastIndexOf('\n');
        int endLine = stop.getLine() + (int) text.chars().filter(ch -> ch == '\n').count();
        int endCol = nl < 0 ? stop.getCharPositionInLine() + text.length() + 1 : text.length() - nl;
        int startIdx = Math.max(0, start.getStartIndex());
        int endIdx = Math.max(startIdx, stop.getStopIndex() + 1);
        if (endLine == start.getLine()) endCol = Math.max(endCol, start.getCharPositionInLine() + 1);
        return new Span(file, Math.max(1, start.getLine()), start.getCharPositionInLine() + 1, Math.max(endLine, start.getLine()),
                endCol, startIdx, endIdx);
    }

    static String unquote(String quoted) {
        String body = quoted.substring(1, quoted.length() - 1);
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < body.length(); i++) {
            char c = body.charAt(i);
            if (c == '\\' && i + 1 < body.length()) {
                char n = body.charAt(++i);
                sb.append(switch (n) { case 'n' -> '\n'; case 't' -> '\t'; default -> n; });
            } else {
                sb.append(c);
            }
        }
        return sb.toString();
    }

}
