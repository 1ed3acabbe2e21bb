package dev.kvpc.compiler.fmt;

import dev.kvpc.compiler.ast.*;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Collectors;

/**
 * The canonical printer: one item or statement per line, four-space indentation, minimal parentheses, one blank
 * line between declarations, blank lines inside bodies kept (at most one). Comments are re-attached by position, so
 * formatting loses none. Formatting a formatted file changes nothing, and the output parses to the same AST.
 */
public final class Formatter {
    private static final String INDENT = "    ";

    private final List<StringBuilder> lines = new ArrayList<>();
    private final List<KvpFile.Comment> pending;
    private int indent;
    private int lastSourceLine = 0;

    private Formatter(KvpFile file) {
        pending = new ArrayList<>(file.comments());
        pending.sort(Comparator.comparingInt(c -> c.span().start()));
    }

    public static String format(KvpFile file) {
        Formatter f = new Formatter(file);
        f.file(file);
        StringBuilder out = new StringBuilder();
        for (StringBuilder l : f.lines) out.append(stripRight(l)).append('\n');
        String s = out.toString();
        while (s.startsWith("\n")) s = s.substring(1);
        return s;
    }

    private static String stripRight(StringBuilder l) {
        int end = l.length();
        while (end > 0 && l.charAt(end - 1) == ' ') end--;
        return l.substring(0, end);
    }

    // ---------------------------------------------------------------- layout

    private void line(String text) {
        lines.add(new StringBuilder(INDENT.repeat(indent)).append(text));
    }

    private void blank() {
        if (!lines.isEmpty() && !lines.getLast().isEmpty()) lines.add(new StringBuilder());
    }

    /** Emits comments that start before {@code offset}; one on the line of the last node trails it. */
    private void comments(int offset) {
        while (!pending.isEmpty() && pending.getFirst().span().start() < offset) {
            KvpFile.Comment c = pending.removeFirst();
            if (c.span().line() == lastSourceLine && !lines.isEmpty() && !lines.getLast().isEmpty()) {
                lines.getLast().append("  ").append(c.text());
            } else {
                if (lastSourceLine > 0 && c.span().line() > lastSourceLine + 1) blank();
                String[] parts = c.text().split("\n", -1);
                line(parts[0]);
                for (int i = 1; i < parts.length; i++) lines.add(new StringBuilder(parts[i].replaceAll("\\s+$", "")));
            }
            lastSourceLine = c.span().endLine();
        }
    }

    /** Before a line-level node: its comments, and a blank line if the source had one. */
    private void before(Span s, boolean keepBlank) {
        comments(s.start());
        if (keepBlank && lastSourceLine > 0 && s.line() > lastSourceLine + 1) blank();
    }

    private void after(Span s) {
        lastSourceLine = s.endLine();
    }

    // ---------------------------------------------------------------- files and declarations

    private void file(KvpFile f) {
        for (KvpFile.Import i : f.imports()) {
            before(i.span(), false);
            line("import " + quote(i.path()));
            after(i.span());
        }
        boolean first = f.imports().isEmpty();
        for (Decl d : f.decls()) {
            comments(docStart(d));
            if (!first) blank();
            first = false;
            before(d.span(), false);
            if (d.doc() != null) for (String l : d.doc().split("\n", -1)) line(l.isEmpty() ? "///" : "/// " + l);
            decl(d);
        }
        comments(Integer.MAX_VALUE);
    }

    /** Comments before a declaration's doc comment belong above it; the doc itself is printed from the AST. */
    private static int docStart(Decl d) {
        return d.span().start();
    }

    private void decl(Decl d) {
        switch (d) {
            case Decl.Policy p -> {
                String head = "policy " + p.name().text() + params(p.params());
                switch (p.body()) {
                    case PolicyBody.Alias a -> {
                        line(head + " = " + ref(a.target()));
                        after(p.span());
                    }
                    case PolicyBody.Items items -> itemsBlock(head, items, p.span());
                }
            }
            case Decl.Fn f -> {
                line("fn " + f.name().text() + params(f.params()) + " -> " + f.returnType().name() + " {");
                lastSourceLine = f.span().line();
                indent++;
                for (Stmt.Let l : f.lets()) {
                    before(l.span(), true);
                    line("let " + l.name().text() + " = " + expr(l.value()));
                    after(l.span());
                }
                before(f.result().span(), true);
                line(expr(f.result()));
                after(f.result().span());
                comments(f.span().end());
                indent--;
                line("}");
                after(f.span());
            }
            case Decl.Attention a -> {
                String head = "attention " + a.name().text() + params(a.params());
                if (a.items().isEmpty() && !hasCommentsBefore(a.span().end())) {
                    line(head + " {}");
                } else {
                    line(head + " {");
                    lastSourceLine = a.span().line();
                    indent++;
                    for (AttentionItem i : a.items()) {
                        before(i.span(), true);
                        line(switch (i) {
                            case Stmt.Let l -> "let " + l.name().text() + " = " + expr(l.value());
                            case AttentionItem.Logits l -> "logits = " + expr(l.value());
                            case AttentionItem.Mask m -> "mask = " + expr(m.value());
                            case AttentionItem.Normalize n -> "normalize " + n.how().text();
                        });
                        after(i.span());
                    }
                    comments(a.span().end());
                    indent--;
                    line("}");
                }
                after(a.span());
            }
            case Decl.Config c -> {
                line("config " + c.name().text() + params(c.params()) + " {");
                lastSourceLine = c.span().line();
                indent++;
                for (ConfigItem i : c.items()) {
                    before(i.span(), true);
                    switch (i) {
                        case ConfigItem.AttentionUse a -> {
                            line("attention " + ref(a.variant()));
                            after(a.span());
                        }
                        case Composition comp -> composition(comp);
                    }
                }
                comments(c.span().end());
                indent--;
                line("}");
                after(c.span());
            }
        }
    }

    private boolean hasCommentsBefore(int offset) {
        return !pending.isEmpty() && pending.getFirst().span().start() < offset;
    }

    private void itemsBlock(String head, PolicyBody.Items items, Span whole) {
        if (items.items().isEmpty() && !hasCommentsBefore(items.span().end())) {
            line(head + " {}");
            after(whole);
            return;
        }
        line(head + " {");
        lastSourceLine = items.span().line();
        indent++;
        for (PolicyItem i : items.items()) {
            before(i.span(), true);
            item(i);
        }
        comments(items.span().end());
        indent--;
        line("}");
        after(items.span());
    }

    private void item(PolicyItem i) {
        switch (i) {
            case PolicyItem.Positions p -> { line("positions " + p.mode().text()); after(p.span()); }
            case PolicyItem.Selection s -> { line("selection per " + s.scope().text()); after(s.span()); }
            case PolicyItem.Observe o -> { line("observe " + expr(o.queries()) + " queries at " + o.at().text()); after(o.span()); }
            case PolicyItem.State s -> {
                String type = s.type().elem().text() + (s.type().axes().isEmpty() ? ""
                        : s.type().axes().stream().map(Name::text).collect(Collectors.joining(", ", "[", "]")));
                String scope = switch (s.scope().scope()) {
                    case TOKEN -> "token";
                    case LANE -> "lane";
                    case MODEL -> "model";
                    case PAGE -> "page(" + expr(s.scope().pageSize()) + ")";
                };
                line("state " + s.name().text() + ": " + type + " per " + scope + (s.init() != null ? " = " + expr(s.init()) : ""));
                after(s.span());
            }
            case Stmt.Let l -> { line("let " + l.name().text() + " = " + expr(l.value())); after(l.span()); }
            case PolicyItem.On on -> block("on " + on.events().stream().map(this::event).collect(Collectors.joining(", ")), on.body(), on.span());
            case PolicyItem.Every ev -> block("every " + expr(ev.period()), ev.body(), ev.span());
            case Stmt.Store st -> { line(store(st)); after(st.span()); }
            case Composition comp -> composition(comp);
        }
    }

    private void composition(Composition comp) {
        switch (comp) {
            case Composition.HeadsWhere h -> {
                String head = "heads where " + expr(h.condition());
                if (h.then() instanceof Target.Use u) {
                    line(head + " use " + ref(u.ref()));
                    after(u.span());
                } else {
                    itemsBlock(head, ((Target.Inline) h.then()).body(), h.then().span());
                }
                switch (h.otherwise()) {
                    case Target.Use u -> { line("otherwise use " + ref(u.ref())); after(u.span()); }
                    case Target.Inline in -> itemsBlock("otherwise", in.body(), in.span());
                }
            }
            case Composition.Layers l -> {
                String range = expr(l.from()) + (l.ranged() ? ".." + (l.to() != null ? expr(l.to()) : "") : "");
                switch (l.target()) {
                    case Target.Use u -> { line("layers " + range + " use " + ref(u.ref())); after(l.span()); }
                    case Target.Inline in -> itemsBlock("layers " + range, in.body(), l.span());
                }
            }
        }
    }

    private String event(PolicyItem.Event e) {
        return e.kind() == PolicyItem.EventKind.OVERFLOW ? "overflow(" + expr(e.budget()) + ")" : e.kind().word();
    }

    private void block(String head, PolicyItem.Block b, Span whole) {
        if (b.stmts().isEmpty() && !hasCommentsBefore(b.span().end())) {
            line(head + " {}");
            after(whole);
            return;
        }
        line(head + " {");
        lastSourceLine = b.span().line();
        indent++;
        stmts(b.stmts());
        comments(b.span().end());
        indent--;
        line("}");
        after(b.span());
    }

    private void stmts(List<Stmt> stmts) {
        for (Stmt s : stmts) {
            before(s.span(), true);
            stmt(s);
        }
    }

    private void stmt(Stmt s) {
        switch (s) {
            case Stmt.Let l -> line("let " + l.name().text() + " = " + expr(l.value()));
            case Stmt.Keep k -> line("keep " + expr(k.set()));
            case Stmt.Evict e -> line("evict " + expr(e.set()));
            case Stmt.Attend a -> line("attend " + expr(a.set()));
            case Stmt.Merge m -> line("merge " + expr(m.source()) + " into " + expr(m.dest())
                    + (m.by() == null ? "" : " by " + (m.by().of() == null ? "nearest" : "cosine(" + m.by().of().text() + ")"))
                    + (m.weight() == null ? "" : " weighted by " + expr(m.weight())));
            case Stmt.Store st -> line(store(st));
            case Stmt.If i -> {
                ifChain("if", i);
                return;
            }
            case Stmt.Assign a -> line(a.target().text() + " " + a.op().symbol + " " + expr(a.value()));
        }
        after(s.span());
    }

    private void ifChain(String keyword, Stmt.If i) {
        line(keyword + " " + expr(i.condition()) + " {");
        ifBody(i);
    }

    /** The rest of an else-if chain after its header line. */
    private void ifBody(Stmt.If i) {
        lastSourceLine = i.span().line();
        indent++;
        stmts(i.then().stmts());
        comments(i.then().span().end());
        indent--;
        if (i.elseIf() != null) {
            line("} else if " + expr(i.elseIf().condition()) + " {");
            ifBody(i.elseIf());
        } else if (i.elseBlock() != null) {
            line("} else {");
            lastSourceLine = i.elseBlock().span().line();
            indent++;
            stmts(i.elseBlock().stmts());
            comments(i.elseBlock().span().end());
            indent--;
            line("}");
            after(i.elseBlock().span());
        } else {
            line("}");
            after(i.then().span());
        }
    }

    private String store(Stmt.Store st) {
        StringBuilder sb = new StringBuilder("store ");
        sb.append(st.targets().stream().map(Name::text).collect(Collectors.joining(", ")));
        sb.append(" as ").append(st.format().bits() != null ? "int(" + expr(st.format().bits()) + ")" : st.format().word().text());
        for (Stmt.QuantOption q : st.options()) {
            sb.append(q.axis() != null ? " per " + q.axis().text() : " group(" + expr(q.size()) + ")");
        }
        if (st.scope() != null) {
            sb.append(switch (st.scope().kind()) {
                case FOR -> " for " + expr(st.scope().set());
                case EXCEPT -> " except " + expr(st.scope().set());
                case OTHERWISE -> " otherwise";
            });
        }
        return sb.toString();
    }

    // ---------------------------------------------------------------- parameters, references, expressions

    private String params(List<Decl.Param> params) {
        if (params == null) return "";
        return params.stream().map(p -> p.name().text() + ": " + p.type().name()
                        + (p.lo() != null ? " in " + expr(p.lo()) + ".." + expr(p.hi()) : "")
                        + (p.defaultValue() != null ? " = " + expr(p.defaultValue()) : ""))
                .collect(Collectors.joining(", ", "(", ")"));
    }

    private String ref(PolicyRef r) {
        if (r.args() == null) return r.name().text();
        return r.name().text() + "(" + r.args().stream().map(this::arg).collect(Collectors.joining(", ")) + ")";
    }

    private String arg(Arg a) {
        return switch (a) {
            case Arg.Positional p -> expr(p.value());
            case Arg.Named n -> n.name().text() + " = " + expr(n.value());
            case Arg.PerHeadAtLeast ph -> "per head at least " + expr(ph.value());
        };
    }

    /** Precedence of an expression as an operand: atoms 10, unary 8, binary per operator, conditional 0. */
    private static int prec(Expr e) {
        return switch (e) {
            case Expr.Binary b -> b.op().precedence;
            case Expr.Unary u -> 8;
            case Expr.Conditional c -> 0;
            default -> 10;
        };
    }

    public static String expr(Expr e) {
        return switch (e) {
            case Expr.IntLit i -> Long.toString(i.value());
            case Expr.FloatLit f -> f.text();
            case Expr.BoolLit b -> Boolean.toString(b.value());
            case Expr.StringLit s -> quote(s.value());
            case Expr.NameRef n -> n.name();
            case Expr.AllSet a -> "all";
            case Expr.Compensation c -> "compensation";
            case Expr.Unary u -> u.op().symbol + wrap(u.operand(), prec(u.operand()) < 8);
            case Expr.Binary b -> {
                int p = b.op().precedence;
                String l = wrap(b.left(), prec(b.left()) < p);
                String r = wrap(b.right(), prec(b.right()) <= p);
                yield l + " " + b.op().symbol + " " + r;
            }
            case Expr.Conditional c -> wrap(c.condition(), prec(c.condition()) == 0) + " ? " + expr(c.ifTrue()) + " : " + expr(c.ifFalse());
            case Expr.Cast c -> (c.to() == Expr.ScalarKind.INT ? "int" : "float") + "(" + expr(c.operand()) + ")";
            case Expr.Call c -> {
                List<String> parts = new ArrayList<>();
                for (Arg a : c.args()) {
                    parts.add(switch (a) {
                        case Arg.Positional p -> expr(p.value());
                        case Arg.Named n -> n.name().text() + " = " + expr(n.value());
                        case Arg.PerHeadAtLeast ph -> "per head at least " + expr(ph.value());
                    });
                }
                if (c.over() != null) parts.add("over: " + c.over().stream().map(Name::text).collect(Collectors.joining(", ")));
                yield c.callee().text() + (c.axis() != null ? "[" + c.axis().text() + "]" : "") + "(" + String.join(", ", parts) + ")";
            }
        };
    }

    private static String wrap(Expr e, boolean parens) {
        return parens ? "(" + expr(e) + ")" : expr(e);
    }

    /** A KVP string literal for {@code s}: quoted, with backslash, quote, newline and tab escaped. */
    public static String quote(String s) {
        StringBuilder sb = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\t' -> sb.append("\\t");
                default -> sb.append(c);
            }
        }
        return sb.append('"').toString();
    }
}
