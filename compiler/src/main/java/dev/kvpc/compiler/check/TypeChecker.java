package dev.kvpc.compiler.check;

import dev.kvpc.compiler.ast.*;
import dev.kvpc.compiler.ast.Expr.BinaryOp;
import dev.kvpc.compiler.ast.PolicyItem.EventKind;
import dev.kvpc.compiler.diag.Code;
import dev.kvpc.compiler.diag.Diagnostic.Note;
import dev.kvpc.compiler.diag.Diagnostics;

import java.util.*;

import static dev.kvpc.compiler.check.Type.Elem;
import static dev.kvpc.compiler.check.Type.Tensor;

/**
 * Names, types and shapes: resolves every name, infers every expression's type over named axes, and checks the
 * static rules that need no parameter values (evidence, options, action placement, usage warnings).
 * Value-dependent checks (budgets, bit widths, tables, layer ranges) are {@link InstanceChecker}'s.
 */
final class TypeChecker {
    /** What kind of code an expression sits in; decides which signals it may read. */
    enum Where { POLICY, FN, ATTENTION, PARAM, LOCATION }

    /** Per-policy facts the expression checker needs. */
    record PolicyFacts(boolean perLayer, boolean observePrefill, boolean observeChunk) {}

    /** The scope of names and the facts of the place an expression is checked in. */
    static final class Ctx {
        final Where where;
        final Ctx parent;
        final Map<String, Sym> names = new LinkedHashMap<>();
        PolicyFacts policy;
        Set<EventKind> events = Set.of();
        boolean inEvery;
        /** True while checking the operand of a reduction over {@code query} (streamed, needs no observe). */
        boolean reducedOverQuery;

        Ctx(Where where, Ctx parent) {
            this.where = where;
            this.parent = parent;
            if (parent != null) {
                this.policy = parent.policy;
                this.events = parent.events;
                this.inEvery = parent.inEvery;
            }
        }

        Sym lookup(String n) {
            for (Ctx c = this; c != null; c = c.parent) {
                Sym s = c.names.get(n);
                if (s != null) return s;
            }
            return null;
        }

        Ctx child() { return new Ctx(where, this); }

        /** Handlers that can run while a prompt is processed see one query row per prompt token. */
        boolean queryRowsUnobserved() {
            if (policy == null || where != Where.POLICY) return false;
            boolean prefillLike = events.contains(EventKind.PREFILL) || events.contains(EventKind.OVERFLOW);
            boolean chunk = events.contains(EventKind.CHUNK);
            return (prefillLike && !policy.observePrefill) || (chunk && !policy.observeChunk);
        }
    }

    /** Every reduction the IR defines, by its word ({@code sum(x, over: token)}): one table, {@link dev.kvpc.ir.Op.Red}. */
    private static final Set<String> REDUCTIONS = reductions();
    private static final Set<String> ELEMENTWISE = Set.of("abs", "exp", "log", "sqrt", "tanh", "sigmoid");
    static final Set<String> BUILTINS = builtins();
    static final Set<String> FORMATS = Set.of("f32", "f16", "bf16", "int8", "int4", "int2");

    private static Set<String> reductions() {
        Set<String> out = new TreeSet<>();
        for (dev.kvpc.ir.Op.Red r : dev.kvpc.ir.Op.Red.values()) out.add(r.word());
        return Set.copyOf(out);
    }

    private static Set<String> builtins() {
        Set<String> out = new TreeSet<>(reductions());
        for (Composite c : Composite.values()) out.add(c.word());
        for (Builtin b : Builtin.values()) out.add(b.word());
        return Set.copyOf(out);
    }

    /** Whether {@code f} is called as {@code f(x, over: axes)}: a reduction of the IR's table or a composite. */
    private static boolean alongAxes(String f) {
        return REDUCTIONS.contains(f) || Composite.of(f) != null;
    }

    private final Diagnostics diags;
    private final Map<String, Decl> decls;
    final IdentityHashMap<Expr, Type> types = new IdentityHashMap<>();
    final IdentityHashMap<Object, Sym> symbols = new IdentityHashMap<>();
    private final Set<Object> used = Collections.newSetFromMap(new IdentityHashMap<>());
    private final Set<Object> declaredForWarning = Collections.newSetFromMap(new IdentityHashMap<>());
    private final List<Object> warnOrder = new ArrayList<>();
    /** fn name -> fn names it calls, with the call site, for the recursion check. */
    private final Map<String, Map<String, Span>> fnCalls = new LinkedHashMap<>();
    private String currentFn;
    private String currentPolicy;

    TypeChecker(Diagnostics diags, Map<String, Decl> decls) {
        this.diags = diags;
        this.decls = decls;
    }

    // ================================================================ declarations

    void checkDecl(Decl d) {
        switch (d) {
            case Decl.Policy p -> policy(p);
            case Decl.Fn f -> fn(f);
            case Decl.Attention a -> attention(a);
            case Decl.Config c -> config(c);
        }
    }

    /** After all declarations: recursion among fns, how deep compositions go, and the usage warnings. */
    void finish() {
        for (String fn : fnCalls.keySet()) {
            Deque<String> path = new ArrayDeque<>();
            findCycle(fn, fn, path, new HashSet<>());
        }
        compositionDepths();
        for (Object o : warnOrder) {
            if (used.contains(o)) continue;
            switch (o) {
                case Decl.Param p -> diags.error(Code.W100, p.name().span(), "parameter '" + p.name().text() + "' is never used");
                case PolicyItem.State s -> diags.error(Code.W101, s.name().span(), "state '" + s.name().text() + "' is never read",
                        new Note("it is only written, so the runtime would keep it for nothing", null));
                case Stmt.Let l -> diags.error(Code.W102, l.name().span(), "'" + l.name().text() + "' is never used");
                default -> { }
            }
        }
    }

    // ---------------------------------------------------------------- composition depth

    /**
     * Each policy and config composed more than {@link dev.kvpc.ir.pass.Specialize#MAX_DEPTH} levels deep (an alias,
     * a {@code use} or an inline body each a level, as the specialiser counts them) is E112 where the limit is crossed:
     * on the declaration whose own clauses take it past the limit.
     */
    private void compositionDepths() {
        Map<String, Integer> depth = new HashMap<>();
        for (Decl d : decls.values()) {
            if (!(d instanceof Decl.Policy) && !(d instanceof Decl.Config)) continue;
            int own = declDepth(d, depth, new HashSet<>());
            if (own <= dev.kvpc.ir.pass.Specialize.MAX_DEPTH) continue;
            boolean below = false;
            for (String used : usedPolicies(d)) below |= depth.getOrDefault(used, 0) > dev.kvpc.ir.pass.Specialize.MAX_DEPTH;
            if (below) continue;
            Name name = d instanceof Decl.Policy p ? p.name() : ((Decl.Config) d).name();
            diags.error(Code.E112, name.span(), "'" + name.text() + "' is composed " + own + " policies deep; compositions nest at most "
                    + dev.kvpc.ir.pass.Specialize.MAX_DEPTH, new Note("each alias, use and inline body is a level: compose from a shallower policy", null));
        }
    }

    private int declDepth(Decl d, Map<String, Integer> memo, Set<String> visiting) {
        String n = d instanceof Decl.Policy p ? p.name().text() : d instanceof Decl.Config c ? c.name().text() : null;
        if (n == null) return 0;
        if (memo.containsKey(n)) return memo.get(n);
        // a cycle is E107, reported elsewhere: it adds nothing here
        if (!visiting.add(n)) return 0;
        int v = switch (d) {
            case Decl.Policy p -> switch (p.body()) {
                case PolicyBody.Alias a -> 1 + refDepth(a.target(), memo, visiting);
                case PolicyBody.Items items -> itemsDepth(items.items(), memo, visiting);
            };
            case Decl.Config c -> {
                int m = 0;
                for (ConfigItem i : c.items()) if (i instanceof Composition comp) m = Math.max(m, compositionDepth(comp, memo, visiting));
                yield m;
            }
            default -> 0;
        };
        visiting.remove(n);
        memo.put(n, v);
        return v;
    }

    private int itemsDepth(List<PolicyItem> items, Map<String, Integer> memo, Set<String> visiting) {
        int m = 0;
        for (PolicyItem i : items) if (i instanceof Composition comp) m = Math.max(m, compositionDepth(comp, memo, visiting));
        return m;
    }

    private int compositionDepth(Composition c, Map<String, Integer> memo, Set<String> visiting) {
        return switch (c) {
            case Composition.HeadsWhere h -> Math.max(targetDepth(h.then(), memo, visiting), h.otherwise() == null ? 0 : targetDepth(h.otherwise(), memo, visiting));
            case Composition.Layers l -> targetDepth(l.target(), memo, visiting);
        };
    }

    private int targetDepth(Target t, Map<String, Integer> memo, Set<String> visiting) {
        return switch (t) {
            case Target.Use u -> 1 + refDepth(u.ref(), memo, visiting);
            case Target.Inline in -> 1 + itemsDepth(in.body().items(), memo, visiting);
        };
    }

    private int refDepth(PolicyRef ref, Map<String, Integer> memo, Set<String> visiting) {
        Decl d = decls.get(ref.name().text());
        return d == null ? 0 : declDepth(d, memo, visiting);
    }

    /** The policies and configs a declaration names in its own clauses (not through them). */
    private List<String> usedPolicies(Decl d) {
        List<String> out = new ArrayList<>();
        java.util.function.Consumer<Target> target = new java.util.function.Consumer<>() {
            @Override
            public void accept(Target t) {
                switch (t) {
                    case Target.Use u -> out.add(u.ref().name().text());
                    case Target.Inline in -> {
                        for (PolicyItem i : in.body().items()) if (i instanceof Composition c) composition(c, this);
                    }
                }
            }
        };
        switch (d) {
            case Decl.Policy p -> {
                if (p.body() instanceof PolicyBody.Alias a) out.add(a.target().name().text());
                if (p.body() instanceof PolicyBody.Items items) for (PolicyItem i : items.items()) if (i instanceof Composition c) composition(c, target);
            }
            case Decl.Config c -> {
                for (ConfigItem i : c.items()) if (i instanceof Composition comp) composition(comp, target);
            }
            default -> { }
        }
        return out;
    }

    private static void composition(Composition c, java.util.function.Consumer<Target> target) {
        switch (c) {
            case Composition.HeadsWhere h -> {
                target.accept(h.then());
                if (h.otherwise() != null) target.accept(h.otherwise());
            }
            case Composition.Layers l -> target.accept(l.target());
        }
    }

    private void findCycle(String start, String at, Deque<String> path, Set<String> seen) {
        Map<String, Span> calls = fnCalls.getOrDefault(at, Map.of());
        for (var e : calls.entrySet()) {
            if (e.getKey().equals(start)) {
                List<String> chain = new ArrayList<>(path);
                Collections.reverse(chain);
                chain.addFirst(start);
                chain.add(start);
                String what = decls.get(start) instanceof Decl.Policy ? "policy" : "function";
                if (path.isEmpty()) {
                    diags.error(Code.E107, e.getValue(), what + " '" + start + "' refers to itself: " + String.join(" -> ", chain),
                            new Note(what.equals("policy") ? "a policy cannot be composed of itself"
                                    : "KVP functions are evaluated at compile time and cannot recurse", null));
                } else if (at.equals(path.peek())) {
                    diags.error(Code.E107, fnCalls.get(start).get(path.peekLast()), what + " '" + start + "' is recursive: " + String.join(" -> ", chain));
                }
            } else if (seen.add(e.getKey())) {
                path.push(e.getKey());
                findCycle(start, e.getKey(), path, seen);
                path.pop();
            }
        }
    }

    private void track(Object declaration) {
        if (declaredForWarning.add(declaration)) warnOrder.add(declaration);
    }

    private Ctx params(List<Decl.Param> params, Ctx scope) {
        for (Decl.Param p : params) {
            Type t = paramType(p.type());
            if (p.defaultValue() != null) {
                Ctx pc = new Ctx(Where.PARAM, scope);
                Type dt = expr(p.defaultValue(), pc);
                if (t instanceof Tensor && Tables.isTableType(p.type().name())) {
                    if (!(dt instanceof Type.Str) && !(dt instanceof Type.Error)) {
                        diags.error(Code.E200, p.defaultValue().span(), "a table parameter's default must be a file name in quotes, not " + dt.show());
                    }
                } else {
                    assignable(t, dt, p.defaultValue().span(), "default of '" + p.name().text() + "'");
                }
            }
            if (p.lo() != null) requireNumber(expr(p.lo(), new Ctx(Where.PARAM, scope)), p.lo().span(), "range bound");
            if (p.hi() != null) requireNumber(expr(p.hi(), new Ctx(Where.PARAM, scope)), p.hi().span(), "range bound");
            declare(scope, p.name(), new Sym.Param(p, t));
            track(p);
        }
        return scope;
    }

    private Type paramType(Decl.TypeName t) {
        Type ty = paramTypeQuiet(t);
        if (ty != Type.ERROR) return ty;
        if (t.name().startsWith("table[")) {
            diags.error(Code.E102, t.span(), Tables.badAxis(t.name().substring(6, t.name().length() - 1)));
        } else {
            diags.error(Code.E100, t.span(), "unknown type '" + t.name() + "'", new Note("parameter types: int, float, bool, table, table[channel]", null));
        }
        return Type.ERROR;
    }

    /** Binds {@code name} in {@code scope}; false (and E103) when the scope already binds it. */
    private boolean declare(Ctx scope, Name name, Sym sym) {
        Sym prev = scope.names.get(name.text());
        if (prev != null) {
            diags.error(Code.E103, name.span(), "'" + name.text() + "' is already defined in this scope");
            return false;
        }
        // a name of the policy's own signals (k, pos, len, ...) declared in a policy reads the declaration from then on
        if (scope.where == Where.POLICY && Signals.POLICY.containsKey(name.text())) {
            String kind = sym instanceof Sym.Param ? "parameter" : sym instanceof Sym.State ? "state" : "let";
            diags.error(Code.W103, name.span(), "the " + kind + " '" + name.text() + "' hides the signal " + name.text() + ": in its scope the name reads the " + kind,
                    new Note("rename it to keep the signal within reach", null));
        }
        scope.names.put(name.text(), sym);
        if (sym instanceof Sym.Local l) symbols.put(l.let(), sym);
        if (sym instanceof Sym.State st) symbols.put(st.state(), sym);
        return true;
    }

    private void fn(Decl.Fn f) {
        currentFn = f.name().text();
        fnCalls.computeIfAbsent(currentFn, k -> new LinkedHashMap<>());
        Ctx c = params(f.params(), new Ctx(Where.FN, null));
        for (Stmt.Let l : f.lets()) let(l, c);
        Type r = expr(f.result(), c);
        Type want = paramType(f.returnType());
        assignable(want, r, f.result().span(), "result of '" + f.name().text() + "'");
        if (r instanceof Tensor t && !t.isScalar()) {
            diags.error(Code.E201, f.result().span(), "a function returns one number per lane; this value is " + r.show());
        }
        currentFn = null;
    }

    private void attention(Decl.Attention a) {
        Ctx c = params(a.paramList(), new Ctx(Where.ATTENTION, null));
        Set<String> seen = new HashSet<>();
        for (AttentionItem item : a.items()) {
            switch (item) {
                case Stmt.Let l -> let(l, c);
                case AttentionItem.Logits l -> {
                    once(seen, "logits", l.span());
                    Type t = expr(l.value(), c);
                    requireNumber(t, l.value().span(), "logits");
                    if (t instanceof Tensor tt && !tt.isScalar()) {
                        diags.error(Code.E201, l.value().span(), "logits must be one number per query and key; this is " + t.show(),
                                new Note("reduce over channel, e.g. dot(q, k)", null));
                    }
                }
                case AttentionItem.Mask m -> {
                    once(seen, "mask", m.span());
                    Type t = expr(m.value(), c);
                    requireBool(t, m.value().span(), "mask");
                    if (t instanceof Tensor tt && !tt.isScalar()) {
                        diags.error(Code.E201, m.value().span(), "a mask is one truth value per query and key; this is " + t.show());
                    }
                }
                case AttentionItem.Normalize n -> {
                    once(seen, "normalize", n.span());
                    option(n.how(), "normalization", "softmax", "sigmoid", "none");
                }
            }
        }
    }

    private void once(Set<String> seen, String what, Span span) {
        if (!seen.add(what)) diags.error(Code.E103, span, "'" + what + "' is given twice");
    }

    private boolean option(Name word, String what, String... allowed) {
        if (Arrays.asList(allowed).contains(word.text())) return true;
        diags.error(Code.E110, word.span(), "unknown " + what + " '" + word.text() + "'", new Note("expected one of: " + String.join(", ", allowed), null));
        return false;
    }

    private void config(Decl.Config c) {
        Ctx scope = params(c.paramList(), new Ctx(Where.LOCATION, null));
        boolean variant = false;
        for (ConfigItem item : c.items()) {
            switch (item) {
                case ConfigItem.AttentionUse a -> {
                    if (variant) diags.error(Code.E103, a.span(), "the attention variant is given twice");
                    variant = true;
                    Decl d = decls.get(a.variant().name().text());
                    if (d == null) {
                        unknownDecl(a.variant().name(), "attention variant");
                        checkArgExprs(a.variant(), scope);
                    } else if (!(d instanceof Decl.Attention att)) {
                        diags.error(Code.E104, a.variant().name().span(), "'" + d.name().text() + "' is a " + kind(d) + ", not an attention variant");
                        checkArgExprs(a.variant(), scope);
                    } else {
                        bindArgs(a.variant(), att.paramList(), scope);
                    }
                }
                case Composition comp -> composition(comp, scope);
            }
        }
    }

    static String kind(Decl d) {
        return switch (d) {
            case Decl.Policy p -> "policy";
            case Decl.Fn f -> "function";
            case Decl.Attention a -> "attention variant";
            case Decl.Config c -> "config";
        };
    }

    private void unknownDecl(Name n, String what) {
        List<Note> notes = new ArrayList<>();
        String near = dev.kvpc.compiler.diag.Suggest.nearest(n.text(), decls.keySet());
        if (near != null) notes.add(new Note("did you mean '" + near + "'?", null));
        else notes.add(new Note("a policy from the standard library needs an import, e.g. import \"" + n.text() + ".kvp\"", null));
        diags.error(Code.E104, n.span(), "unknown " + what + " '" + n.text() + "'", notes.toArray(Note[]::new));
    }

    private void composition(Composition comp, Ctx scope) {
        switch (comp) {
            case Composition.HeadsWhere h -> {
                Ctx c = new Ctx(Where.LOCATION, scope);
                Type t = expr(h.condition(), c);
                requireBool(t, h.condition().span(), "a heads-where condition");
                requireLaneAxes(t, h.condition().span(), "a heads-where condition");
                target(h.then(), scope);
                target(h.otherwise(), scope);
            }
            case Composition.Layers l -> {
                Ctx c = new Ctx(Where.LOCATION, scope);
                requireInt(expr(l.from(), c), l.from().span(), "a layer number");
                if (l.to() != null) requireInt(expr(l.to(), c), l.to().span(), "a layer number");
                target(l.target(), scope);
            }
        }
    }

    private void target(Target t, Ctx scope) {
        switch (t) {
            case Target.Use u -> policyRef(u.ref(), scope);
            case Target.Inline in -> policyItems(in.body().items(), new Ctx(Where.POLICY, scope), in.body().span());
        }
    }

    private void policyRef(PolicyRef ref, Ctx scope) {
        Decl d = decls.get(ref.name().text());
        if (currentPolicy != null && d instanceof Decl.Policy) {
            fnCalls.computeIfAbsent(currentPolicy, k -> new LinkedHashMap<>()).putIfAbsent(ref.name().text(), ref.name().span());
        }
        if (d == null) {
            unknownDecl(ref.name(), "policy");
            checkArgExprs(ref, scope);
        } else if (!(d instanceof Decl.Policy p)) {
            diags.error(Code.E104, ref.name().span(), "'" + d.name().text() + "' is a " + kind(d) + ", not a policy");
            checkArgExprs(ref, scope);
        } else {
            bindArgs(ref, p.paramList(), scope);
        }
    }

    private void checkArgExprs(PolicyRef ref, Ctx scope) {
        for (Arg a : ref.argList()) {
            switch (a) {
                case Arg.Positional p -> expr(p.value(), new Ctx(Where.LOCATION, scope));
                case Arg.Named n -> expr(n.value(), new Ctx(Where.LOCATION, scope));
                case Arg.PerHeadAtLeast ph -> expr(ph.value(), new Ctx(Where.LOCATION, scope));
            }
        }
    }

    /** Checks a reference's arguments against the parameters: names, counts, types. */
    private void bindArgs(PolicyRef ref, List<Decl.Param> params, Ctx scope) {
        Map<String, Decl.Param> byName = new LinkedHashMap<>();
        params.forEach(p -> byName.put(p.name().text(), p));
        Set<String> given = new HashSet<>();
        int position = 0;
        for (Arg a : ref.argList()) {
            Decl.Param target = null;
            Expr value;
            switch (a) {
                case Arg.Positional p -> {
                    value = p.value();
                    if (position < params.size()) target = params.get(position);
                    else diags.error(Code.E105, a.span(), "too many arguments: '" + ref.name().text() + "' takes " + params.size());
                    position++;
                }
                case Arg.Named n -> {
                    value = n.value();
                    target = byName.get(n.name().text());
                    if (target == null) {
                        String near = dev.kvpc.compiler.diag.Suggest.nearest(n.name().text(), byName.keySet());
                        diags.error(Code.E105, n.name().span(), "'" + ref.name().text() + "' has no parameter '" + n.name().text() + "'",
                                new Note(near != null ? "did you mean '" + near + "'?" : "parameters: " + String.join(", ", byName.keySet()), null));
                    }
                }
                case Arg.PerHeadAtLeast ph -> {
                    value = ph.value();
                    diags.error(Code.E105, a.span(), "'per head at least' belongs inside top(...), not in a policy's arguments");
                }
            }
            Type vt = expr(value, new Ctx(Where.LOCATION, scope));
            if (target != null) {
                if (!given.add(target.name().text())) {
                    diags.error(Code.E105, a.span(), "parameter '" + target.name().text() + "' is given twice");
                }
                Type pt = paramTypeQuiet(target.type());
                if (Tables.isTableType(target.type().name())) {
                    if (!(vt instanceof Type.Str) && !(vt instanceof Type.Error) && !vt.equals(pt)) {
                        diags.error(Code.E200, value.span(), "a table argument is a file name in quotes or a table, not " + vt.show());
                    }
                } else {
                    assignable(pt, vt, value.span(), "argument '" + target.name().text() + "'");
                }
            }
        }
        for (Decl.Param p : params) {
            if (p.defaultValue() == null && !given.contains(p.name().text())) {
                diags.error(Code.E106, ref.span(), "'" + ref.name().text() + "' needs a value for '" + p.name().text() + "'",
                        new Note("declared without a default here", p.span()));
            }
        }
    }

    private static Type paramTypeQuiet(Decl.TypeName t) {
        return switch (t.name()) {
            case "int" -> Type.INT;
            case "float" -> Type.FLOAT;
            case "bool" -> Type.BOOL;
            case "table", "table[channel]" -> Tables.type(Tables.isChannelTable(t.name()));
            default -> Type.ERROR;
        };
    }

    // ================================================================ policies

    private void policy(Decl.Policy p) {
        currentPolicy = p.name().text();
        fnCalls.computeIfAbsent(currentPolicy, k -> new LinkedHashMap<>());
        Ctx scope = params(p.paramList(), new Ctx(Where.POLICY, null));
        switch (p.body()) {
            case PolicyBody.Alias a -> policyRef(a.target(), scope);
            case PolicyBody.Items items -> policyItems(items.items(), scope, p.name().span());
        }
        currentPolicy = null;
    }

    private void policyItems(List<PolicyItem> items, Ctx outer, Span owner) {
        Ctx scope = new Ctx(Where.POLICY, outer);
        boolean perLayer = false, obsPrefill = false, obsChunk = false;
        Span positions = null, selection = null;
        PolicyItem firstOwn = null;
        PolicyItem firstComposition = null;
        for (PolicyItem item : items) {
            switch (item) {
                case PolicyItem.Selection s -> {
                    if (selection != null) diags.error(Code.E103, s.span(), "'selection' is given twice");
                    selection = s.span();
                    if (option(s.scope(), "selection scope", "layer", "lane")) perLayer = s.scope().text().equals("layer");
                }
                case PolicyItem.Positions pos -> {
                    if (positions != null) diags.error(Code.E103, pos.span(), "'positions' is given twice");
                    positions = pos.span();
                    option(pos.mode(), "positions mode", "original", "cache");
                }
                case PolicyItem.Observe o -> {
                    if (option(o.at(), "observation event", "prefill", "chunk")) {
                        if (o.at().text().equals("prefill")) obsPrefill = true;
                        else obsChunk = true;
                    }
                }
                default -> { }
            }
            boolean composition = item instanceof Composition;
            boolean own = item instanceof PolicyItem.State || item instanceof PolicyItem.On || item instanceof PolicyItem.Every
                    || item instanceof Stmt.Store;
            if (composition && firstComposition == null) firstComposition = item;
            if (own && firstOwn == null) firstOwn = item;
        }
        if (firstOwn != null && firstComposition != null) {
            PolicyItem later = firstOwn.span().start() > firstComposition.span().start() ? firstOwn : firstComposition;
            PolicyItem earlier = later == firstOwn ? firstComposition : firstOwn;
            diags.error(Code.E504, later.span(), "this policy both gives its lanes to other policies and acts on them itself",
                    new Note("the other claim", earlier.span()),
                    new Note("put the policy's own handlers in an inline block of the composition", null));
        }
        scope.policy = new PolicyFacts(perLayer, obsPrefill, obsChunk);
        // states first: handlers may read states declared below them
        for (PolicyItem item : items) {
            if (item instanceof PolicyItem.State s) state(s, scope);
        }
        for (PolicyItem item : items) {
            switch (item) {
                case PolicyItem.State s -> { }
                case PolicyItem.Selection s -> { }
                case PolicyItem.Positions pos -> { }
                case PolicyItem.Observe o -> {
                    Ctx c = new Ctx(Where.POLICY, scope);
                    Type t = expr(o.queries(), c);
                    boolean ok = o.queries() instanceof Expr.AllSet
                            || (o.queries() instanceof Expr.Call call && Set.of("first", "last").contains(call.callee().text()));
                    if (!ok && !(t instanceof Type.Error)) {
                        diags.error(Code.E203, o.queries().span(), "observe takes first(n), last(n) or all queries");
                    }
                }
                case Stmt.Let l -> {
                    // a policy-level let may be read by any handler, prefill ones included
                    Ctx c = new Ctx(Where.POLICY, scope);
                    c.events = EnumSet.of(EventKind.PREFILL, EventKind.DECODE);
                    Type t = expr(l.value(), c);
                    // a let bound twice is E103; the second is not tracked for use (no W102 on top)
                    if (declare(scope, l.name(), new Sym.Local(l, t))) track(l);
                }
                case PolicyItem.On on -> {
                    Ctx c = new Ctx(Where.POLICY, scope);
                    EnumSet<EventKind> events = EnumSet.noneOf(EventKind.class);
                    for (PolicyItem.Event e : on.events()) {
                        if (!events.add(e.kind())) diags.error(Code.E103, e.span(), "event '" + e.kind().word() + "' is listed twice");
                        if (e.budget() != null) {
                            Type bt = expr(e.budget(), new Ctx(Where.POLICY, scope));
                            requireLaneInt(bt, e.budget().span(), "a budget");
                        }
                    }
                    c.events = events;
                    block(on.body(), c);
                }
                case PolicyItem.Every ev -> {
                    requireLaneInt(expr(ev.period(), new Ctx(Where.POLICY, scope)), ev.period().span(), "a period");
                    Ctx c = new Ctx(Where.POLICY, scope);
                    c.events = EnumSet.of(EventKind.DECODE);
                    c.inEvery = true;
                    block(ev.body(), c);
                }
                case Stmt.Store st -> store(st, new Ctx(Where.POLICY, scope));
                case Composition comp -> composition(comp, scope);
            }
        }
    }

    private void state(PolicyItem.State s, Ctx scope) {
        Elem elem = switch (s.type().elem().text()) {
            case "f32", "f16", "float" -> Elem.FLOAT;
            case "i32", "int" -> Elem.INT;
            case "bool" -> Elem.BOOL;
            default -> {
                option(s.type().elem(), "state type", "f32", "f16", "i32", "bool");
                yield null;
            }
        };
        EnumSet<Axis> axes = EnumSet.noneOf(Axis.class);
        for (Name a : s.type().axes()) {
            Axis axis = Axis.of(a.text());
            if (axis == null) {
                diags.error(Code.E102, a.span(), "unknown axis '" + a.text() + "'", new Note("axes: " + axisWords(), null));
            } else if (!axes.add(axis)) {
                diags.error(Code.E103, a.span(), "axis '" + a.text() + "' is listed twice");
            }
        }
        boolean model = s.scope().scope() == PolicyItem.Scope.MODEL;
        for (Name a : s.type().axes()) {
            Axis axis = Axis.of(a.text());
            if (model && axis != null && axis != Axis.LAYER && axis != Axis.HEAD && axis != Axis.TOKEN) {
                diags.error(Code.E102, a.span(), "a per model state's axes are its cells ('layer', 'head' or both) or 'token'; '" + a.text() + "' is not one",
                        new Note("keep per-channel values in a per token or per lane state", null));
                axes.remove(axis);
            } else if (model && axis == Axis.TOKEN && axes.contains(Axis.LAYER)) {
                diags.error(Code.E102, a.span(), "a per model state over tokens holds one value per position for every layer: it has no 'layer' axis",
                        new Note("declare it [token], or [head, token] for one value per position and KV head", null));
                axes.remove(axis);
            } else if (model && axis == Axis.TOKEN && scope.policy.perLayer()) {
                diags.error(Code.E102, a.span(), "a per model state over tokens needs per-lane selection: a layer's lanes would write the same positions",
                        new Note("drop 'selection per layer', or declare the state per token", null));
                axes.remove(axis);
            } else if (!model && axis == Axis.LAYER) {
                diags.error(Code.E102, a.span(), "only a per model state has a 'layer' axis (one cell per layer, shared by the model's lanes)",
                        new Note("declare it 'per model' to share it among layers", null));
                axes.remove(axis);
            }
        }
        switch (s.scope().scope()) {
            case TOKEN -> axes.add(Axis.TOKEN);
            case PAGE -> {
                axes.add(Axis.PAGE);
                requireLaneInt(expr(s.scope().pageSize(), new Ctx(Where.POLICY, scope)), s.scope().pageSize().span(), "a page size");
            }
            case LANE, MODEL -> { }
        }
        // per-layer selection sees each lane's own value along head; a model state has head only where declared
        if (scope.policy.perLayer() && !model) axes.add(Axis.HEAD);
        Type t = elem == null ? Type.ERROR : new Tensor(elem, axes);
        if (s.init() != null) {
            Ctx c = new Ctx(Where.POLICY, scope);
            Type it = expr(s.init(), c);
            if (model && axes.contains(Axis.TOKEN)) {
                // what a position holds until written: one value for the lane's cell
                requireLaneAxes(it, s.init().span(), "the initial value of a per model state over tokens");
                assignable(new Tensor(elem == null ? Elem.FLOAT : elem, EnumSet.noneOf(Axis.class)), atLane(it, c), s.init().span(),
                        "initial value of '" + s.name().text() + "'");
            } else {
                assignable(t, atLane(it, c), s.init().span(), "initial value of '" + s.name().text() + "'");
            }
        }
        declare(scope, s.name(), new Sym.State(s, t));
        track(s);
    }

    private static String axisWords() {
        StringJoiner j = new StringJoiner(", ");
        for (Axis a : Axis.values()) j.add(a.word());
        return j.toString();
    }

    private void block(PolicyItem.Block b, Ctx c) {
        Ctx inner = c.child();
        for (Stmt s : b.stmts()) stmt(s, inner);
    }

    private void let(Stmt.Let l, Ctx c) {
        Type t = expr(l.value(), c);
        if (declare(c, l.name(), new Sym.Local(l, t))) track(l);
    }

    private void stmt(Stmt s, Ctx c) {
        switch (s) {
            case Stmt.Let l -> let(l, c);
            case Stmt.Keep k -> {
                requireSet(expr(k.set(), c), k.set().span(), "keep");
                notInEvery(s, "keep", c);
            }
            case Stmt.Evict e -> {
                requireSet(expr(e.set(), c), e.set().span(), "evict");
                notInEvery(s, "evict", c);
            }
            case Stmt.Attend a -> {
                requireSet(expr(a.set(), c), a.set().span(), "attend", true);
                boolean ok = !c.inEvery && !c.events.isEmpty()
                        && EnumSet.of(EventKind.DECODE, EventKind.CHUNK).containsAll(c.events);
                if (!ok) {
                    diags.error(Code.E305, a.span(), "attend restricts one step's attention, so it belongs in 'on decode' or 'on chunk'",
                            new Note("use keep or evict to change what is stored", null));
                }
            }
            case Stmt.Merge m -> {
                notInEvery(s, "merge", c);
                requireSet(expr(m.source(), c), m.source().span(), "merge");
                requireSet(expr(m.dest(), c), m.dest().span(), "merge ... into");
                if (m.by() != null && m.by().of() != null) option(m.by().of(), "merge similarity", "k", "v");
                if (m.weight() != null) {
                    Type w = expr(m.weight(), c);
                    requireNumber(w, m.weight().span(), "a merge weight");
                    if (w instanceof Tensor wt && !perTokenOnly(wt, c)) {
                        diags.error(Code.E201, m.weight().span(), "a merge weight is one number per entry ([token]); this is " + w.show());
                    }
                }
            }
            case Stmt.Store st -> store(st, c);
            case Stmt.If i -> ifStmt(i, c);
            case Stmt.Assign a -> assign(a, c);
        }
    }

    /** 'every N' handlers maintain state and storage; eviction belongs to events (on overflow, prefill, decode). */
    private void notInEvery(Stmt s, String action, Ctx c) {
        if (c.inEvery) {
            diags.error(Code.E305, s.span(), action + " is not allowed in an 'every' handler",
                    new Note("evict in 'on overflow(budget)', whose budget the compiler checks, or in 'on decode'", null));
        }
    }

    private void ifStmt(Stmt.If i, Ctx c) {
        Type t = expr(i.condition(), c);
        requireBool(t, i.condition().span(), "an if condition");
        requireLaneAxes(t, i.condition().span(), "an if condition");
        if (t instanceof Tensor tt && c.policy != null && c.policy.perLayer() && tt.axes().contains(Axis.HEAD)) {
            diags.error(Code.E201, i.condition().span(), "an if condition must be one truth value for the whole layer under 'selection per layer'; this is " + t.show(),
                    new Note("reduce over head, e.g. max(x, over: head) > 0", null));
        }
        block(i.then(), c);
        if (i.elseBlock() != null) block(i.elseBlock(), c);
        if (i.elseIf() != null) ifStmt(i.elseIf(), c);
    }

    private void assign(Stmt.Assign a, Ctx c) {
        Sym s = c.lookup(a.target().text());
        Type vt = expr(a.value(), c);
        if (s == null) {
            diags.error(Code.E100, a.target().span(), "unknown name '" + a.target().text() + "'",
                    new Note("declare it first: state " + a.target().text() + ": f32 per token = 0", null));
            return;
        }
        symbols.put(a.target(), s);
        if (!(s instanceof Sym.State st)) {
            String what = switch (s) {
                case Sym.Param p -> "a parameter";
                case Sym.Local l -> "a let binding";
                case Sym.Signal sig -> "a signal";
                default -> "not state";
            };
            diags.error(Code.E108, a.target().span(), "cannot assign to '" + a.target().text() + "': it is " + what,
                    new Note("only state declared with 'state' can change", null));
            return;
        }
        if (a.op() != Stmt.AssignOp.SET && st.type() instanceof Tensor tt && tt.elem() == Elem.BOOL) {
            diags.error(Code.E200, a.span(), "'" + a.op().symbol + "' needs a numeric state; '" + st.name() + "' is " + tt.show());
            return;
        }
        assignable(st.type(), atLane(vt, c), a.value().span(), "'" + st.name() + "'");
    }

    /**
     * A value as a lane stores it: without its location axes (layer; head unless the policy selects per layer), which
     * a table or a model state has and the lane reads at its own cell.
     */
    private static Type atLane(Type t, Ctx c) {
        if (!(t instanceof Tensor tt)) return t;
        EnumSet<Axis> axes = tt.axisSet();
        boolean changed = axes.remove(Axis.LAYER);
        if (locationAxis(Axis.HEAD, c)) changed |= axes.remove(Axis.HEAD);
        return changed ? new Tensor(tt.elem(), axes) : t;
    }

    private void store(Stmt.Store st, Ctx c) {
        Set<String> targets = new HashSet<>();
        for (Name t : st.targets()) {
            if (!targets.add(t.text())) diags.error(Code.E103, t.span(), "'" + t.text() + "' is listed twice");
        }
        if (st.format().bits() != null) {
            requireLaneInt(expr(st.format().bits(), new Ctx(Where.LOCATION, c)), st.format().bits().span(), "a bit width");
        } else if (!FORMATS.contains(st.format().word().text())) {
            diags.error(Code.E500, st.format().word().span(), "unknown storage format '" + st.format().word().text() + "'",
                    new Note("formats: f32, f16, bf16, int8, int4, int2, int(bits)", null));
        }
        boolean per = false, group = false;
        for (Stmt.QuantOption q : st.options()) {
            if (q.axis() != null) {
                if (per) diags.error(Code.E103, q.span(), "'per' is given twice");
                per = true;
                option(q.axis(), "quantisation axis", "token", "channel");
            } else {
                if (group) diags.error(Code.E103, q.span(), "'group' is given twice");
                group = true;
                requireLaneInt(expr(q.size(), new Ctx(Where.LOCATION, c)), q.size().span(), "a group size");
            }
        }
        if (st.scope() != null && st.scope().set() != null) {
            requireSet(expr(st.scope().set(), c), st.scope().set().span(), "store " + st.scope().kind().name().toLowerCase(Locale.ROOT));
        }
    }

    // ================================================================ expressions

    Type expr(Expr e, Ctx c) {
        Type t = exprInner(e, c);
        types.put(e, t);
        return t;
    }

    private Type exprInner(Expr e, Ctx c) {
        return switch (e) {
            case Expr.IntLit i -> Type.INT;
            case Expr.FloatLit f -> Type.FLOAT;
            case Expr.BoolLit b -> Type.BOOL;
            case Expr.StringLit s -> Type.STRING;
            case Expr.AllSet a -> Type.TOKENS;
            case Expr.Compensation comp -> Type.TOKENS;
            case Expr.NameRef n -> name(n, c);
            case Expr.Unary u -> {
                Type t = expr(u.operand(), c);
                if (u.op() == Expr.UnaryOp.NEG) {
                    requireNumber(t, u.operand().span(), "'-'");
                    yield t instanceof Tensor tt && tt.elem() == Elem.BOOL ? Type.ERROR : t;
                }
                requireBool(t, u.operand().span(), "'!'");
                yield t instanceof Tensor ? t : Type.ERROR;
            }
            case Expr.Binary b -> binary(b, c);
            case Expr.Conditional k -> {
                Type ct = expr(k.condition(), c);
                requireBool(ct, k.condition().span(), "a condition");
                Type a = expr(k.ifTrue(), c);
                Type b = expr(k.ifFalse(), c);
                if (a instanceof Type.SetOf sa && b instanceof Type.SetOf sb && sa.domain() == sb.domain()) {
                    requireLaneAxes(ct, k.condition().span(), "a condition choosing between sets");
                    yield sa.with(sb);
                }
                Type r = combine(a, b, k.span(), "the branches of '?'");
                if (r instanceof Tensor rt && ct instanceof Tensor cc) yield new Tensor(rt.elem(), union(rt, cc));
                yield r;
            }
            case Expr.Cast cast -> {
                Type t = expr(cast.operand(), c);
                if (t instanceof Tensor tt) yield new Tensor(cast.to() == Expr.ScalarKind.INT ? Elem.INT : Elem.FLOAT, tt.axes());
                if (!(t instanceof Type.Error)) diags.error(Code.E200, cast.operand().span(), "cannot convert " + t.show() + " to a number");
                yield Type.ERROR;
            }
            case Expr.Call call -> call(call, c);
        };
    }

    private Type name(Expr.NameRef n, Ctx c) {
        Sym s = c.lookup(n.name());
        if (s != null) {
            symbols.put(n, s);
            markUsed(s);
            return s.type();
        }
        Type.Tensor sig = signal(n.name(), c);
        if (sig != null) {
            Sym.Signal ss = new Sym.Signal(n.name(), sig);
            symbols.put(n, ss);
            if (c.where == Where.POLICY && Signals.queryRows(n.name()) && c.queryRowsUnobserved() && !c.reducedOverQuery) {
                String ev = c.events.contains(EventKind.CHUNK) && !c.events.contains(EventKind.PREFILL) ? "chunk" : "prefill";
                diags.error(Code.E400, n.span(), "'" + n.name() + "' at " + ev + " has one row per prompt token, and this policy observes none",
                        new Note("declare 'observe last(n) queries at " + ev + "', or reduce it over query: sum(" + n.name() + ", over: query, ...)", null));
            }
            return sig;
        }
        String elsewhere = signalElsewhere(n.name(), c);
        if (elsewhere != null) {
            diags.error(Code.E402, n.span(), "'" + n.name() + "' is not available " + whereWords(c), new Note(elsewhere, null));
            return Type.ERROR;
        }
        Set<String> candidates = new TreeSet<>();
        for (Ctx x = c; x != null; x = x.parent) candidates.addAll(x.names.keySet());
        candidates.addAll(signalTable(c).keySet());
        String near = dev.kvpc.compiler.diag.Suggest.nearest(n.name(), candidates);
        diags.error(Code.E100, n.span(), "unknown name '" + n.name() + "'", near == null ? new Note[0] : new Note[] {new Note("did you mean '" + near + "'?", null)});
        return Type.ERROR;
    }

    private static String whereWords(Ctx c) {
        return switch (c.where) {
            case POLICY -> "in a policy";
            case FN -> "in a function";
            case ATTENTION -> "in an attention variant";
            case PARAM -> "in a parameter default";
            case LOCATION -> "here (only the lane's location, the model's shape and parameters are)";
        };
    }

    private void markUsed(Sym s) {
        switch (s) {
            case Sym.Param p -> used.add(p.param());
            case Sym.State st -> used.add(st.state());
            case Sym.Local l -> used.add(l.let());
            case Sym.Signal sig -> { }
        }
    }

    private Map<String, Type.Tensor> signalTable(Ctx c) {
        return switch (c.where) {
            case POLICY -> {
                Map<String, Type.Tensor> m = new LinkedHashMap<>(Signals.LOCATION);
                m.putAll(Signals.POLICY);
                yield m;
            }
            case FN -> Signals.FN;
            case ATTENTION -> Signals.ATTENTION;
            case LOCATION -> Signals.LOCATION;
            case PARAM -> Map.of();
        };
    }

    private Type.Tensor signal(String name, Ctx c) {
        Type.Tensor t = signalTable(c).get(name);
        if (t == null) return null;
        if (c.where == Where.POLICY && c.policy != null && c.policy.perLayer() && Signals.perLane(name)) {
            EnumSet<Axis> axes = t.axisSet();
            axes.add(Axis.HEAD);
            return new Tensor(t.elem(), axes);
        }
        return t;
    }

    private static String signalElsewhere(String name, Ctx c) {
        if (c.where != Where.ATTENTION && Signals.ATTENTION.containsKey(name) && !Signals.POLICY.containsKey(name) && !Signals.LOCATION.containsKey(name)) {
            return "'" + name + "' is a signal of attention variants";
        }
        if (c.where != Where.POLICY && Signals.POLICY.containsKey(name)) return "'" + name + "' is a signal of policy handlers";
        if (c.where == Where.PARAM && Signals.LOCATION.containsKey(name)) {
            return "parameter defaults are constants; read '" + name + "' in the policy's body instead";
        }
        if (c.where == Where.ATTENTION && Signals.LOCATION.containsKey(name)) return "attention variants see q, k, qpos, kpos, head, layer, heads, head_dim, context and scale";
        return null;
    }

    private Type binary(Expr.Binary b, Ctx c) {
        Type l = expr(b.left(), c);
        Type r = expr(b.right(), c);
        if (l instanceof Type.Error || r instanceof Type.Error) return Type.ERROR;
        BinaryOp op = b.op();
        switch (op) {
            case ADD, SUB -> {
                if (l instanceof Type.SetOf sl && r instanceof Type.SetOf sr) {
                    if (sl.domain() != sr.domain()) {
                        diags.error(Code.E200, b.span(), "cannot combine a " + sl.show() + " with a " + sr.show(),
                                new Note("pages(...) turns a page set into a token set", null));
                        return Type.ERROR;
                    }
                    return sl.with(sr);
                }
                if (l instanceof Type.SetOf || r instanceof Type.SetOf) {
                    diags.error(Code.E200, b.span(), "cannot " + (op == BinaryOp.ADD ? "add" : "subtract") + " a " + l.show() + " and a " + r.show());
                    return Type.ERROR;
                }
                return arith(b, l, r, false);
            }
            case INTERSECT -> {
                if (l instanceof Type.SetOf sl && r instanceof Type.SetOf sr && sl.domain() == sr.domain()) {
                    return sl.with(sr);
                }
                diags.error(Code.E203, b.span(), "'&' intersects two sets of the same kind; got " + l.show() + " and " + r.show());
                return Type.ERROR;
            }
            case MUL, DIV, MOD -> {
                return arith(b, l, r, op == BinaryOp.DIV);
            }
            case WITHIN -> {
                if (!(r instanceof Type.SetOf rs) || rs.domain() != Axis.TOKEN) {
                    diags.error(Code.E203, b.right().span(), "'within' needs a token set on its right; got " + r.show());
                    return Type.ERROR;
                }
                if (l instanceof Type.SetOf ls) return ls.with(rs);
                if (l instanceof Tensor lt && lt.numeric() && lt.axes().contains(Axis.TOKEN)) {
                    if (rs.perQueryHead() && !lt.axes().contains(Axis.GROUP)) {
                        diags.error(Code.E201, b.left().span(), "'within' a set per query head restricts each query head's row; this is " + l.show() + ", with no group axis",
                                new Note("give the score a group axis, or restrict it within one set for the lane", null));
                        return Type.ERROR;
                    }
                    return l;
                }
                diags.error(Code.E201, b.left().span(), "'within' restricts a per-token score or a token set; this is " + l.show());
                return Type.ERROR;
            }
            case LT, LE, GT, GE, EQ, NE -> {
                if (l instanceof Tensor lt && r instanceof Tensor rt) {
                    boolean eqOnBools = (op == BinaryOp.EQ || op == BinaryOp.NE) && lt.elem() == Elem.BOOL && rt.elem() == Elem.BOOL;
                    if (!eqOnBools && (!lt.numeric() || !rt.numeric())) {
                        diags.error(Code.E200, b.span(), "'" + op.symbol + "' compares numbers; got " + l.show() + " and " + r.show());
                        return Type.ERROR;
                    }
                    return new Tensor(Elem.BOOL, union(lt, rt));
                }
                diags.error(Code.E200, b.span(), "'" + op.symbol + "' compares numbers; got " + l.show() + " and " + r.show());
                return Type.ERROR;
            }
            case AND, OR -> {
                requireBool(l, b.left().span(), "'" + op.symbol + "'");
                requireBool(r, b.right().span(), "'" + op.symbol + "'");
                if (l instanceof Tensor lt && r instanceof Tensor rt) return new Tensor(Elem.BOOL, union(lt, rt));
                return Type.ERROR;
            }
        }
        return Type.ERROR;
    }

    private Type arith(Expr.Binary b, Type l, Type r, boolean toFloat) {
        if (!(l instanceof Tensor lt) || !(r instanceof Tensor rt) || !lt.numeric() || !rt.numeric()) {
            Span s = !(l instanceof Tensor lt2) || !lt2.numeric() ? b.left().span() : b.right().span();
            diags.error(Code.E200, s, "'" + b.op().symbol + "' needs numbers; got " + l.show() + " and " + r.show());
            return Type.ERROR;
        }
        Elem e = toFloat || lt.elem() == Elem.FLOAT || rt.elem() == Elem.FLOAT ? Elem.FLOAT : Elem.INT;
        return new Tensor(e, union(lt, rt));
    }

    private static Set<Axis> union(Tensor a, Tensor b) {
        EnumSet<Axis> s = a.axisSet();
        s.addAll(b.axes());
        return s;
    }

    private Type combine(Type a, Type b, Span span, String what) {
        if (a instanceof Type.Error || b instanceof Type.Error) return Type.ERROR;
        if (a instanceof Tensor ta && b instanceof Tensor tb) {
            if (ta.elem() == Elem.BOOL && tb.elem() == Elem.BOOL) return new Tensor(Elem.BOOL, union(ta, tb));
            if (ta.numeric() && tb.numeric()) {
                return new Tensor(ta.elem() == Elem.FLOAT || tb.elem() == Elem.FLOAT ? Elem.FLOAT : Elem.INT, union(ta, tb));
            }
        }
        diags.error(Code.E200, span, what + " have different kinds: " + a.show() + " and " + b.show());
        return Type.ERROR;
    }

    // ---------------------------------------------------------------- calls

    private Type call(Expr.Call call, Ctx c) {
        String f = call.callee().text();
        Decl user = decls.get(f);
        if (user instanceof Decl.Fn fn) return userCall(call, fn, c);
        if (!BUILTINS.contains(f)) {
            for (Arg a : call.args()) argExpr(a, c);
            if (user != null) {
                diags.error(Code.E101, call.callee().span(), "'" + f + "' is a " + kind(user) + ", not a function");
            } else {
                Set<String> all = new TreeSet<>(BUILTINS);
                decls.values().stream().filter(d -> d instanceof Decl.Fn).forEach(d -> all.add(d.name().text()));
                String near = dev.kvpc.compiler.diag.Suggest.nearest(f, all);
                diags.error(Code.E101, call.callee().span(), "unknown function '" + f + "'",
                        near == null ? new Note[0] : new Note[] {new Note("did you mean '" + near + "'?", null)});
            }
            return Type.ERROR;
        }
        List<Expr> pos = new ArrayList<>();
        Expr perHead = null;
        for (Arg a : call.args()) {
            switch (a) {
                case Arg.Positional p -> pos.add(p.value());
                case Arg.Named n -> {
                    argExpr(a, c);
                    diags.error(Code.E109, n.span(), "'" + f + "' takes no named arguments");
                    return Type.ERROR;
                }
                case Arg.PerHeadAtLeast ph -> perHead = ph.value();
            }
        }
        if (perHead != null && !Set.of("top", "bottom").contains(f)) {
            for (Expr e : pos) expr(e, c);
            diags.error(Code.E109, call.span(), "'per head at least' belongs only in top(...) and bottom(...)");
            return Type.ERROR;
        }
        boolean reduction = alongAxes(f) && call.over() != null;
        Builtin builtin = Builtin.of(f);
        if (call.over() != null && !reduction && !(builtin != null && builtin.over)) {
            for (Expr e : pos) expr(e, c);
            diags.error(Code.E109, call.span(), "'" + f + "' takes no 'over:' clause");
            return Type.ERROR;
        }
        if (reduction) return reduce(call, pos, c);
        if (alongAxes(f) && !f.equals("max") && !f.equals("min")) {
            for (Expr e : pos) expr(e, c);
            diags.error(Code.E109, call.span(), "'" + f + "' needs the axes it reduces: " + f + "(x, over: token)");
            return Type.ERROR;
        }
        if (f.equals("max") || f.equals("min")) {
            if (!arity(call, pos, 2, c)) return Type.ERROR;
            Type a = expr(pos.get(0), c), b = expr(pos.get(1), c);
            if (a instanceof Tensor ta && b instanceof Tensor tb && ta.numeric() && tb.numeric()) {
                return new Tensor(ta.elem() == Elem.FLOAT || tb.elem() == Elem.FLOAT ? Elem.FLOAT : Elem.INT, union(ta, tb));
            }
            if (!(a instanceof Type.Error) && !(b instanceof Type.Error)) {
                diags.error(Code.E109, call.span(), "'" + f + "(a, b)' takes two numbers, or '" + f + "(x, over: axes)' reduces");
            }
            return Type.ERROR;
        }
        if (builtin == null) throw new IllegalStateException("builtin without a rule: " + f);
        return switch (builtin) {
            case MAXPOOL, AVGPOOL -> {
                if (!arity(call, pos, 2, c)) yield Type.ERROR;
                Type x = expr(pos.get(0), c);
                requireCount(expr(pos.get(1), c), pos.get(1).span(), "a kernel size", c);
                if (call.over() == null || call.over().size() != 1) {
                    diags.error(Code.E109, call.span(), "'" + f + "' pools along one axis: " + f + "(x, kernel, over: token)");
                    yield Type.ERROR;
                }
                if (!requireNumber(x, pos.get(0).span(), "'" + f + "'")) yield Type.ERROR;
                Axis a = axis(call.over().get(0));
                if (a == null) yield Type.ERROR;
                if (x instanceof Tensor tx && !tx.axes().contains(a)) {
                    diags.error(Code.E202, call.over().get(0).span(), "cannot pool over '" + a.word() + "': the value is " + x.show());
                    yield Type.ERROR;
                }
                yield f.equals("avgpool") && x instanceof Tensor tx ? new Tensor(Elem.FLOAT, tx.axes()) : x;
            }
            case SHARE -> share(call, pos, c);
            case QUANTILE -> {
                if (!arity(call, pos, 2, c)) yield Type.ERROR;
                if (c.where == Where.POLICY && readsModelState(pos.get(0), c)) {
                    for (Expr e : pos) expr(e, c);
                    diags.error(Code.E202, pos.get(0).span(), "a quantile of a per model state would read other lanes' cells; not supported",
                            new Note("sum, mean, max, min, norm and entropy reduce a model state's cells: max(NAME, over: layer)", null));
                    yield Type.ERROR;
                }
                Type x = expr(pos.get(0), c);
                Type p = expr(pos.get(1), c);
                requireNumber(x, pos.get(0).span(), "'quantile'");
                requireNumber(p, pos.get(1).span(), "a quantile level");
                requireScalar(p, pos.get(1).span(), "a quantile level");
                if (!(x instanceof Tensor tx)) yield Type.ERROR;
                if (call.over() == null) yield Type.FLOAT;
                if (tx.axisSet().contains(Axis.LAYER)) {
                    // a table: its quantile is over all of it, a lane constant; over some of its axes it is not compiled
                    diags.error(Code.E202, call.over().getFirst().span(), "a quantile of a table is over the whole table; over some of its axes is not supported",
                            new Note("quantile(x, p) reads every value of the table: quantile(gates, 0.5)", null));
                    yield Type.ERROR;
                }
                EnumSet<Axis> rest = tx.axisSet();
                for (Name n : call.over()) {
                    Axis a = axis(n);
                    if (a != null && !rest.remove(a)) {
                        diags.error(Code.E202, n.span(), "cannot take a quantile over '" + a.word() + "': the value is " + x.show());
                    }
                }
                yield new Tensor(Elem.FLOAT, rest);
            }
            case POW -> {
                if (!arity(call, pos, 2, c)) yield Type.ERROR;
                Type a = expr(pos.get(0), c), b = expr(pos.get(1), c);
                if (!requireNumber(a, pos.get(0).span(), "'pow'") | !requireNumber(b, pos.get(1).span(), "'pow'")) yield Type.ERROR;
                yield new Tensor(Elem.FLOAT, union((Tensor) a, (Tensor) b));
            }
            case ABS, EXP, LOG, SQRT, TANH, SIGMOID -> {
                if (!arity(call, pos, 1, c)) yield Type.ERROR;
                Type x = expr(pos.get(0), c);
                if (!requireNumber(x, pos.get(0).span(), "'" + f + "'")) yield Type.ERROR;
                Tensor tx = (Tensor) x;
                yield f.equals("abs") ? tx : new Tensor(Elem.FLOAT, tx.axes());
            }
            case DOT -> {
                if (!arity(call, pos, 2, c)) yield Type.ERROR;
                Type a = expr(pos.get(0), c), b = expr(pos.get(1), c);
                if (!requireNumber(a, pos.get(0).span(), "'dot'") | !requireNumber(b, pos.get(1).span(), "'dot'")) yield Type.ERROR;
                Tensor ta = (Tensor) a, tb = (Tensor) b;
                if (!ta.axes().contains(Axis.CHANNEL) || !tb.axes().contains(Axis.CHANNEL)) {
                    diags.error(Code.E202, call.span(), "dot sums over channel; its arguments are " + a.show() + " and " + b.show());
                    yield Type.ERROR;
                }
                EnumSet<Axis> s = EnumSet.copyOf(union(ta, tb));
                s.remove(Axis.CHANNEL);
                yield new Tensor(Elem.FLOAT, s);
            }
            case SLOPE -> {
                if (!arity(call, pos, 1, c)) yield Type.ERROR;
                Type h = expr(pos.get(0), c);
                if (c.where != Where.ATTENTION) {
                    diags.error(Code.E402, call.callee().span(), "slope(head) is an attention-variant builtin (ALiBi slopes)");
                    yield Type.ERROR;
                }
                requireInt(h, pos.get(0).span(), "a head index");
                yield Type.FLOAT;
            }
            case TABLE -> {
                if (!arity(call, pos, 1, c)) yield Type.ERROR;
                Type s = expr(pos.get(0), c);
                if (!(pos.get(0) instanceof Expr.StringLit)) {
                    if (!(s instanceof Type.Error)) diags.error(Code.E109, pos.get(0).span(), "table(...) takes a file name in quotes");
                    yield Type.ERROR;
                }
                if (call.axis() != null && !call.axis().text().equals("channel")) {
                    diags.error(Code.E102, call.axis().span(), Tables.badAxis(call.axis().text()));
                    yield Type.ERROR;
                }
                yield Tables.type(call.axis() != null);
            }
            case FIRST, LAST -> {
                if (!arity(call, pos, 1, c)) yield Type.ERROR;
                requireCount(expr(pos.get(0), c), pos.get(0).span(), "a count", c);
                yield Type.TOKENS;
            }
            case TOP, BOTTOM -> topK(call, pos, perHead, c);
            case RANK, COUNT, MEMBER, UNIFORM, GUMBEL, MAXCOS, MAXDOT, STRATA -> prim(call, pos, builtin.prim, c);
            case WHERE -> {
                if (!arity(call, pos, 1, c)) yield Type.ERROR;
                Type p = expr(pos.get(0), c);
                if (!requireBool(p, pos.get(0).span(), "where(...)")) yield Type.ERROR;
                Tensor tp = (Tensor) p;
                EnumSet<Axis> rest = tp.axisSet();
                rest.remove(Axis.TOKEN);
                boolean perLayer = c.policy != null && c.policy.perLayer();
                // head: the layer's lanes under per-layer selection, else a location axis (a table's, a model state's)
                rest.remove(Axis.HEAD);
                rest.remove(Axis.LAYER);
                // a truth value per query head and entry: a set per query head
                boolean queryHeads = rest.remove(Axis.GROUP);
                if (!rest.isEmpty() || !tp.axes().contains(Axis.TOKEN)) {
                    diags.error(Code.E201, pos.get(0).span(), "where(...) needs one truth value per entry ([token]) or per query head and entry ([group, token]); this is " + p.show());
                    yield Type.ERROR;
                }
                if (queryHeads && perLayer) {
                    perQueryHeadUnderLayer(pos.get(0).span(), "where(...)");
                    yield Type.ERROR;
                }
                yield new Type.SetOf(Axis.TOKEN, perLayer && tp.axes().contains(Axis.HEAD), queryHeads);
            }
            case PAGES -> {
                if (!arity(call, pos, 1, c)) yield Type.ERROR;
                Type s = expr(pos.get(0), c);
                if (s instanceof Type.SetOf ps && ps.domain() == Axis.PAGE) yield new Type.SetOf(Axis.TOKEN, ps.perHead());
                if (!(s instanceof Type.Error)) {
                    diags.error(Code.E203, pos.get(0).span(), "pages(...) takes a page set, e.g. top(page_score, n); got " + s.show());
                }
                yield Type.ERROR;
            }
        };
    }

    /** A call of an IR primitive ({@link dev.kvpc.ir.Op.PrimFn}): its operands' types and its own. */
    private Type prim(Expr.Call call, List<Expr> pos, dev.kvpc.ir.Op.PrimFn fn, Ctx c) {
        String f = call.callee().text();
        // maxcos(x, S) or maxcos(x, S, R): the rows computed are R's, every entry's without it
        boolean rowsOptional = fn == dev.kvpc.ir.Op.PrimFn.MAXCOS || fn == dev.kvpc.ir.Op.PrimFn.MAXDOT;
        if (rowsOptional && pos.size() != 2 && pos.size() != 3) {
            for (Expr e : pos) expr(e, c);
            diags.error(Code.E109, call.span(), "'" + f + "' takes 2 or 3 arguments, " + f + "(x, S) or " + f + "(x, S, R), got " + pos.size());
            return Type.ERROR;
        }
        if (!rowsOptional && !arity(call, pos, fn.operands.length, c)) return Type.ERROR;
        Type[] t = new Type[pos.size()];
        for (int i = 0; i < t.length; i++) t[i] = expr(pos.get(i), c);
        if (c.where != Where.POLICY) {
            diags.error(Code.E402, call.callee().span(), f + "(...) reads the lane's entries: it belongs in a policy");
            return Type.ERROR;
        }
        for (Type x : t) if (x instanceof Type.Error) return Type.ERROR;
        boolean perLayer = c.policy != null && c.policy.perLayer();
        return switch (fn) {
            case RANK, STRATA -> {
                Tensor s = entryValues(t[0], pos.get(0).span(), f, perLayer, false);
                if (s == null) yield Type.ERROR;
                // a float: whole numbers, and NaN where an entry cannot rank (int arithmetic would make NaN 0)
                if (fn == dev.kvpc.ir.Op.PrimFn.RANK) yield new Tensor(Elem.FLOAT, s.axes());
                requireCount(t[1], pos.get(1).span(), "a count", c);
                yield new Type.SetOf(Axis.TOKEN, s.axes().contains(Axis.HEAD));
            }
            case COUNT, MEMBER -> {
                if (!(t[0] instanceof Type.SetOf s) || s.domain() != Axis.TOKEN) {
                    diags.error(Code.E203, pos.get(0).span(), f + "(...) takes a token set, e.g. " + f + "(top(acc, 8)); got " + t[0].show());
                    yield Type.ERROR;
                }
                if (fn == dev.kvpc.ir.Op.PrimFn.COUNT) {
                    if (s.perQueryHead()) {
                        onePerLane(pos.get(0).span(), "count(...) counts one token set for the lane; this is a " + s.show());
                        yield Type.ERROR;
                    }
                    yield Type.INT;
                }
                if (s.perQueryHead()) yield Type.tensor(Elem.BOOL, Axis.GROUP, Axis.TOKEN);
                yield s.perHead() ? Type.tensor(Elem.BOOL, Axis.HEAD, Axis.TOKEN) : Type.tensor(Elem.BOOL, Axis.TOKEN);
            }
            case UNIFORM, GUMBEL -> {
                if (!requireInt(t[0], pos.get(0).span(), "a seed")) yield Type.ERROR;
                requireScalar(t[0], pos.get(0).span(), "a seed");
                yield perLayer ? Type.tensor(Elem.FLOAT, Axis.HEAD, Axis.TOKEN) : Type.tensor(Elem.FLOAT, Axis.TOKEN);
            }
            case MAXCOS, MAXDOT -> {
                Tensor x = entryValues(t[0], pos.get(0).span(), f, perLayer, true);
                if (x == null) yield Type.ERROR;
                if (!(t[1] instanceof Type.SetOf s) || s.domain() != Axis.TOKEN) {
                    diags.error(Code.E203, pos.get(1).span(), f + "(x, S) compares each entry with the entries of a token set S; got " + t[1].show());
                    yield Type.ERROR;
                }
                if (t.length == 3 && !(t[2] instanceof Type.SetOf r && r.domain() == Axis.TOKEN)) {
                    diags.error(Code.E203, pos.get(2).span(), f + "(x, S, R) computes the rows of the entries of a token set R; got " + t[2].show());
                    yield Type.ERROR;
                }
                for (int i = 1; i < t.length; i++) {
                    if (((Type.SetOf) t[i]).perQueryHead()) {
                        onePerLane(pos.get(i).span(), f + "(...) compares with one token set for the lane; this is a " + t[i].show());
                        yield Type.ERROR;
                    }
                }
                EnumSet<Axis> out = x.axisSet();
                out.remove(Axis.CHANNEL);
                yield new Tensor(Elem.FLOAT, out);
            }
        };
    }

    /**
     * A primitive's per-entry operand: numbers over exactly [token] ([token, channel] when {@code channels}), and
     * [head] too under per-layer selection; null after reporting E201 (or E200) otherwise.
     */
    private Tensor entryValues(Type t, Span span, String f, boolean perLayer, boolean channels) {
        if (!requireNumber(t, span, f + "(...)")) return null;
        Tensor x = (Tensor) t;
        EnumSet<Axis> want = channels ? EnumSet.of(Axis.TOKEN, Axis.CHANNEL) : EnumSet.of(Axis.TOKEN);
        EnumSet<Axis> have = x.axisSet();
        // the location axes (layer; head outside per-layer selection) are read at the lane's own cell
        have.remove(Axis.HEAD);
        have.remove(Axis.LAYER);
        if (have.equals(want)) return x;
        EnumSet<Axis> extra = EnumSet.copyOf(have);
        extra.removeAll(want);
        String shape = channels ? "one row per entry ([token, channel], as k and v are)" : "one score per entry ([token])";
        diags.error(Code.E201, span, f + "(...) needs " + shape + "; this is " + t.show(),
                new Note(extra.isEmpty() ? "it lacks an axis" : "reduce the other axes first, e.g. sum(x, over: " +
                        extra.stream().map(Axis::word).reduce((a, b) -> a + ", " + b).orElse("") + ")", null));
        return null;
    }

    private Type topK(Expr.Call call, List<Expr> pos, Expr perHead, Ctx c) {
        String f = call.callee().text();
        if (!arity(call, pos, 2, c)) {
            if (perHead != null) expr(perHead, c);
            return Type.ERROR;
        }
        Type s = expr(pos.get(0), c);
        requireCount(expr(pos.get(1), c), pos.get(1).span(), "a count", c);
        boolean perLayer = c.policy != null && c.policy.perLayer();
        if (perHead != null) {
            requireCount(expr(perHead, c), perHead.span(), "a per-head floor", c);
            if (!perLayer) {
                diags.error(Code.E505, perHead.span(), "'per head at least' shares a layer's budget among heads, which needs 'selection per layer'");
            }
        }
        if (s instanceof Type.SetOf) {
            diags.error(Code.E201, pos.get(0).span(), f + "(...) ranks a score, not a set; got " + s.show());
            return Type.ERROR;
        }
        if (!requireNumber(s, pos.get(0).span(), f + "(...)")) return Type.ERROR;
        Tensor ts = (Tensor) s;
        EnumSet<Axis> axes = ts.axisSet();
        // the layer's lanes under per-layer selection; else head, as layer, is a location read at the lane's cell
        boolean head = axes.remove(Axis.HEAD) && perLayer;
        axes.remove(Axis.LAYER);
        if (axes.equals(EnumSet.of(Axis.TOKEN))) return new Type.SetOf(Axis.TOKEN, head);
        if (axes.equals(EnumSet.of(Axis.GROUP, Axis.TOKEN))) {
            // each query head of the group ranks its own row: count entries each
            if (perLayer) {
                perQueryHeadUnderLayer(pos.get(0).span(), f + "(...)");
                return Type.ERROR;
            }
            return new Type.SetOf(Axis.TOKEN, false, true);
        }
        if (axes.equals(EnumSet.of(Axis.PAGE))) return new Type.SetOf(Axis.PAGE, head);
        Set<Axis> extra = EnumSet.copyOf(axes);
        extra.remove(Axis.TOKEN);
        extra.remove(Axis.PAGE);
        diags.error(Code.E201, pos.get(0).span(), f + "(...) ranks one score per entry ([token]) or per page ([page]); this score is " + s.show(),
                new Note(extra.isEmpty() ? "give it a token or page axis" : "reduce the other axes first, e.g. sum(x, over: " +
                        extra.stream().map(Axis::word).reduce((a, b) -> a + ", " + b).orElse("") + ")", null));
        return Type.ERROR;
    }

    /**
     * {@code sum(attn, over: prompt, group)} (or {@code mean}; {@code head} too under per-layer selection): the
     * attention of every query of the event, whatever an observe clause keeps, summed inside the attention kernel.
     */
    private Type promptReduction(Expr.Call call, Expr x, Ctx c) {
        String f = call.callee().text();
        Ctx ac = c.child();
        ac.reducedOverQuery = true;
        Type t = expr(x, ac);
        if (t instanceof Type.Error) return Type.ERROR;
        String form = "a sum over the prompt is sum(attn, over: prompt, group) or mean(attn, over: prompt, group)";
        if (!f.equals("sum") && !f.equals("mean") || !(x instanceof Expr.NameRef n && n.name().equals("attn"))
                || !(t instanceof Tensor tt && tt.axes().contains(Axis.QUERY))) {
            diags.error(Code.E109, call.span(), "'over: prompt' sums attention inside the attention kernel: " + form);
            return Type.ERROR;
        }
        boolean perLayer = c.policy != null && c.policy.perLayer();
        EnumSet<Axis> rest = ((Tensor) t).axisSet();
        rest.remove(Axis.QUERY);
        boolean group = false;
        for (Name name : call.over()) {
            String w = name.text();
            if (w.equals("prompt")) continue;
            if (w.equals("group")) {
                group = true;
                rest.remove(Axis.GROUP);
            } else if (w.equals("head") && perLayer) {
                rest.remove(Axis.HEAD);
            } else {
                diags.error(Code.E202, name.span(), "a sum over the prompt reduces the group (and, under per-layer selection, the head), not '" + w + "'",
                        new Note(form, null));
                return Type.ERROR;
            }
        }
        if (!group) {
            diags.error(Code.E109, call.span(), "a sum over the prompt sums the group's query heads too: " + form);
            return Type.ERROR;
        }
        return new Tensor(Elem.FLOAT, rest);
    }

    private Type reduce(Expr.Call call, List<Expr> pos, Ctx c) {
        String f = call.callee().text();
        if (pos.size() != 1) {
            for (Expr e : pos) expr(e, c);
            diags.error(Code.E109, call.span(), "'" + f + "(x, over: ...)' reduces one value; got " + pos.size() + " arguments");
            return Type.ERROR;
        }
        if (call.over().stream().anyMatch(n -> n.text().equals("prompt"))) return promptReduction(call, pos.getFirst(), c);
        boolean overQuery = call.over().stream().anyMatch(n -> n.text().equals("query"));
        Ctx ac = c;
        if (overQuery && pos.get(0) instanceof Expr.NameRef) {
            ac = c.child();
            ac.reducedOverQuery = true;
        }
        Type x = expr(pos.get(0), ac);
        if (x instanceof Type.Error) return Type.ERROR;
        if (!requireNumber(x, pos.get(0).span(), "'" + f + "'")) return Type.ERROR;
        Tensor tx = (Tensor) x;
        if (!modelCells(call, pos.getFirst(), f, c)) return Type.ERROR;
        EnumSet<Axis> rest = tx.axisSet();
        boolean ok = true;
        for (Name n : call.over()) {
            Axis a = axis(n);
            if (a == null) {
                ok = false;
            } else if (!rest.remove(a)) {
                if (!tx.axes().contains(a)) {
                    diags.error(Code.E202, n.span(), "cannot reduce over '" + a.word() + "': the value is " + x.show());
                } else {
                    diags.error(Code.E103, n.span(), "axis '" + a.word() + "' is listed twice");
                }
                ok = false;
            }
        }
        if (!ok) return Type.ERROR;
        Composite composite = Composite.of(f);
        if (composite != null) return new Tensor(Elem.FLOAT, composite.reduces ? rest : tx.axisSet());
        Elem e = dev.kvpc.ir.Op.Red.of(f).floatResult ? Elem.FLOAT : tx.elem();
        return new Tensor(e, rest);
    }

    // ---------------------------------------------------------------- per model state

    /** The per model state a name refers to here, or null. */
    private static PolicyItem.State modelState(Expr e, Ctx c) {
        if (e instanceof Expr.NameRef n && c.lookup(n.name()) instanceof Sym.State st && st.state().scope().scope() == PolicyItem.Scope.MODEL) {
            return st.state();
        }
        return null;
    }

    /** Whether a per model state is one over tokens ({@code [token]}, {@code [head, token]}) rather than of cells. */
    private static boolean overTokens(PolicyItem.State s) {
        return s.type().axes().stream().anyMatch(a -> a.text().equals("token"));
    }

    /** Whether the value of {@code e} depends on a per model state's cells (through let bindings too). */
    private static boolean readsModelState(Expr e, Ctx c) {
        return readsModelState(e, c, Collections.newSetFromMap(new IdentityHashMap<>()));
    }

    private static boolean readsModelState(Expr e, Ctx c, Set<Object> seen) {
        return switch (e) {
            case null -> false;
            case Expr.NameRef n -> {
                Sym s = c.lookup(n.name());
                // a state over tokens is read at the lane's own entries: it has no other lanes' cells to reach
                if (s instanceof Sym.State st) {
                    yield st.state().scope().scope() == PolicyItem.Scope.MODEL && !overTokens(st.state());
                }
                yield s instanceof Sym.Local l && seen.add(l.let()) && readsModelState(l.let().value(), c, seen);
            }
            case Expr.Unary u -> readsModelState(u.operand(), c, seen);
            case Expr.Binary b -> readsModelState(b.left(), c, seen) || readsModelState(b.right(), c, seen);
            case Expr.Conditional k -> readsModelState(k.condition(), c, seen) || readsModelState(k.ifTrue(), c, seen) || readsModelState(k.ifFalse(), c, seen);
            case Expr.Cast k -> readsModelState(k.operand(), c, seen);
            case Expr.Call call -> {
                // a reduction of a model state by name over its cells is one number, the same for every lane
                if (call.over() != null && call.args().size() == 1 && call.args().getFirst() instanceof Arg.Positional p && modelState(p.value(), c) != null) yield false;
                boolean any = false;
                for (Arg a : call.args()) {
                    Expr x = switch (a) {
                        case Arg.Positional p -> p.value();
                        case Arg.Named nm -> nm.value();
                        case Arg.PerHeadAtLeast ph -> ph.value();
                    };
                    any |= readsModelState(x, c, seen);
                }
                yield any;
            }
            default -> false;
        };
    }

    /** The location axes of a policy value: layer, and head unless the policy selects per layer (where head is its own). */
    private static boolean locationAxis(Axis a, Ctx c) {
        return a == Axis.LAYER || (a == Axis.HEAD && (c.policy == null || !c.policy.perLayer()));
    }

    /**
     * A reduction over the cells of a per model state ({@code sum(pref, over: layer)}): other lanes' cells are read
     * only from the state itself, over all of its cell axes. Reports and returns false when the call reduces another
     * lane's cells of anything else that depends on a model state.
     */
    private boolean modelCells(Expr.Call call, Expr x, String f, Ctx c) {
        if (call.over() == null || c.where != Where.POLICY) return true;
        boolean location = false;
        Set<Axis> over = EnumSet.noneOf(Axis.class);
        for (Name n : call.over()) {
            Axis a = Axis.of(n.text());
            if (a == null) continue;
            over.add(a);
            location |= locationAxis(a, c);
        }
        if (!location) return true;
        PolicyItem.State st = modelState(x, c);
        if (st != null && overTokens(st)) {
            diags.error(Code.E202, call.span(), "a per model state over tokens is read at the lane's entries: reduce it over token only",
                    new Note("'" + f + "(NAME, over: token)' reduces the values at the lane's entries' positions", null));
            return false;
        }
        if (st != null && Composite.of(f) != null) {
            diags.error(Code.E202, call.span(), "'" + f + "' over a per model state's cells is not supported; sum, mean, max, min, norm and entropy are",
                    new Note("for a variance, keep the squares in a second state: mean(sq, over: layer) - pow(mean(x, over: layer), 2)", null));
            return false;
        }
        if (st != null) {
            Set<Axis> cells = EnumSet.noneOf(Axis.class);
            for (Name a : st.type().axes()) if (Axis.of(a.text()) != null) cells.add(Axis.of(a.text()));
            if (over.equals(cells)) return true;
            diags.error(Code.E202, call.span(), "'" + f + "' over a per model state reduces all of its cells: over: "
                    + cells.stream().map(Axis::word).reduce((a, b) -> a + ", " + b).orElse(""));
            return false;
        }
        if (!readsModelState(x, c)) return true;
        diags.error(Code.E202, x.span(), "other layers' cells are read only from a per model state itself",
                new Note("reduce the state by name, e.g. " + f + "(NAME, over: layer), and compute with the result", null));
        return false;
    }

    /** {@code share(total, w)}: the lane's part of {@code total} by the weights of a per model state. */
    private Type share(Expr.Call call, List<Expr> pos, Ctx c) {
        if (!arity(call, pos, 2, c)) return Type.ERROR;
        requireLaneInt(expr(pos.get(0), c), pos.get(0).span(), "a total");
        Type w = expr(pos.get(1), c);
        PolicyItem.State st = modelState(pos.get(1), c);
        if (w instanceof Type.Error) return Type.ERROR;
        if (st == null || st.type().axes().isEmpty() || overTokens(st)) {
            diags.error(Code.E109, pos.get(1).span(), "share(total, w) shares a total by the cells of a per model state with a layer or head axis; this is not one",
                    new Note("declare e.g. 'state w: f32[layer] per model' and write each layer's weight into it", null));
            return Type.ERROR;
        }
        requireNumber(w, pos.get(1).span(), "share's weights");
        if (c.policy != null && c.policy.perLayer() && ((Tensor) w).axes().contains(Axis.HEAD)) {
            diags.error(Code.E201, pos.get(1).span(), "under selection per layer, share(...) takes weights per layer ([layer]), one count for the layer");
            return Type.ERROR;
        }
        return Type.INT;
    }

    private Axis axis(Name n) {
        Axis a = Axis.of(n.text());
        if (a == null) diags.error(Code.E102, n.span(), "unknown axis '" + n.text() + "'", new Note("axes: " + axisWords(), null));
        return a;
    }

    private boolean arity(Expr.Call call, List<Expr> pos, int n, Ctx c) {
        if (pos.size() == n) return true;
        for (Expr e : pos) expr(e, c);
        diags.error(Code.E109, call.span(), "'" + call.callee().text() + "' takes " + n + " argument" + (n == 1 ? "" : "s") + ", got " + pos.size());
        return false;
    }

    private void argExpr(Arg a, Ctx c) {
        switch (a) {
            case Arg.Positional p -> expr(p.value(), c);
            case Arg.Named n -> expr(n.value(), c);
            case Arg.PerHeadAtLeast ph -> expr(ph.value(), c);
        }
    }

    private Type userCall(Expr.Call call, Decl.Fn fn, Ctx c) {
        if (currentFn != null) fnCalls.computeIfAbsent(currentFn, k -> new LinkedHashMap<>()).putIfAbsent(fn.name().text(), call.callee().span());
        List<Expr> pos = new ArrayList<>();
        for (Arg a : call.args()) {
            if (a instanceof Arg.Positional p) {
                pos.add(p.value());
            } else {
                argExpr(a, c);
                diags.error(Code.E109, a.span(), "function arguments are positional");
                return Type.ERROR;
            }
        }
        if (call.over() != null) {
            diags.error(Code.E109, call.span(), "'" + fn.name().text() + "' takes no 'over:' clause");
        }
        if (pos.size() != fn.params().size()) {
            for (Expr e : pos) expr(e, c);
            diags.error(Code.E109, call.span(), "'" + fn.name().text() + "' takes " + fn.params().size() + " arguments, got " + pos.size(),
                    new Note("declared here", fn.name().span()));
            return Type.ERROR;
        }
        for (int i = 0; i < pos.size(); i++) {
            Type at = expr(pos.get(i), c);
            Type pt = paramTypeQuiet(fn.params().get(i).type());
            assignable(pt, at, pos.get(i).span(), "argument '" + fn.params().get(i).name().text() + "'");
        }
        return paramTypeQuiet(fn.returnType());
    }

    // ---------------------------------------------------------------- requirements

    /** Can a value of type {@code v} be stored where {@code want} is expected? Reports E200/E201 if not. */
    private void assignable(Type want, Type v, Span span, String what) {
        if (want instanceof Type.Error || v instanceof Type.Error) return;
        if (want instanceof Tensor w && v instanceof Tensor t) {
            boolean kindOk = w.elem() == t.elem() || (w.elem() == Elem.FLOAT && t.elem() == Elem.INT);
            if (!kindOk) {
                diags.error(Code.E200, span, what + " is " + w.show() + " but this is " + t.show(),
                        t.elem() == Elem.FLOAT && w.elem() == Elem.INT ? new Note[] {new Note("convert explicitly: int(...)", null)} : new Note[0]);
                return;
            }
            if (!w.axisSet().containsAll(t.axes())) {
                EnumSet<Axis> extra = t.axisSet();
                extra.removeAll(w.axes());
                diags.error(Code.E201, span, what + " has shape " + w.show() + " but this value is " + t.show(),
                        new Note("reduce the extra axes, e.g. sum(x, over: " + extra.stream().map(Axis::word).reduce((a, b) -> a + ", " + b).orElse("") + ")", null));
            }
            return;
        }
        if (!want.equals(v)) diags.error(Code.E200, span, what + " is " + want.show() + " but this is " + v.show());
    }

    private boolean requireNumber(Type t, Span span, String what) {
        if (t instanceof Type.Error) return false;
        if (t instanceof Tensor tt && tt.numeric()) return true;
        diags.error(t instanceof Type.SetOf ? Code.E200 : Code.E200, span, what + " needs a number; this is " + t.show());
        return false;
    }

    private boolean requireBool(Type t, Span span, String what) {
        if (t instanceof Type.Error) return false;
        if (t instanceof Tensor tt && tt.elem() == Elem.BOOL) return true;
        diags.error(Code.E200, span, what + " needs a truth value; this is " + t.show(),
                new Note("compare it, e.g. x > 0", null));
        return false;
    }

    private boolean requireInt(Type t, Span span, String what) {
        if (t instanceof Type.Error) return false;
        if (t instanceof Tensor tt && tt.elem() == Elem.INT) return true;
        diags.error(Code.E200, span, what + " must be an int; this is " + t.show(),
                t instanceof Tensor tt && tt.elem() == Elem.FLOAT ? new Note[] {new Note("convert explicitly: int(...)", null)} : new Note[0]);
        return false;
    }

    private void requireScalar(Type t, Span span, String what) {
        if (t instanceof Tensor tt && !tt.isScalar()) diags.error(Code.E201, span, what + " must be a single number; this is " + t.show());
    }

    /** An int that is one number per lane: a scalar, or indexed by the lane's layer and head. */
    private void requireLaneInt(Type t, Span span, String what) {
        if (!requireInt(t, span, what)) return;
        requireLaneAxes(t, span, what);
    }

    /**
     * An int that sizes a selection: one value per lane, and under {@code selection per layer} one for the layer (the
     * layer decides once; a table read there has a value per KV head, {@code [head]}, which is E201).
     */
    private void requireCount(Type t, Span span, String what, Ctx c) {
        if (!requireInt(t, span, what)) return;
        if (c.policy != null && c.policy.perLayer() && t instanceof Tensor tt && tt.axes().contains(Axis.HEAD)) {
            diags.error(Code.E201, span, what + " must be one value for the layer under selection per layer; this is " + t.show(),
                    new Note("reduce it over the layer's heads, e.g. max(x, over: head), or give each head a floor: top(s, n, per head at least m)", null));
            return;
        }
        requireLaneAxes(t, span, what);
    }

    private void requireLaneAxes(Type t, Span span, String what) {
        if (t instanceof Tensor tt) {
            EnumSet<Axis> rest = tt.axisSet();
            rest.remove(Axis.LAYER);
            rest.remove(Axis.HEAD);
            if (!rest.isEmpty()) {
                diags.error(Code.E201, span, what + " must be one value per lane; this is " + t.show(),
                        new Note("reduce it, e.g. sum(x, over: " + rest.stream().map(Axis::word).reduce((a, b) -> a + ", " + b).orElse("") + ")", null));
            }
        }
    }

    private boolean perTokenOnly(Tensor t, Ctx c) {
        EnumSet<Axis> rest = t.axisSet();
        rest.remove(Axis.TOKEN);
        rest.remove(Axis.HEAD);
        rest.remove(Axis.LAYER);
        return rest.isEmpty();
    }

    private void requireSet(Type t, Span span, String what) {
        requireSet(t, span, what, false);
    }

    /** {@code perQueryHead}: whether a set per query head of the group will do (attend). */
    private void requireSet(Type t, Span span, String what, boolean perQueryHead) {
        if (t instanceof Type.Error) return;
        if (t instanceof Type.SetOf s && s.domain() == Axis.TOKEN && s.perQueryHead() && !perQueryHead) {
            onePerLane(span, what + " needs one token set for the lane; this is a " + t.show());
            return;
        }
        if (t instanceof Type.SetOf s && s.domain() == Axis.TOKEN) return;
        diags.error(Code.E203, span, what + " needs a token set; this is " + t.show(),
                t instanceof Type.SetOf ? new Note[] {new Note("pages(...) turns a page set into a token set", null)}
                        : new Note[] {new Note("build one with first(n), last(n), top(score, n), where(cond), all", null)});
    }

    /** A set per query head asked for under per-layer selection, which does not make them. */
    private void perQueryHeadUnderLayer(Span span, String what) {
        diags.error(Code.E505, span, what + " of a score with a group axis makes a set per query head, which lane selection makes and 'selection per layer' does not",
                new Note("reduce the group axis first, e.g. max(x, over: group), or select per lane", null));
    }

    /** A set per query head where the lane's own is needed: what it is for, and how to get the lane's. */
    private void onePerLane(Span span, String message) {
        diags.error(Code.E203, span, message,
                new Note("a set per query head comes from a score with a group axis and is for attend; for one set for the lane, "
                        + "reduce the score's group axis first (e.g. mean(x, over: group)), or take the heads' union, "
                        + "where(sum(member(S) ? 1 : 0, over: group) > 0)", null));
    }
}
