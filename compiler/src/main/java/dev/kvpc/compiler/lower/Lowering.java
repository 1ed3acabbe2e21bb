package dev.kvpc.compiler.lower;

import dev.kvpc.compiler.ast.*;
import dev.kvpc.compiler.check.Builtin;
import dev.kvpc.compiler.check.CheckedProgram;
import dev.kvpc.compiler.check.Sym;
import dev.kvpc.compiler.check.Tables;
import dev.kvpc.compiler.check.Type;
import dev.kvpc.ir.*;
import dev.kvpc.ir.Axis;

import java.util.*;

/**
 * Lowers a checked program to tensor IR. The last place AST types appear: everything downstream reads IR.
 * Functions are inlined; policy-level {@code let}s are re-lowered where they are read; aliases and configs become
 * composed policies with clauses; {@code layers} clauses come before {@code heads where} ones (first match wins).
 */
public final class Lowering {
    private final CheckedProgram program;
    /** Variants bound to a config's arguments ({@code attention softcap(cap = 30.0)}), named after both. */
    private final List<AttentionIr> bound = new ArrayList<>();

    private Lowering(CheckedProgram program) {
        this.program = program;
    }

    public static IrProgram lower(CheckedProgram program) {
        Lowering l = new Lowering(program);
        List<PolicyIr> policies = new ArrayList<>();
        List<AttentionIr> variants = new ArrayList<>();
        for (Decl d : program.program().decls()) {
            switch (d) {
                case Decl.Policy p -> policies.add(l.new PolicyLowering().policy(p));
                case Decl.Config c -> policies.add(l.new PolicyLowering().config(c));
                case Decl.Attention a -> variants.add(l.new PolicyLowering().attention(a));
                case Decl.Fn f -> { }
            }
        }
        variants.addAll(l.bound);
        return new IrProgram(policies, variants);
    }

    static Ty ty(Type t) {
        return switch (t) {
            case Type.Tensor tt -> Ty.Tensor.of(switch (tt.elem()) {
                case INT -> Ty.Elem.INT;
                case FLOAT -> Ty.Elem.FLOAT;
                case BOOL -> Ty.Elem.BOOL;
            }, tt.axisSet().stream().map(a -> Axis.valueOf(a.name())).toList());
            case Type.SetOf s -> new Ty.SetTy(Axis.valueOf(s.domain().name()), s.perHead(), s.perQueryHead());
            case Type.Str s -> Ty.Tensor.of(Ty.Elem.FLOAT, List.of(Axis.LAYER, Axis.HEAD));
            case Type.Error e -> throw new IllegalStateException("lowering a program with type errors");
        };
    }

    /** Lowers one declaration; value ids are numbered per policy. */
    private final class PolicyLowering {
        private int next;
        /** Policy-level lets, re-lowered wherever they are read. */
        private final Map<String, Expr> policyLets = new HashMap<>();

        /** Where instructions go, and what names mean in it. */
        private final class Builder {
            final List<Instr> out = new ArrayList<>();
            final Builder parent;
            final Map<String, Integer> locals = new HashMap<>();

            Builder(Builder parent) {
                this.parent = parent;
            }

            Integer local(String n) {
                for (Builder b = this; b != null; b = b.parent) {
                    Integer v = b.locals.get(n);
                    if (v != null) return v;
                }
                return null;
            }

            int def(Ty type, Op op) {
                int id = next++;
                out.add(new Instr.Def(id, type, op));
                return id;
            }

            Block block() {
                return new Block(out);
            }
        }

        /** Where a handler is, as {@code file.kvp:line} (the file's name only). */
        private static String origin(dev.kvpc.compiler.ast.Span span) {
            if (span == null || span.file() == null) return null;
            String f = span.file().replace('\\', '/');
            return f.substring(f.lastIndexOf('/') + 1) + ":" + span.line();
        }

        private Computation comp(Expr e) {
            Builder b = new Builder(null);
            int r = expr(e, b);
            return new Computation(b.block(), r);
        }

        private Computation constant(Ty type, Object v) {
            Builder b = new Builder(null);
            int r = b.def(type, new Op.Const(v));
            return new Computation(b.block(), r);
        }

        private List<PolicyIr.Param> params(List<Decl.Param> ps) {
            List<PolicyIr.Param> out = new ArrayList<>();
            for (Decl.Param p : ps) {
                boolean table = Tables.isTableType(p.type().name());
                PolicyIr.ParamKind kind = table ? PolicyIr.ParamKind.TABLE : PolicyIr.ParamKind.valueOf(p.type().name().toUpperCase(Locale.ROOT));
                Computation init = null;
                if (p.defaultValue() != null) {
                    init = table && p.defaultValue() instanceof Expr.StringLit s
                            ? tableComp(s.value(), Tables.isChannelTable(p.type().name())) : comp(p.defaultValue());
                }
                out.add(new PolicyIr.Param(p.name().text(), kind, init));
            }
            return out;
        }

        private Computation tableComp(String file, boolean channels) {
            Builder b = new Builder(null);
            int r = b.def(Ty.Tensor.of(Ty.Elem.FLOAT, channels ? List.of(Axis.LAYER, Axis.HEAD, Axis.CHANNEL) : List.of(Axis.LAYER, Axis.HEAD)),
                    new Op.Table(file));
            return new Computation(b.block(), r);
        }

        AttentionIr attention(Decl.Attention a) {
            Computation logits = null, mask = null;
            AttentionIr.Normalize norm = AttentionIr.Normalize.SOFTMAX;
            List<Stmt.Let> lets = new ArrayList<>();
            for (AttentionItem i : a.items()) {
                switch (i) {
                    case Stmt.Let l -> policyLets.put(l.name().text(), l.value());
                    case AttentionItem.Logits l -> logits = comp(l.value());
                    case AttentionItem.Mask m -> mask = comp(m.value());
                    case AttentionItem.Normalize n -> norm = AttentionIr.Normalize.valueOf(n.how().text().toUpperCase(Locale.ROOT));
                }
            }
            if (logits == null) {
                // the default variant: dot(q, k) * scale
                Builder b = new Builder(null);
                int q = b.def(Ty.Tensor.of(Ty.Elem.FLOAT, List.of(Axis.CHANNEL)), new Op.Signal(Signal.Q));
                int k = b.def(Ty.Tensor.of(Ty.Elem.FLOAT, List.of(Axis.CHANNEL)), new Op.Signal(Signal.K));
                int d = b.def(Ty.FLOAT, new Op.Dot(q, k));
                int s = b.def(Ty.FLOAT, new Op.Signal(Signal.SCALE));
                logits = new Computation(b.block(), b.def(Ty.FLOAT, new Op.Map2(Op.Fn2.MUL, d, s)));
            }
            return new AttentionIr(a.name().text(), params(a.paramList()), logits, mask, norm);
        }

        PolicyIr policy(Decl.Policy p) {
            List<PolicyIr.Param> params = params(p.paramList());
            return switch (p.body()) {
                case PolicyBody.Alias a -> new PolicyIr(p.name().text(), params, PolicyIr.Positions.ORIGINAL, PolicyIr.Selection.LANE,
                        List.of(), List.of(), Block.EMPTY, List.of(),
                        List.of(new PolicyIr.Clause(constant(Ty.BOOL, true), use(a.target()))), null);
                case PolicyBody.Items items -> items(p.name().text(), params, items.items(), null);
            };
        }

        PolicyIr config(Decl.Config c) {
            String variant = null;
            List<PolicyItem> items = new ArrayList<>();
            for (ConfigItem i : c.items()) {
                switch (i) {
                    case ConfigItem.AttentionUse a -> variant = a.variant().argList().isEmpty() ? a.variant().name().text() : bind(a.variant(), c.name().text());
                    case Composition comp -> items.add((PolicyItem) comp);
                }
            }
            return items(c.name().text(), params(c.paramList()), items, variant == null ? "standard" : variant);
        }

        /** The variant {@code ref} names with its parameters' defaults replaced by the arguments given there. */
        private String bind(PolicyRef ref, String config) {
            Decl.Attention target = (Decl.Attention) program.decls().get(ref.name().text());
            // one lowering for the variant and its arguments, so that their values are numbered apart
            PolicyLowering lowering = new PolicyLowering();
            AttentionIr base = lowering.attention(target);
            Map<String, Computation> args = new HashMap<>();
            int pos = 0;
            for (Arg a : ref.argList()) {
                switch (a) {
                    case Arg.Positional p -> args.put(target.paramList().get(pos++).name().text(), lowering.comp(p.value()));
                    case Arg.Named n -> args.put(n.name().text(), lowering.comp(n.value()));
                    case Arg.PerHeadAtLeast ph -> { }
                }
            }
            List<PolicyIr.Param> params = new ArrayList<>();
            for (PolicyIr.Param p : base.params()) params.add(args.containsKey(p.name()) ? new PolicyIr.Param(p.name(), p.kind(), args.get(p.name())) : p);
            String name = base.name() + "_" + config;
            bound.add(new AttentionIr(name, params, base.logits(), base.mask(), base.normalize()));
            return name;
        }

        private PolicyIr.Use use(PolicyRef ref) {
            Decl.Policy target = (Decl.Policy) program.decls().get(ref.name().text());
            Map<String, Computation> args = new LinkedHashMap<>();
            int pos = 0;
            for (Arg a : ref.argList()) {
                switch (a) {
                    case Arg.Positional p -> args.put(target.paramList().get(pos++).name().text(), argComp(target.paramList(), p.value(), pos - 1));
                    case Arg.Named n -> {
                        int idx = 0;
                        for (int i = 0; i < target.paramList().size(); i++) if (target.paramList().get(i).name().text().equals(n.name().text())) idx = i;
                        args.put(n.name().text(), argComp(target.paramList(), n.value(), idx));
                    }
                    case Arg.PerHeadAtLeast ph -> { }
                }
            }
            return new PolicyIr.Use(target.name().text(), args);
        }

        private Computation argComp(List<Decl.Param> params, Expr value, int idx) {
            String type = params.get(idx).type().name();
            if (Tables.isTableType(type) && value instanceof Expr.StringLit s) return tableComp(s.value(), Tables.isChannelTable(type));
            return comp(value);
        }

        private PolicyIr items(String name, List<PolicyIr.Param> params, List<PolicyItem> items, String variant) {
            PolicyIr.Positions positions = PolicyIr.Positions.ORIGINAL;
            PolicyIr.Selection selection = PolicyIr.Selection.LANE;
            List<PolicyIr.State> states = new ArrayList<>();
            List<PolicyIr.Observe> observes = new ArrayList<>();
            Builder standing = new Builder(null);
            List<PolicyIr.Handler> handlers = new ArrayList<>();
            List<PolicyIr.Clause> layerClauses = new ArrayList<>(), headClauses = new ArrayList<>();
            for (PolicyItem item : items) {
                if (item instanceof Stmt.Let l) policyLets.put(l.name().text(), l.value());
            }
            for (PolicyItem item : items) {
                switch (item) {
                    case PolicyItem.Positions p -> positions = PolicyIr.Positions.valueOf(p.mode().text().toUpperCase(Locale.ROOT));
                    case PolicyItem.Selection s -> selection = PolicyIr.Selection.valueOf(s.scope().text().toUpperCase(Locale.ROOT));
                    case PolicyItem.Observe o -> {
                        if (o.queries() instanceof Expr.Call c) {
                            Op.End end = c.callee().text().equals("first") ? Op.End.FIRST : Op.End.LAST;
                            observes.add(new PolicyIr.Observe(end, comp(((Arg.Positional) c.args().getFirst()).value()), event(o.at().text())));
                        } else {
                            observes.add(new PolicyIr.Observe(null, null, event(o.at().text())));
                        }
                    }
                    case PolicyItem.State s -> {
                        Sym sym = findStateSym(s);
                        Ty.Tensor type = (Ty.Tensor) ty(sym.type());
                        PolicyIr.StateScope scope = PolicyIr.StateScope.valueOf(s.scope().scope().name());
                        Computation size = s.scope().pageSize() != null ? comp(s.scope().pageSize()) : null;
                        Computation init = s.init() != null ? comp(s.init()) : null;
                        states.add(new PolicyIr.State(s.name().text(), type, scope, size, init, false));
                    }
                    case Stmt.Let l -> { }
                    case PolicyItem.On on -> {
                        List<PolicyIr.Event> events = new ArrayList<>();
                        Computation limit = null;
                        for (PolicyItem.Event e : on.events()) {
                            events.add(PolicyIr.Event.valueOf(e.kind().name()));
                            if (e.budget() != null) limit = comp(e.budget());
                        }
                        handlers.add(new PolicyIr.Handler(events, limit, 0, body(on.body()), origin(on.span())));
                    }
                    case PolicyItem.Every ev -> handlers.add(new PolicyIr.Handler(List.of(PolicyIr.Event.EVERY), comp(ev.period()), 0, body(ev.body()), origin(ev.span())));
                    case Stmt.Store st -> store(st, standing);
                    case Composition.Layers l -> layerClauses.add(new PolicyIr.Clause(layerGuard(l), target(l.target(), params)));
                    case Composition.HeadsWhere h -> {
                        headClauses.add(new PolicyIr.Clause(comp(h.condition()), target(h.then(), params)));
                        headClauses.add(new PolicyIr.Clause(constant(Ty.BOOL, true), target(h.otherwise(), params)));
                    }
                }
            }
            List<PolicyIr.Clause> clauses = new ArrayList<>(layerClauses);
            clauses.addAll(headClauses);
            return new PolicyIr(name, params, positions, selection, states, observes, standing.block(), handlers, clauses, variant);
        }

        private Sym findStateSym(PolicyItem.State s) {
            Sym sym = program.symbols().get(s);
            if (sym == null) throw new IllegalStateException("state " + s.name().text() + " has no symbol");
            return sym;
        }

        private PolicyIr.Event event(String word) {
            return PolicyIr.Event.valueOf(word.toUpperCase(Locale.ROOT));
        }

        private PolicyIr.Target target(Target t, List<PolicyIr.Param> outerParams) {
            return switch (t) {
                case Target.Use u -> use(u.ref());
                case Target.Inline in -> new PolicyIr.Inline(items("inline", List.of(), in.body().items(), null));
            };
        }

        private Computation layerGuard(Composition.Layers l) {
            Builder b = new Builder(null);
            int layer = b.def(Ty.INT, new Op.Signal(Signal.LAYER));
            int from = expr(l.from(), b);
            int r;
            if (!l.ranged()) {
                r = b.def(Ty.BOOL, new Op.Map2(Op.Fn2.EQ, layer, from));
            } else {
                r = b.def(Ty.BOOL, new Op.Map2(Op.Fn2.GE, layer, from));
                if (l.to() != null) {
                    int to = expr(l.to(), b);
                    int le = b.def(Ty.BOOL, new Op.Map2(Op.Fn2.LE, layer, to));
                    r = b.def(Ty.BOOL, new Op.Map2(Op.Fn2.AND, r, le));
                }
            }
            return new Computation(b.block(), r);
        }

        private Block body(PolicyItem.Block block) {
            Builder b = new Builder(null);
            stmts(block.stmts(), b);
            return b.block();
        }

        private void stmts(List<Stmt> stmts, Builder b) {
            for (Stmt s : stmts) {
                switch (s) {
                    case Stmt.Let l -> b.locals.put(l.name().text(), expr(l.value(), b));
                    case Stmt.Keep k -> b.out.add(new Instr.Keep(expr(k.set(), b)));
                    case Stmt.Evict e -> b.out.add(new Instr.Evict(expr(e.set(), b)));
                    case Stmt.Attend a -> b.out.add(new Instr.Attend(expr(a.set(), b)));
                    case Stmt.Merge m -> {
                        int src = expr(m.source(), b), dst = expr(m.dest(), b);
                        Instr.MergeBy by = m.by() == null ? Instr.MergeBy.NONE
                                : m.by().of() == null ? Instr.MergeBy.NEAREST
                                : m.by().of().text().equals("k") ? Instr.MergeBy.COSINE_K : Instr.MergeBy.COSINE_V;
                        int w = m.weight() != null ? expr(m.weight(), b) : -1;
                        b.out.add(new Instr.Merge(src, dst, by, w));
                    }
                    case Stmt.Store st -> store(st, b);
                    case Stmt.If i -> b.out.add(ifInstr(i, b));
                    case Stmt.Assign a -> b.out.add(new Instr.StateWrite(a.target().text(), Instr.Assign.valueOf(a.op().name()), expr(a.value(), b)));
                }
            }
        }

        private Instr.If ifInstr(Stmt.If i, Builder b) {
            int c = expr(i.condition(), b);
            Builder then = new Builder(b);
            stmts(i.then().stmts(), then);
            Builder otherwise = new Builder(b);
            if (i.elseBlock() != null) stmts(i.elseBlock().stmts(), otherwise);
            if (i.elseIf() != null) otherwise.out.add(ifInstr(i.elseIf(), otherwise));
            return new Instr.If(c, then.block(), otherwise.block());
        }

        private void store(Stmt.Store st, Builder b) {
            Set<Instr.Part> parts = EnumSet.noneOf(Instr.Part.class);
            for (Name t : st.targets()) parts.add(Instr.Part.valueOf(t.text().toUpperCase(Locale.ROOT)));
            Instr.Format fmt = st.format().bits() != null ? Instr.Format.INT : Instr.Format.valueOf(st.format().word().text().toUpperCase(Locale.ROOT));
            int bits = st.format().bits() != null ? expr(st.format().bits(), b) : -1;
            Instr.QuantAxis axis = Instr.QuantAxis.TOKEN;
            int group = -1;
            for (Stmt.QuantOption q : st.options()) {
                if (q.axis() != null) axis = Instr.QuantAxis.valueOf(q.axis().text().toUpperCase(Locale.ROOT));
                else group = expr(q.size(), b);
            }
            Instr.Scope scope = Instr.Scope.ALL;
            int set = -1;
            if (st.scope() != null) {
                scope = Instr.Scope.valueOf(st.scope().kind().name());
                if (st.scope().set() != null) set = expr(st.scope().set(), b);
            }
            b.out.add(new Instr.Store(parts, fmt, bits, axis, group, scope, set));
        }

        // ---------------------------------------------------------------- expressions

        /** What each composite builtin is made of: the IR's reductions and elementwise functions, broadcasting back. */
        private int composite(dev.kvpc.compiler.check.Composite composite, Ty.Tensor t, Expr arg, List<Axis> over, Builder b) {
            Ty.Tensor tx = (Ty.Tensor) typeOf(arg);
            Ty.Tensor full = Ty.Tensor.of(Ty.Elem.FLOAT, tx.axes());
            List<Axis> kept = new ArrayList<>(tx.axes());
            kept.removeAll(over);
            Ty.Tensor reduced = Ty.Tensor.of(Ty.Elem.FLOAT, kept);
            int x = expr(arg, b);
            return switch (composite) {
                case VARIANCE -> {
                    int m = b.def(reduced, new Op.Reduce(Op.Red.MEAN, x, over));
                    int d = b.def(full, new Op.Map2(Op.Fn2.SUB, x, m));
                    int sq = b.def(full, new Op.Map2(Op.Fn2.MUL, d, d));
                    yield b.def(t, new Op.Reduce(Op.Red.MEAN, sq, over));
                }
                case SOFTMAX -> {
                    int m = b.def(Ty.Tensor.of(tx.elem(), kept), new Op.Reduce(Op.Red.MAX, x, over));
                    int e = b.def(full, new Op.Map1(Op.Fn1.EXP, b.def(full, new Op.Map2(Op.Fn2.SUB, x, m))));
                    int s = b.def(reduced, new Op.Reduce(Op.Red.SUM, e, over));
                    yield b.def(t, new Op.Map2(Op.Fn2.DIV, e, s));
                }
            };
        }

        private Ty typeOf(Expr e) {
            Type t = program.typeOf(e);
            if (t == null) throw new IllegalStateException("no type recorded for " + e);
            return ty(t);
        }

        private int expr(Expr e, Builder b) {
            return switch (e) {
                case Expr.IntLit i -> b.def(Ty.INT, new Op.Const(i.value()));
                case Expr.FloatLit f -> b.def(Ty.FLOAT, new Op.Const(f.value()));
                case Expr.BoolLit x -> b.def(Ty.BOOL, new Op.Const(x.value()));
                case Expr.StringLit s -> b.def(Ty.Tensor.of(Ty.Elem.FLOAT, List.of(Axis.LAYER, Axis.HEAD)), new Op.Table(s.value()));
                case Expr.AllSet a -> b.def(Ty.TOKENS, new Op.All());
                case Expr.Compensation c -> b.def(Ty.TOKENS, new Op.Compensation());
                case Expr.NameRef n -> name(n, b);
                case Expr.Unary u -> b.def(typeOf(e), new Op.Map1(u.op() == Expr.UnaryOp.NEG ? Op.Fn1.NEG : Op.Fn1.NOT, expr(u.operand(), b)));
                case Expr.Cast c -> b.def(typeOf(e), new Op.Map1(c.to() == Expr.ScalarKind.INT ? Op.Fn1.TO_INT : Op.Fn1.TO_FLOAT, expr(c.operand(), b)));
                case Expr.Conditional c -> {
                    int cond = expr(c.condition(), b), x = expr(c.ifTrue(), b), y = expr(c.ifFalse(), b);
                    yield b.def(typeOf(e), new Op.Choose(cond, x, y));
                }
                case Expr.Binary bin -> binary(bin, b);
                case Expr.Call call -> call(call, b);
            };
        }

        private int name(Expr.NameRef n, Builder b) {
            Integer local = b.local(n.name());
            if (local != null) return local;
            Sym s = program.symbols().get(n);
            Ty t = typeOf(n);
            return switch (s) {
                case Sym.Param p -> b.def(t, new Op.Param(p.name()));
                case Sym.State st -> b.def(t, new Op.StateRead(st.name()));
                case Sym.Signal sig -> b.def(t, new Op.Signal(Signal.of(sig.name())));
                case Sym.Local l -> {
                    Expr def = policyLets.get(l.name());
                    if (def != null && l.let().value() == def) yield expr(def, b);
                    throw new IllegalStateException("let '" + l.name() + "' used outside its scope");
                }
                case null -> throw new IllegalStateException("unresolved name " + n.name() + " at " + n.span());
            };
        }

        private int binary(Expr.Binary bin, Builder b) {
            int l = expr(bin.left(), b), r = expr(bin.right(), b);
            Ty t = typeOf(bin);
            boolean sets = t instanceof Ty.SetTy;
            Op op = switch (bin.op()) {
                case ADD -> sets ? new Op.SetOp(Op.SetFn.UNION, l, r) : new Op.Map2(Op.Fn2.ADD, l, r);
                case SUB -> sets ? new Op.SetOp(Op.SetFn.DIFF, l, r) : new Op.Map2(Op.Fn2.SUB, l, r);
                case INTERSECT -> new Op.SetOp(Op.SetFn.INTER, l, r);
                case WITHIN -> new Op.Within(l, r);
                case MUL -> new Op.Map2(Op.Fn2.MUL, l, r);
                case DIV -> new Op.Map2(Op.Fn2.DIV, l, r);
                case MOD -> new Op.Map2(Op.Fn2.MOD, l, r);
                case LT -> new Op.Map2(Op.Fn2.LT, l, r);
                case LE -> new Op.Map2(Op.Fn2.LE, l, r);
                case GT -> new Op.Map2(Op.Fn2.GT, l, r);
                case GE -> new Op.Map2(Op.Fn2.GE, l, r);
                case EQ -> new Op.Map2(Op.Fn2.EQ, l, r);
                case NE -> new Op.Map2(Op.Fn2.NE, l, r);
                case AND -> new Op.Map2(Op.Fn2.AND, l, r);
                case OR -> new Op.Map2(Op.Fn2.OR, l, r);
            };
            return b.def(t, op);
        }

        private int call(Expr.Call c, Builder b) {
            String f = c.callee().text();
            Decl d = program.decls().get(f);
            List<Expr> pos = new ArrayList<>();
            Expr floor = null;
            for (Arg a : c.args()) {
                if (a instanceof Arg.Positional p) pos.add(p.value());
                else if (a instanceof Arg.PerHeadAtLeast ph) floor = ph.value();
            }
            if (d instanceof Decl.Fn fn) return inline(fn, pos, b);
            Ty t = typeOf(c);
            if (c.over() != null && c.over().stream().anyMatch(n -> n.text().equals("prompt"))) {
                // every query of the event: the kernel's column sums, whatever an observe clause keeps
                List<Axis> axes = new ArrayList<>(List.of(Axis.QUERY));
                for (var n : c.over()) if (!n.text().equals("prompt")) axes.add(Axis.of(n.text()));
                axes.sort(java.util.Comparator.naturalOrder());
                return b.def(t, new Op.KernelStat(dev.kvpc.ir.Signal.PROMPT_ATTN, Op.Red.of(f), axes));
            }
            List<Axis> over = c.over() == null ? List.of() : c.over().stream().map(n -> Axis.of(n.text())).toList();
            Op.Red red = Op.Red.of(f);
            PolicyItem.State cells = modelState(pos.isEmpty() ? null : pos.getFirst(), b);
            if (red != null && c.over() != null && cells != null && !modelAxes(cells).contains(Axis.TOKEN)
                    && Set.copyOf(over).equals(Set.copyOf(modelAxes(cells)))) {
                // every cell of a per model state (the checker allows a reduction over its cell axes only on the state)
                return b.def(t, new Op.ModelStat(Op.CellStat.of(red), cells.name().text(), modelAxes(cells)));
            }
            if (red != null && c.over() != null) return b.def(t, new Op.Reduce(red, expr(pos.getFirst(), b), over));
            dev.kvpc.compiler.check.Composite composite = dev.kvpc.compiler.check.Composite.of(f);
            if (composite != null) return composite(composite, (Ty.Tensor) t, pos.getFirst(), over, b);
            if (f.equals("max") || f.equals("min")) {
                return b.def(t, new Op.Map2(f.equals("max") ? Op.Fn2.MAX : Op.Fn2.MIN, expr(pos.get(0), b), expr(pos.get(1), b)));
            }
            Builtin builtin = Builtin.of(f);
            if (builtin == null) throw new IllegalStateException("no builtin " + f);
            return switch (builtin) {
                case POW -> b.def(t, new Op.Map2(builtin.fn2, expr(pos.get(0), b), expr(pos.get(1), b)));
                case MAXPOOL, AVGPOOL -> {
                    int x = expr(pos.get(0), b), k = expr(pos.get(1), b);
                    yield b.def(t, new Op.Pool(builtin == Builtin.MAXPOOL ? Op.Red.MAX : Op.Red.MEAN, x, k, over.getFirst()));
                }
                case QUANTILE -> {
                    int x = expr(pos.get(0), b), p = expr(pos.get(1), b);
                    yield b.def(t, new Op.Quantile(x, p, over));
                }
                case ABS, EXP, LOG, SQRT, TANH, SIGMOID -> b.def(t, new Op.Map1(builtin.fn1, expr(pos.getFirst(), b)));
                case DOT -> {
                    int x = expr(pos.get(0), b), y = expr(pos.get(1), b);
                    yield b.def(t, new Op.Dot(x, y));
                }
                case SLOPE -> b.def(t, new Op.Slope(expr(pos.getFirst(), b)));
                case TABLE -> b.def(t, new Op.Table(((Expr.StringLit) pos.getFirst()).value()));
                case SHARE -> {
                    // share(total, w) = int(total * the own cell's fraction of the weights): parts never add up to more
                    PolicyItem.State w = modelState(pos.get(1), b);
                    int total = expr(pos.get(0), b);
                    int frac = b.def(Ty.FLOAT, new Op.ModelStat(Op.CellStat.SHARE, w.name().text(), modelAxes(w)));
                    int part = b.def(Ty.FLOAT, new Op.Map2(Op.Fn2.MUL, total, frac));
                    yield b.def(t, new Op.Map1(Op.Fn1.TO_INT, part));
                }
                case FIRST, LAST -> b.def(t, new Op.Range(builtin == Builtin.FIRST ? Op.End.FIRST : Op.End.LAST, expr(pos.getFirst(), b)));
                case TOP, BOTTOM -> {
                    int s = expr(pos.get(0), b), n = expr(pos.get(1), b);
                    int fl = floor != null ? expr(floor, b) : -1;
                    yield b.def(t, new Op.Rank(builtin == Builtin.TOP ? Op.Order.TOP : Op.Order.BOTTOM, s, n, fl, Op.Algorithm.AUTO));
                }
                case WHERE -> b.def(t, new Op.Where(expr(pos.getFirst(), b)));
                case PAGES -> b.def(t, new Op.Pages(expr(pos.getFirst(), b)));
                case RANK, COUNT, MEMBER, UNIFORM, GUMBEL, MAXCOS, MAXDOT, STRATA -> {
                    List<Integer> args = new ArrayList<>();
                    for (Expr e : pos) args.add(expr(e, b));
                    // maxcos(x, S) computes every entry's row: maxcos(x, S, all)
                    if (args.size() < builtin.prim.operands.length) args.add(b.def(Ty.TOKENS, new Op.All()));
                    yield b.def(t, new Op.Prim(builtin.prim, args));
                }
            };
        }

        /** The per model state {@code e} names (not shadowed by a local), or null. */
        private PolicyItem.State modelState(Expr e, Builder b) {
            if (!(e instanceof Expr.NameRef n) || b.local(n.name()) != null) return null;
            return program.symbols().get(n) instanceof Sym.State st && st.state().scope().scope() == PolicyItem.Scope.MODEL ? st.state() : null;
        }

        /** A model state's cell axes, in the IR's order. */
        private static List<Axis> modelAxes(PolicyItem.State s) {
            List<Axis> out = new ArrayList<>();
            for (var a : s.type().axes()) if (Axis.of(a.text()) != null) out.add(Axis.of(a.text()));
            out.sort(java.util.Comparator.naturalOrder());
            return out;
        }

        /** Inlines a function: its parameters bound to the argument values, its lets, its result. */
        private int inline(Decl.Fn fn, List<Expr> args, Builder b) {
            List<Integer> values = new ArrayList<>();
            for (Expr a : args) values.add(expr(a, b));
            Builder inner = new Builder(null);
            for (int i = 0; i < values.size(); i++) inner.locals.put(fn.params().get(i).name().text(), values.get(i));
            for (Stmt.Let l : fn.lets()) inner.locals.put(l.name().text(), expr(l.value(), inner));
            int r = expr(fn.result(), inner);
            b.out.addAll(inner.out);
            Ty want = fn.returnType().name().equals("int") ? Ty.INT : fn.returnType().name().equals("bool") ? Ty.BOOL : Ty.FLOAT;
            Ty got = typeOf(fn.result());
            if (want.equals(Ty.FLOAT) && got.equals(Ty.INT)) return b.def(Ty.FLOAT, new Op.Map1(Op.Fn1.TO_FLOAT, r));
            return r;
        }
    }
}
