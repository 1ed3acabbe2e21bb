package dev.kvpc.ir;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Well-formedness of tensor IR: every value defined once and before use in an enclosing scope, operand types
 * fitting their ops, effects on sets, states that exist. Run after every pass in tests and on demand.
 */
public final class Verifier {
    /** Thrown with every problem found, one per line. */
    public static final class VerifyException extends RuntimeException {
        public VerifyException(String message) {
            super(message);
        }
    }

    private final List<String> problems = new ArrayList<>();
    private final Set<Integer> defined = new HashSet<>();
    private final Map<Integer, Ty> types = new HashMap<>();
    private Set<String> states;
    private String where;

    private Verifier() {}

    public static void verify(IrProgram p) {
        Verifier v = new Verifier();
        for (AttentionIr a : p.variants()) v.variant(a);
        for (PolicyIr pol : p.policies()) v.policy(pol);
        v.done();
    }

    public static void verify(PolicyIr p) {
        Verifier v = new Verifier();
        v.policy(p);
        v.done();
    }

    private void done() {
        if (!problems.isEmpty()) throw new VerifyException(String.join("\n", problems));
    }

    private void problem(String s) {
        problems.add(where + ": " + s);
    }

    private void variant(AttentionIr a) {
        where = "attention " + a.name();
        defined.clear();
        types.clear();
        states = Set.of();
        for (PolicyIr.Param p : a.params()) if (p.init() != null) computation(p.init(), List.of());
        computation(a.logits(), List.of());
        if (a.mask() != null) computation(a.mask(), List.of());
        expectTensor(a.logits().result(), null, "logits");
        expectTensor(a.mask() == null ? -1 : a.mask().result(), Ty.Elem.BOOL, "mask");
    }

    private void policy(PolicyIr p) {
        where = "policy " + p.name();
        defined.clear();
        types.clear();
        items(p);
    }

    private void items(PolicyIr p) {
        states = new HashSet<>();
        Set<String> names = new HashSet<>();
        for (PolicyIr.Param prm : p.params()) {
            if (!names.add(prm.name())) problem("parameter " + prm.name() + " declared twice");
            if (prm.init() != null) computation(prm.init(), List.of());
        }
        for (PolicyIr.State s : p.states()) {
            if (!states.add(s.name())) problem("state " + s.name() + " declared twice");
            if (s.pageSize() != null) {
                computation(s.pageSize(), List.of());
                expectTensor(s.pageSize().result(), Ty.Elem.INT, "page size");
            }
            if (s.init() != null) computation(s.init(), List.of());
            boolean hasToken = s.type().axes().contains(Axis.TOKEN), hasPage = s.type().axes().contains(Axis.PAGE);
            // a token axis: per token state, or a model state over tokens (one value per text position)
            if (hasToken != (s.scope() == PolicyIr.StateScope.TOKEN || s.overTokens())) problem("state " + s.name() + ": token axis and scope disagree");
            if (hasPage != (s.scope() == PolicyIr.StateScope.PAGE)) problem("state " + s.name() + ": page axis and scope disagree");
        }
        for (PolicyIr.Observe o : p.observes()) if (o.count() != null) computation(o.count(), List.of());
        block(p.standing(), new ArrayList<>());
        for (PolicyIr.Handler h : p.handlers()) {
            List<Integer> scope = new ArrayList<>();
            if (h.limit() != null) {
                scope.addAll(computation(h.limit(), List.of()));
                expectTensor(h.limit().result(), Ty.Elem.INT, "handler limit");
            }
            block(h.body(), scope);
        }
        for (PolicyIr.Clause c : p.clauses()) {
            computation(c.guard(), List.of());
            expectTensor(c.guard().result(), Ty.Elem.BOOL, "clause guard");
            switch (c.target()) {
                case PolicyIr.Use u -> u.args().values().forEach(a -> computation(a, List.of()));
                case PolicyIr.Inline in -> {
                    Set<String> outer = states;
                    items(in.body());
                    states = outer;
                }
            }
        }
    }

    /** Verifies a computation's block; returns the ids it defines (visible to what it scopes). */
    private List<Integer> computation(Computation c, List<Integer> outer) {
        List<Integer> scope = new ArrayList<>(outer);
        block(c.block(), scope);
        if (!scope.contains(c.result())) problem("computation result %" + c.result() + " not defined in its block");
        return scope;
    }

    /** {@code scope} holds the ids visible here; definitions of this block are appended to it. */
    private void block(Block b, List<Integer> scope) {
        for (Instr i : b.instrs()) {
            switch (i) {
                case Instr.Def d -> {
                    for (int o : d.op().operands()) use(o, scope, "operand of %" + d.id());
                    if (!defined.add(d.id())) problem("%" + d.id() + " defined twice");
                    scope.add(d.id());
                    types.put(d.id(), d.type());
                    checkDef(d);
                }
                case Instr.Keep k -> expectSet(k.set(), scope, "keep");
                case Instr.Evict e -> expectSet(e.set(), scope, "evict");
                case Instr.Attend a -> expectSet(a.set(), scope, "attend");
                case Instr.Merge m -> {
                    expectSet(m.source(), scope, "merge source");
                    expectSet(m.dest(), scope, "merge destination");
                    if (m.weight() >= 0) use(m.weight(), scope, "merge weight");
                }
                case Instr.Store s -> {
                    if (s.bits() >= 0) use(s.bits(), scope, "store bits");
                    if (s.group() >= 0) use(s.group(), scope, "store group");
                    if (s.set() >= 0) expectSet(s.set(), scope, "store scope");
                }
                case Instr.StateWrite w -> {
                    use(w.value(), scope, "state write");
                    if (!states.contains(w.state())) problem("write to undeclared state " + w.state());
                }
                case Instr.If f -> {
                    use(f.cond(), scope, "if condition");
                    expectTensor(f.cond(), Ty.Elem.BOOL, "if condition");
                    block(f.then(), new ArrayList<>(scope));
                    block(f.otherwise(), new ArrayList<>(scope));
                }
            }
        }
    }

    private void use(int id, List<Integer> scope, String what) {
        if (!scope.contains(id)) problem(what + ": %" + id + " is not defined in scope");
    }

    private void expectSet(int id, List<Integer> scope, String what) {
        use(id, scope, what);
        Ty t = types.get(id);
        if (t != null && !(t instanceof Ty.SetTy s && s.domain() == Axis.TOKEN)) problem(what + ": %" + id + " is " + t.show() + ", not a token set");
    }

    private void expectTensor(int id, Ty.Elem elem, String what) {
        if (id < 0) return;
        Ty t = types.get(id);
        if (t == null) return;
        if (!(t instanceof Ty.Tensor tt) || (elem != null && tt.elem() != elem)) problem(what + ": %" + id + " is " + t.show());
    }

    private void checkDef(Instr.Def d) {
        switch (d.op()) {
            case Op.Reduce r -> {
                if (types.get(r.x()) instanceof Ty.Tensor x && d.type() instanceof Ty.Tensor out) {
                    EnumSet<Axis> want = x.axes().isEmpty() ? EnumSet.noneOf(Axis.class) : EnumSet.copyOf(x.axes());
                    for (Axis a : r.over()) if (!want.remove(a)) problem("%" + d.id() + ": reduces over " + a.word() + ", which %" + r.x() + " lacks");
                    if (!want.equals(out.axes().isEmpty() ? EnumSet.noneOf(Axis.class) : EnumSet.copyOf(out.axes()))) {
                        problem("%" + d.id() + ": type " + out.show() + " does not match the reduction");
                    }
                }
            }
            case Op.Rank r -> {
                if (!(d.type() instanceof Ty.SetTy)) problem("%" + d.id() + ": a rank is a set");
                expectTensor(r.count(), Ty.Elem.INT, "rank count of %" + d.id());
            }
            case Op.Range r -> {
                if (!(d.type() instanceof Ty.SetTy)) problem("%" + d.id() + ": a range is a set");
                expectTensor(r.count(), Ty.Elem.INT, "range count of %" + d.id());
            }
            case Op.SetOp s -> {
                if (!(types.get(s.a()) instanceof Ty.SetTy a) || !(types.get(s.b()) instanceof Ty.SetTy b) || a.domain() != b.domain()) {
                    problem("%" + d.id() + ": set op on " + show(s.a()) + " and " + show(s.b()));
                }
            }
            case Op.Pages p -> {
                if (!(types.get(p.pages()) instanceof Ty.SetTy s && s.domain() == Axis.PAGE)) problem("%" + d.id() + ": pages of " + show(p.pages()));
            }
            case Op.Where w -> expectTensor(w.pred(), Ty.Elem.BOOL, "where predicate of %" + d.id());
            case Op.Prim p -> {
                if (p.fn().setResult() != d.type() instanceof Ty.SetTy) problem("%" + d.id() + ": " + p.fn().word() + " is typed " + d.type().show());
                for (int i = 0; i < p.args().size(); i++) {
                    int a = p.args().get(i);
                    String what = p.fn().word() + " operand " + (i + 1) + " of %" + d.id();
                    switch (p.fn().operands[i]) {
                        case SET -> {
                            if (!(types.get(a) instanceof Ty.SetTy s && s.domain() == Axis.TOKEN)) problem(what + ": " + show(a) + " is not a token set");
                        }
                        case VALUES -> {
                            if (!(types.get(a) instanceof Ty.Tensor t && t.axes().contains(Axis.TOKEN))) problem(what + ": " + show(a) + " is not over tokens");
                        }
                        case SCALAR -> {
                            if (!(types.get(a) instanceof Ty.Tensor t && t.isScalar())) problem(what + ": " + show(a) + " is not a scalar");
                        }
                    }
                }
            }
            case Op.StateRead s -> {
                if (!states.contains(s.name())) problem("%" + d.id() + ": reads undeclared state " + s.name());
            }
            case Op.ModelStat m -> {
                if (!states.contains(m.state())) problem("%" + d.id() + ": reads undeclared state " + m.state());
            }
            case Op.Vector v -> {
                if (!(d.type() instanceof Ty.Tensor t && t.elem() == Ty.Elem.FLOAT && t.axes().size() == v.dims().length
                        && t.axes().stream().allMatch(a -> a == Axis.HEAD || a == Axis.CHANNEL))) {
                    problem("%" + d.id() + ": a vector constant of " + v.dims().length + " axes is float over [head] or [channel] or both, not " + d.type().show());
                }
            }
            case Op.Const c -> {
                boolean ok = d.type() instanceof Ty.Tensor t && t.isScalar() && switch (t.elem()) {
                    case INT -> c.value() instanceof Long;
                    case FLOAT -> c.value() instanceof Double;
                    case BOOL -> c.value() instanceof Boolean;
                };
                if (!ok) problem("%" + d.id() + ": constant " + c.value() + " typed " + d.type().show());
            }
            default -> { }
        }
    }

    private String show(int id) {
        Ty t = types.get(id);
        return "%" + id + " (" + (t == null ? "?" : t.show()) + ")";
    }
}
