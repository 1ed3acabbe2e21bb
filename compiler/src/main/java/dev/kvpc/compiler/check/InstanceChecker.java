package dev.kvpc.compiler.check;

import dev.kvpc.compiler.ast.*;
import dev.kvpc.compiler.ast.PolicyItem.EventKind;
import dev.kvpc.compiler.diag.Code;
import dev.kvpc.compiler.diag.Diagnostic;
import dev.kvpc.compiler.diag.Diagnostic.Note;
import dev.kvpc.compiler.diag.Diagnostics;
import dev.kvpc.compiler.model.ModelShape;

import java.util.*;

/**
 * Checks that depend on values: budgets, counts and protected sets, empty sets, periods and sizes, bit widths and
 * group sizes, tables, layer ranges, and the fit of policies to a config's attention variant. Each policy is
 * checked for every lane of the model with its parameters' values: standalone (with its defaults) and wherever it
 * is used with arguments (then reported at the use).
 */
final class InstanceChecker {
    /** Where an instance was created with arguments; diagnostics inside it are reported here. */
    private record Site(Span span, String policy) {}

    /** The normalisation of the attention variant an instance runs under. */
    private record Variant(String normalize, Span span) {}

    private static final Variant STANDARD = new Variant("softmax", null);

    private final Diagnostics diags;
    private final Map<String, Decl> decls;
    private final ModelShape model;
    private final Tables tables;
    /** (code, span) pairs reported by standalone instances, so a use with arguments does not repeat them. */
    private final Set<String> standaloneFindings = new HashSet<>();

    InstanceChecker(Diagnostics diags, Map<String, Decl> decls, ModelShape model, Tables tables) {
        this.diags = diags;
        this.decls = decls;
        this.model = model;
        this.tables = tables;
    }

    void check(Decl d) {
        check(d, Map.of());
    }

    /**
     * As {@link #check(Decl)}, with {@code given} values (from a command line: {@code --param}) in place of those
     * parameters' defaults: a policy is checked as it will run, so a default that does not fit this model is no error
     * when a value is given for it.
     */
    void check(Decl d, Map<String, Object> given) {
        switch (d) {
            case Decl.Policy p -> {
                if (p.paramList().stream().allMatch(x -> x.defaultValue() != null || given.containsKey(x.name().text()))) {
                    forEachLane((layer, head) -> {
                        Evaluator ev = evaluator(layer, head, null);
                        Map<String, Val> env = defaults(p.paramList(), ev, null, given);
                        policy(p, env, ev, null, STANDARD);
                    });
                }
            }
            case Decl.Config c -> {
                if (c.paramList().stream().allMatch(x -> x.defaultValue() != null || given.containsKey(x.name().text()))) config(c, given);
            }
            case Decl.Attention a -> {
                if (a.paramList().stream().allMatch(x -> x.defaultValue() != null)) {
                    Evaluator ev = evaluator(0, 0, null);
                    defaults(a.paramList(), ev, null);
                }
            }
            case Decl.Fn f -> { }
        }
    }

    private interface LaneAction { void run(int layer, int head); }

    private void forEachLane(LaneAction a) {
        for (int l = 0; l < model.layers(); l++) {
            for (int h = 0; h < model.kvHeads(); h++) a.run(l, h);
        }
    }

    private Evaluator evaluator(int layer, int head, Site site) {
        return new Evaluator(model, layer, head, decls, (s, channels) -> tables.load(s, site == null ? null : site.span(), channels), (call, n) -> countCheck(call, n, site),
                (expr, x) -> report(site, Code.E205, expr.span(), "integer overflow: this is " + String.format(java.util.Locale.ROOT, "%.0f", x) + ", beyond the 64-bit range (the largest int is "
                        + Long.MAX_VALUE + "), where it would wrap around"));
    }

    // ---------------------------------------------------------------- reporting

    private void report(Site site, Code code, Span at, String message, Note... notes) {
        String key = code + "@" + at;
        if (site == null) {
            standaloneFindings.add(key);
            diags.error(code, at, message, notes);
            return;
        }
        if (standaloneFindings.contains(key)) return;
        if (at.file().equals(site.span().file()) && at.start() >= site.span().start() && at.end() <= site.span().end()) {
            diags.error(code, at, message, notes);
            return;
        }
        List<Note> all = new ArrayList<>();
        all.add(new Note("in '" + site.policy() + "': " + message, at));
        all.addAll(Arrays.asList(notes));
        diags.report(new Diagnostic(code, "with these arguments, '" + site.policy() + "' fails a check: " + message, site.span(), all));
    }

    private void countCheck(Expr.Call call, Val n, Site site) {
        String f = call.callee().text();
        List<Expr> positional = new ArrayList<>();
        for (Arg a : call.args()) if (a instanceof Arg.Positional p) positional.add(p.value());
        if (positional.isEmpty()) return;
        Expr countExpr = positional.size() > 1 ? positional.get(1) : positional.get(0);
        boolean ranking = f.equals("top") || f.equals("bottom");
        if (!(n instanceof Val.Num num)) {
            // a count computed from the data: nothing keeps it from going negative (an empty set at run time)
            if (ranking) {
                report(site, Code.E300, countExpr.span(), "the count of " + f + "(...) depends on the data and can be negative",
                        new Note("bound it: max(0, ...)", null));
            }
            return;
        }
        if (ranking && num.lin().lowerBound() < 0) {
            report(site, Code.E300, countExpr.span(), "the count of " + f + "(...) " + negativeWords(num.lin()));
        } else if (!ranking && num.known() && num.value() < 0) {
            report(site, Code.E300, countExpr.span(), "the count of " + f + "(...) is " + Lin.num(num.value()));
        }
    }

    private String negativeWords(Lin v) {
        return v.isConstant() ? "is " + Lin.num(v.constant()) : "can be negative (" + v.show() + ")";
    }

    // ---------------------------------------------------------------- parameters

    /** Evaluates defaults in order, checking declared ranges. */
    private Map<String, Val> defaults(List<Decl.Param> params, Evaluator ev, Site site) {
        return defaults(params, ev, site, Map.of());
    }

    /** The parameters' values: {@code given} ones (checked against their ranges at the declaration), else defaults. */
    private Map<String, Val> defaults(List<Decl.Param> params, Evaluator ev, Site site, Map<String, Object> given) {
        Map<String, Val> env = new HashMap<>();
        for (Decl.Param p : params) {
            Object g = given.get(p.name().text());
            if (g == null && p.defaultValue() == null) continue;
            if (g != null && !fits(p.type().name(), g)) {
                report(site, Code.E200, p.span(), "parameter '" + p.name().text() + "' is " + p.type().name() + " but the value given for it, " + g
                        + ", is not", new Note("given on the command line (--param)", null));
                // the rest is checked with the default, so that this is the one error the value causes
                if (p.defaultValue() == null) {
                    env.put(p.name().text(), new Val.Unknown());
                    continue;
                }
                g = null;
            }
            Val v = g != null ? value(g, p.span()) : ev.eval(p.defaultValue(), env);
            v = tableParam(p, v, site);
            rangeCheck(p, v, g != null ? p.span() : p.defaultValue().span(), env, ev, site);
            env.put(p.name().text(), v);
        }
        return env;
    }

    /** Whether a value given from outside the program suits a parameter of type {@code type} (an int widens to float). */
    private static boolean fits(String type, Object v) {
        if (Tables.isTableType(type)) return v instanceof String;
        return switch (type) {
            case "int" -> v instanceof Long || v instanceof Integer;
            case "float" -> v instanceof Number;
            case "bool" -> v instanceof Boolean;
            default -> true;
        };
    }

    /** A value given from outside the program (a number, boolean or string), as the evaluator holds it. */
    private static Val value(Object v, Span at) {
        return switch (v) {
            case Long l -> Val.Num.of(l, true);
            case Integer i -> Val.Num.of(i, true);
            case Double x -> Val.Num.of(x, false);
            case Float x -> Val.Num.of(x, false);
            case Boolean b -> new Val.Bool(b);
            case String s -> new Val.Str(s, at);
            default -> new Val.Unknown();
        };
    }

    private Val tableParam(Decl.Param p, Val v, Site site) {
        if (Tables.isTableType(p.type().name()) && v instanceof Val.Str s) {
            return tables.load(new Expr.StringLit(s.value(), s.span()), site == null ? null : site.span(), Tables.isChannelTable(p.type().name()));
        }
        return v;
    }

    private void rangeCheck(Decl.Param p, Val v, Span at, Map<String, Val> env, Evaluator ev, Site site) {
        if (p.lo() == null || !(v instanceof Val.Num n) || !n.known()) return;
        Val lo = ev.eval(p.lo(), env), hi = ev.eval(p.hi(), env);
        if (lo instanceof Val.Num l && hi instanceof Val.Num h && l.known() && h.known()) {
            if (n.value() < l.value() || n.value() > h.value()) {
                report(site, Code.E111, at, "'" + p.name().text() + "' is " + Lin.num(n.value()) + ", outside its declared range "
                        + Lin.num(l.value()) + ".." + Lin.num(h.value()), new Note("declared here", p.span()));
            }
        }
    }

    /** Binds a reference's arguments (evaluated in the caller's environment) to the callee's parameters. */
    private Map<String, Val> bind(PolicyRef ref, List<Decl.Param> params, Map<String, Val> callerEnv, Evaluator ev, Site site) {
        Map<String, Expr> given = new HashMap<>();
        int i = 0;
        for (Arg a : ref.argList()) {
            switch (a) {
                case Arg.Positional p -> {
                    if (i < params.size()) given.put(params.get(i).name().text(), p.value());
                    i++;
                }
                case Arg.Named n -> given.put(n.name().text(), n.value());
                case Arg.PerHeadAtLeast ph -> { }
            }
        }
        Map<String, Val> env = new HashMap<>();
        for (Decl.Param p : params) {
            Expr e = given.get(p.name().text());
            Val v;
            if (e != null) {
                v = tableParam(p, ev.eval(e, callerEnv), site);
                rangeCheck(p, v, e.span(), env, ev, null);
            } else if (p.defaultValue() != null) {
                v = tableParam(p, ev.eval(p.defaultValue(), env), site);
            } else {
                v = Val.UNKNOWN;
            }
            env.put(p.name().text(), v);
        }
        return env;
    }

    // ---------------------------------------------------------------- configs and composition

    private void config(Decl.Config c, Map<String, Object> given) {
        Variant variant = STANDARD;
        for (ConfigItem item : c.items()) {
            if (item instanceof ConfigItem.AttentionUse a && decls.get(a.variant().name().text()) instanceof Decl.Attention att) {
                String how = "softmax";
                for (AttentionItem ai : att.items()) if (ai instanceof AttentionItem.Normalize n) how = n.how().text();
                variant = new Variant(how, a.span());
            }
        }
        // the variant's arguments against its declared ranges (sliding(w = 0) would mask every entry)
        for (ConfigItem item : c.items()) {
            if (item instanceof ConfigItem.AttentionUse a && decls.get(a.variant().name().text()) instanceof Decl.Attention att) {
                Evaluator ev = evaluator(0, 0, null);
                if (att.params() != null) bind(a.variant(), att.params(), defaults(c.paramList(), ev, null, given), ev, null);
            }
        }
        Variant v = variant;
        List<PolicyItem> asItems = new ArrayList<>();
        for (ConfigItem item : c.items()) if (item instanceof Composition comp) asItems.add((PolicyItem) comp);
        forEachLane((layer, head) -> {
            Evaluator ev = evaluator(layer, head, null);
            Map<String, Val> env = defaults(c.paramList(), ev, null, given);
            composition(asItems, env, ev, null, v, c.name().text());
        });
    }

    /** Runs an instance of policy {@code p} in one lane. */
    private void policy(Decl.Policy p, Map<String, Val> env, Evaluator ev, Site site, Variant variant) {
        switch (p.body()) {
            case PolicyBody.Alias a -> {
                if (decls.get(a.target().name().text()) instanceof Decl.Policy target) {
                    Site inner = site != null ? site : new Site(a.target().span(), target.name().text());
                    Map<String, Val> calleeEnv = bind(a.target(), target.paramList(), env, ev, site);
                    policy(target, calleeEnv, evaluator(ev.layer(), ev.head(), inner), inner, variant);
                }
            }
            case PolicyBody.Items items -> items(items.items(), env, ev, site, variant, p.name().text());
        }
    }

    private void items(List<PolicyItem> items, Map<String, Val> env, Evaluator ev, Site site, Variant variant, String owner) {
        boolean composed = items.stream().anyMatch(i -> i instanceof Composition);
        if (composed) composition(items, env, ev, site, variant, owner);
        else leaf(items, new HashMap<>(env), ev, site, variant);
    }

    private void composition(List<PolicyItem> items, Map<String, Val> env, Evaluator ev, Site site, Variant variant, String owner) {
        // layers: find the claim for this lane's layer, and check claims do not overlap (once per owner and lane set)
        List<int[]> ranges = new ArrayList<>();
        Target chosen = null;
        boolean anyLayers = false;
        for (PolicyItem item : items) {
            if (item instanceof Composition.Layers l) {
                anyLayers = true;
                Val from = ev.eval(l.from(), env);
                Val to = l.to() != null ? ev.eval(l.to(), env) : null;
                int lo = from instanceof Val.Num f && f.known() ? (int) f.value() : -1;
                int hi = !l.ranged() ? lo : to == null ? model.layers() - 1 : to instanceof Val.Num t && t.known() ? (int) t.value() : -1;
                if (lo < 0 || hi < 0) continue;
                for (int[] r : ranges) {
                    if (lo <= r[1] && r[0] <= hi) {
                        report(site, Code.E504, l.span(), "layers " + lo + ".." + hi + " overlap layers " + r[0] + ".." + r[1]
                                + ", which another clause already gives to a policy");
                    }
                }
                ranges.add(new int[] {lo, hi});
                if (chosen == null && ev.layer() >= lo && ev.layer() <= hi) chosen = l.target();
            }
        }
        for (PolicyItem item : items) {
            if (item instanceof Composition.HeadsWhere h && (chosen == null || !anyLayers)) {
                Val cond = ev.eval(h.condition(), env);
                if (cond instanceof Val.Bool b && b.value() != null) {
                    target(b.value() ? h.then() : h.otherwise(), env, ev, site, variant);
                } else {
                    target(h.then(), env, ev, site, variant);
                    target(h.otherwise(), env, ev, site, variant);
                }
            }
        }
        if (chosen != null) target(chosen, env, ev, site, variant);
    }

    private void target(Target t, Map<String, Val> env, Evaluator ev, Site site, Variant variant) {
        switch (t) {
            case Target.Use u -> {
                if (decls.get(u.ref().name().text()) instanceof Decl.Policy p) {
                    Site inner = site != null ? site : new Site(u.ref().span(), p.name().text());
                    Map<String, Val> calleeEnv = bind(u.ref(), p.paramList(), env, ev, site);
                    policy(p, calleeEnv, evaluator(ev.layer(), ev.head(), inner), inner, variant);
                }
            }
            case Target.Inline in -> items(in.body().items(), env, ev, site, variant, "inline");
        }
    }

    // ---------------------------------------------------------------- leaf policies

    private void leaf(List<PolicyItem> items, Map<String, Val> env, Evaluator ev, Site site, Variant variant) {
        for (PolicyItem item : items) {
            switch (item) {
                case Stmt.Let l -> env.put(l.name().text(), ev.eval(l.value(), env));
                case PolicyItem.State s -> {
                    if (s.scope().pageSize() != null) positiveConstant(s.scope().pageSize(), "a page size", env, ev, site);
                    if (s.init() != null) ev.eval(s.init(), env);
                }
                case PolicyItem.Observe o -> ev.eval(o.queries(), env);
                case Stmt.Store st -> store(st, env, ev, site);
                default -> { }
            }
        }
        poolKernels(items, env, ev, site);
        for (PolicyItem item : items) {
            switch (item) {
                case PolicyItem.On on -> {
                    for (PolicyItem.Event e : on.events()) {
                        if (e.kind() == EventKind.OVERFLOW) overflow(e, on.body(), env, ev, site, variant);
                    }
                    walk(on.body().stmts(), new HashMap<>(env), ev, site, variant);
                }
                case PolicyItem.Every every -> {
                    positiveConstant(every.period(), "a period", env, ev, site);
                    walk(every.body().stmts(), new HashMap<>(env), ev, site, variant);
                }
                default -> { }
            }
        }
        // fit to the variant
        if (variant.span() != null) {
            Span attn = findName(items, "attn");
            if (variant.normalize().equals("none") && attn != null) {
                report(null, Code.E401, variant.span(), "this variant has no attention probabilities ('normalize none'), but a policy it runs reads 'attn'",
                        new Note("read here", attn), new Note("read 'logits' instead, or normalize the variant", null));
            }
            Span sinks = findFirstSinks(items);
            if (variant.normalize().equals("sigmoid") && sinks != null) {
                report(null, Code.W201, variant.span(), "a policy under this sigmoid variant keeps attention sinks; sigmoid rows do not sum to 1, so sinks need not form",
                        new Note("sinks kept here", sinks));
            }
        }
    }

    private void positiveConstant(Expr e, String what, Map<String, Val> env, Evaluator ev, Site site) {
        Val v = ev.eval(e, env);
        if (v instanceof Val.Num n) {
            if (!n.known()) {
                report(site, Code.E204, e.span(), what + " must be known when the policy is compiled; this depends on " + n.lin().show());
            } else if (n.value() < 1) {
                report(site, Code.E304, e.span(), what + " must be at least 1; it is " + Lin.num(n.value()));
            }
        }
    }

    private void store(Stmt.Store st, Map<String, Val> env, Evaluator ev, Site site) {
        int bits = switch (st.format().word().text()) {
            case "int8" -> 8;
            case "int4" -> 4;
            case "int2" -> 2;
            case "int" -> -1;
            default -> 16;
        };
        if (st.format().bits() != null) {
            Val v = ev.eval(st.format().bits(), env);
            if (v instanceof Val.Num n && n.known()) {
                bits = (int) n.value();
                if (n.value() != 2 && n.value() != 4 && n.value() != 8) {
                    report(site, Code.E500, st.format().bits().span(), "int(" + Lin.num(n.value()) + ") is not a supported width",
                            new Note("packed integer storage has 2, 4 or 8 bits", null));
                }
            } else if (v instanceof Val.Num n) {
                report(site, Code.E204, st.format().bits().span(), "a bit width must be known when the policy is compiled; this depends on " + n.lin().show());
            }
        }
        String per = "token";
        for (Stmt.QuantOption q : st.options()) if (q.axis() != null) per = q.axis().text();
        for (Stmt.QuantOption q : st.options()) {
            if (q.size() == null) continue;
            Val v = ev.eval(q.size(), env);
            if (!(v instanceof Val.Num n)) continue;
            if (!n.known()) {
                report(site, Code.E204, q.size().span(), "a group size must be known when the policy is compiled");
            } else if (n.value() < 1) {
                report(site, Code.E304, q.size().span(), "a group size must be at least 1; it is " + Lin.num(n.value()));
            } else if (per.equals("token") && model.headDim() % (long) n.value() != 0) {
                report(site, Code.E501, q.span(), "group(" + Lin.num(n.value()) + ") does not divide the head dimension " + model.headDim()
                        + " of " + model.name(), new Note("per-token groups run along channels; use a divisor of " + model.headDim(), null));
            }
        }
        boolean residual = st.scope() != null && (st.scope().kind() == Stmt.ScopeKind.FOR || st.scope().kind() == Stmt.ScopeKind.OTHERWISE
                || hasRecentWindow(st.scope().set(), env, ev));
        if (bits > 0 && bits <= 4 && !residual) {
            report(site, Code.W200, st.span(), st.targets().stream().map(Name::text).reduce((a, b) -> a + ", " + b).orElse("")
                    + " quantised to " + bits + " bits, the most recent entries too",
                    new Note("keep a recent window in full precision: except last(128)", null));
        }
        if (st.scope() != null && st.scope().set() != null) ev.eval(st.scope().set(), env);
    }

    /** Does a set include {@code last(n)} with n at least 1 as a union term? */
    private static boolean hasRecentWindow(Expr set, Map<String, Val> env, Evaluator ev) {
        return switch (set) {
            case Expr.Call c when c.callee().text().equals("last") && c.args().size() == 1 && c.args().getFirst() instanceof Arg.Positional p ->
                    ev.eval(p.value(), env) instanceof Val.Num n && n.lin().lowerBound() >= 1;
            case Expr.Binary b when b.op() == Expr.BinaryOp.ADD -> hasRecentWindow(b.left(), env, ev) || hasRecentWindow(b.right(), env, ev);
            default -> false;
        };
    }

    /** Pool kernels must be positive constants. */
    private void poolKernels(List<PolicyItem> items, Map<String, Val> env, Evaluator ev, Site site) {
        for (PolicyItem item : items) {
            AstWalk.exprs(item, e -> {
                if (e instanceof Expr.Call c && (c.callee().text().equals("maxpool") || c.callee().text().equals("avgpool"))
                        && c.args().size() == 2 && c.args().get(1) instanceof Arg.Positional k) {
                    positiveConstant(k.value(), "a pooling kernel", env, ev, site);
                }
            });
        }
    }

    /** Walks handler statements: evaluates lets in order, checks keep/attend sets are non-empty and counts. */
    private void walk(List<Stmt> stmts, Map<String, Val> env, Evaluator ev, Site site, Variant variant) {
        for (Stmt s : stmts) {
            switch (s) {
                case Stmt.Let l -> env.put(l.name().text(), ev.eval(l.value(), env));
                case Stmt.Keep k -> nonEmpty(k.set(), ev.eval(k.set(), env), "keep", site, variant);
                case Stmt.Attend a -> nonEmpty(a.set(), ev.eval(a.set(), env), "attend", site, variant);
                case Stmt.Evict e -> ev.eval(e.set(), env);
                case Stmt.Merge m -> {
                    ev.eval(m.source(), env);
                    ev.eval(m.dest(), env);
                    if (m.weight() != null) ev.eval(m.weight(), env);
                }
                case Stmt.Store st -> store(st, env, ev, site);
                case Stmt.If i -> walkIf(i, env, ev, site, variant);
                case Stmt.Assign a -> ev.eval(a.value(), env);
            }
        }
    }

    private void walkIf(Stmt.If i, Map<String, Val> env, Evaluator ev, Site site, Variant variant) {
        ev.eval(i.condition(), env);
        walk(i.then().stmts(), new HashMap<>(env), ev, site, variant);
        if (i.elseBlock() != null) walk(i.elseBlock().stmts(), new HashMap<>(env), ev, site, variant);
        if (i.elseIf() != null) walkIf(i.elseIf(), env, ev, site, variant);
    }

    private void nonEmpty(Expr setExpr, Val v, String action, Site site, Variant variant) {
        if (!variant.normalize().equals("softmax")) return;
        if (v instanceof Val.SetV s && !s.nonEmpty()) {
            report(site, Code.E303, setExpr.span(), action + " of a set that can be empty: softmax attention needs at least one entry",
                    new Note("add a recent window, e.g. + last(1), or make the count at least 1", null));
        }
    }

    /** The overflow proof: after the handler, the lane holds at most the budget, on every path. */
    private void overflow(PolicyItem.Event e, PolicyItem.Block body, Map<String, Val> env, Evaluator ev, Site site, Variant variant) {
        Val bv = ev.eval(e.budget(), env);
        if (!(bv instanceof Val.Num bn)) return;
        Lin budget = bn.lin();
        if (budget.lowerBound() < 0) {
            report(site, Code.E300, e.budget().span(), "the budget " + negativeWords(budget));
            return;
        }
        List<Outcome> outcomes = simulate(body.stmts(), List.of(new Outcome(Lin.atom("len", 0, Evaluator.INF), null)), new HashMap<>(env), ev);
        boolean protectedReported = false;
        for (Outcome o : outcomes) {
            if (o.keep != null && o.keep.protectedSize() != null) {
                Lin spare = budget.minus(o.keep.protectedSize());
                if (spare.lowerBound() < 0) {
                    report(site, Code.E301, o.keepStmt.span(), "the protected part of this keep (" + o.keep.protectedSize().show()
                            + " entries by position) exceeds the budget " + budget.show(),
                            new Note("first(n), last(n) and compensation are always kept; shrink them or raise the budget", null));
                    protectedReported = true;
                }
            }
        }
        if (protectedReported) return;
        for (Outcome o : outcomes) {
            Lin spare = budget.minus(o.size);
            if (spare.lowerBound() < 0) {
                List<Note> notes = new ArrayList<>();
                notes.add(new Note("after the handler the lane can hold " + o.size.show() + " entries, budget " + budget.show(), null));
                if (o.keepStmt != null) notes.add(new Note("the last keep", o.keepStmt.span()));
                else notes.add(new Note("end it with a keep whose size is at most the budget, e.g. keep last(" + budget.show() + ")", null));
                report(site, Code.E302, e.span(), "this overflow handler can leave the lane over its budget", notes.toArray(Note[]::new));
                return;
            }
        }
    }

    private record Outcome(Lin size, Val.SetV keep, Stmt.Keep keepStmt) {
        Outcome(Lin size, Stmt.Keep keepStmt) {
            this(size, null, keepStmt);
        }
    }

    private List<Outcome> simulate(List<Stmt> stmts, List<Outcome> in, Map<String, Val> env, Evaluator ev) {
        List<Outcome> cur = in;
        for (Stmt s : stmts) {
            switch (s) {
                case Stmt.Let l -> env.put(l.name().text(), ev.eval(l.value(), env));
                case Stmt.Keep k -> {
                    Val v = ev.eval(k.set(), env);
                    Val.SetV sv = v instanceof Val.SetV x ? x : null;
                    Lin size = sv != null ? sv.max() : Lin.atom("len", 0, Evaluator.INF);
                    cur = List.of(new Outcome(size, sv, k));
                }
                case Stmt.Evict e -> {
                    Val v = ev.eval(e.set(), env);
                    Lin gone = v instanceof Val.SetV sv ? sv.min() : Lin.of(0);
                    List<Outcome> next = new ArrayList<>();
                    // 'len' inside the evicted set is the lane's size at this point of the handler
                    for (Outcome o : cur) next.add(new Outcome(o.size.minus(gone.substitute("len", o.size)), o.keep, o.keepStmt));
                    cur = next;
                }
                case Stmt.If i -> cur = simulateIf(i, cur, env, ev);
                default -> { }
            }
        }
        return cur;
    }

    private List<Outcome> simulateIf(Stmt.If i, List<Outcome> cur, Map<String, Val> env, Evaluator ev) {
        Val c = ev.eval(i.condition(), env);
        Boolean known = c instanceof Val.Bool b ? b.value() : null;
        List<Outcome> out = new ArrayList<>();
        if (!Boolean.FALSE.equals(known)) out.addAll(simulate(i.then().stmts(), cur, new HashMap<>(env), ev));
        if (!Boolean.TRUE.equals(known)) {
            if (i.elseBlock() != null) out.addAll(simulate(i.elseBlock().stmts(), cur, new HashMap<>(env), ev));
            else if (i.elseIf() != null) out.addAll(simulateIf(i.elseIf(), cur, new HashMap<>(env), ev));
            else out.addAll(cur);
        }
        return out.size() > 64 ? out.subList(0, 64) : out;
    }

    // ---------------------------------------------------------------- syntactic scans

    private static Span findName(List<PolicyItem> items, String signal) {
        Span[] found = {null};
        for (PolicyItem item : items) {
            AstWalk.exprs(item, e -> {
                if (found[0] == null && e instanceof Expr.NameRef n && n.name().equals(signal)) found[0] = n.span();
            });
        }
        return found[0];
    }

    private static Span findFirstSinks(List<PolicyItem> items) {
        Span[] found = {null};
        for (PolicyItem item : items) {
            if (!(item instanceof PolicyItem.On on)) continue;
            for (Stmt s : on.body().stmts()) {
                if (s instanceof Stmt.Keep k) {
                    AstWalk.exprs(k.set(), e -> {
                        if (found[0] == null && e instanceof Expr.Call c && c.callee().text().equals("first")) found[0] = c.span();
                    });
                }
            }
        }
        return found[0];
    }
}
