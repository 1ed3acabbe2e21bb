package dev.kvpc.gpu.kir;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What makes a kernel well formed, checked before any emitter sees it:
 * <ul>
 *   <li>names: parameters, local arrays and variables are distinct from each other and from the names in scope; a
 *       name is declared before it is used; a loop index is not assigned;</li>
 *   <li>types: each operation as its {@link Prim} row says; indices are int, conditions bool, a variable keeps its
 *       type, a store stores the array's value type ({@link KType#value});</li>
 *   <li>memory: loads from buffers and arrays only, stores to writable buffers and arrays only, atomic adds to int or
 *       float buffers and local arrays; local arrays fit in 32 KiB, the least any OpenCL device has;</li>
 *   <li>barriers: only where every work-item of a work-group arrives alike, that is, not under a condition or loop
 *       bound that may differ between them (one that depends on {@code local_id} or {@code global_id}, directly or
 *       through variables, loads (a load from an array private to each work-item is divergent), or assignments under
 *       such control). A barrier some work-items skip hangs or
 *       corrupts the group on real devices; this is the check that keeps it out.</li>
 * </ul>
 */
public final class KirVerifier {
    /** The local memory every OpenCL 1.2 device provides at least. */
    public static final int LOCAL_BYTES = 32 * 1024;

    private final Kernel kernel;
    private final List<String> problems = new ArrayList<>();
    private final Map<String, KType> buffers = new HashMap<>();
    private final Set<String> writable = new HashSet<>();
    /** Arrays private to each work-item: what they hold differs between work-items. */
    private final Set<String> privateArrays = new HashSet<>();
    /** Variables whose value may differ between work-items of a group (computed to a fixed point). */
    private final Set<String> divergent = new HashSet<>();
    private boolean changed;

    private KirVerifier(Kernel kernel) {
        this.kernel = kernel;
    }

    /** Verifies every kernel; the first kernel with problems throws, all its problems listed. */
    public static void verify(KirModule m) {
        Set<String> names = new HashSet<>();
        for (Kernel k : m.kernels()) {
            if (!names.add(k.name())) throw new KirException("kernel " + k.name() + ": defined twice");
            verify(k);
        }
    }

    public static void verify(Kernel k) {
        List<String> p = problems(k);
        if (!p.isEmpty()) throw new KirException("kernel " + k.name() + ": " + String.join("; ", p));
    }

    public static List<String> problems(Kernel k) {
        KirVerifier v = new KirVerifier(k);
        v.run();
        return v.problems;
    }

    private void run() {
        if (!kernel.name().matches("[A-Za-z_][A-Za-z0-9_]*")) problems.add("the name " + kernel.name() + " is not an identifier");
        if (kernel.groupSize() < 0) problems.add("a negative work-group size");
        Map<String, KType> scope = new HashMap<>();
        Set<String> readOnly = new HashSet<>();
        for (Kernel.Param p : kernel.params()) {
            if (declared(p.name(), scope)) continue;
            switch (p) {
                case Kernel.BufferParam b -> {
                    buffers.put(b.name(), b.elem());
                    if (b.writable()) writable.add(b.name());
                    if (b.elem() == KType.BOOL) problems.add("buffer " + b.name() + " of bool");
                }
                case Kernel.ScalarParam s -> {
                    if (s.type() != KType.INT && !s.type().real()) problems.add("parameter " + s.name() + " is " + s.type().text + ", not int, float or double");
                    scope.put(s.name(), s.type());
                    readOnly.add(s.name());
                }
            }
        }
        long localBytes = 0;
        for (Kernel.LocalArray l : kernel.locals()) {
            if (declared(l.name(), scope)) continue;
            if (l.size() <= 0) problems.add("local array " + l.name() + " of " + l.size() + " elements");
            if (l.elem() == KType.BOOL) problems.add("local array " + l.name() + " of bool");
            buffers.put(l.name(), l.elem());
            writable.add(l.name());
            if (l.shared()) localBytes += (long) l.size() * l.elem().bytes();
            else privateArrays.add(l.name());
        }
        if (localBytes > LOCAL_BYTES) problems.add("local arrays take " + localBytes + " bytes, more than the " + LOCAL_BYTES + " every device has");
        // divergence to a fixed point: variables assigned in a loop may become divergent after their first read
        do {
            changed = false;
            int before = problems.size();
            block(kernel.body(), new HashMap<>(scope), new HashSet<>(readOnly), false, false);
            if (changed) problems.subList(before, problems.size()).clear();
        } while (changed);
    }

    /** Words of C, OpenCL C or CUDA C a name may not be (the emitters write names as they are). */
    private static final Set<String> RESERVED = Set.of("auto", "bool", "break", "case", "char", "const", "constant", "continue", "default",
            "do", "double", "else", "enum", "extern", "float", "for", "global", "goto", "half", "if", "image2d_t", "inline", "int",
            "kernel", "local", "long", "private", "register", "restrict", "return", "sampler_t", "short", "signed", "sizeof",
            "static", "struct", "switch", "typedef", "uchar", "uint", "ulong", "union", "unsigned", "ushort", "void", "volatile",
            "while", "true", "false", "threadIdx", "blockIdx", "blockDim", "gridDim", "INFINITY", "NAN");

    private boolean declared(String name, Map<String, KType> scope) {
        if (RESERVED.contains(name) || name.startsWith("kvpc_") || name.startsWith("__") || !name.matches("[A-Za-z_][A-Za-z0-9_]*")) {
            problems.add(name + " is not a name a kernel may use (a word of C or its dialects, or reserved)");
            return true;
        }
        if (scope.containsKey(name) || buffers.containsKey(name)) {
            problems.add(name + " is declared twice");
            return true;
        }
        return false;
    }

    /** @param divergentControl whether work-items of a group may disagree on reaching this block */
    private void block(List<Stmt> body, Map<String, KType> scope, Set<String> readOnly, boolean divergentControl, boolean inLoop) {
        for (Stmt s : body) {
            switch (s) {
                case Stmt.Let l -> {
                    KType t = type(l.init(), scope);
                    if (t != null && t != l.type()) problems.add("let " + l.name() + ": " + l.type().text + " initialised with " + t.text);
                    if (l.type() != KType.INT && !l.type().real() && l.type() != KType.BOOL) problems.add("let " + l.name() + " of " + l.type().text);
                    if (!declared(l.name(), scope)) scope.put(l.name(), l.type());
                    if (divergentControl || divergent(l.init())) mark(l.name());
                }
                case Stmt.Assign a -> {
                    KType v = scope.get(a.name());
                    if (v == null) problems.add("assignment to " + a.name() + ", not a variable in scope");
                    else if (readOnly.contains(a.name())) problems.add("assignment to " + a.name() + ", which is read-only");
                    KType t = type(a.value(), scope);
                    if (v != null && t != null && t != v) problems.add(a.name() + " is " + v.text + ", assigned " + t.text);
                    if (divergentControl || divergent(a.value())) mark(a.name());
                }
                case Stmt.Store st -> store(st.array(), st.index(), st.value(), scope, false);
                case Stmt.AtomicAdd at -> store(at.array(), at.index(), at.value(), scope, true);
                case Stmt.Barrier b -> {
                    if (divergentControl) problems.add("a barrier under control flow that work-items of a group may take differently");
                }
                case Stmt.For f -> {
                    for (Expr e : List.of(f.from(), f.to(), f.step())) expectType(e, KType.INT, "a loop bound", scope);
                    Map<String, KType> inner = new HashMap<>(scope);
                    Set<String> innerRo = new HashSet<>(readOnly);
                    if (!declared(f.var(), inner)) {
                        inner.put(f.var(), KType.INT);
                        innerRo.add(f.var());
                    }
                    boolean d = divergentControl || divergent(f.from()) || divergent(f.to()) || divergent(f.step());
                    if (d) mark(f.var());
                    block(f.body(), inner, innerRo, d, true);
                }
                case Stmt.If i -> {
                    expectType(i.cond(), KType.BOOL, "a condition", scope);
                    boolean d = divergentControl || divergent(i.cond());
                    block(i.then(), new HashMap<>(scope), readOnly, d, inLoop);
                    block(i.otherwise(), new HashMap<>(scope), readOnly, d, inLoop);
                }
            }
        }
    }

    private void mark(String name) {
        if (divergent.add(name)) changed = true;
    }

    private void store(String array, Expr index, Expr value, Map<String, KType> scope, boolean atomic) {
        KType elem = buffers.get(array);
        expectType(index, KType.INT, "an index", scope);
        KType t = type(value, scope);
        if (elem == null) {
            problems.add((atomic ? "atomic add to " : "store to ") + array + ", not a buffer or local array");
            return;
        }
        if (!writable.contains(array)) problems.add((atomic ? "atomic add to " : "store to ") + array + ", a read-only buffer");
        if (atomic && elem != KType.INT && elem != KType.FLOAT) problems.add("atomic add to " + array + " of " + elem.text);
        if (atomic && privateArrays.contains(array)) problems.add("atomic add to " + array + ", an array private to each work-item");
        if (t != null && t != elem.value()) problems.add("store of " + t.text + " to " + array + " of " + elem.text);
    }

    private void expectType(Expr e, KType want, String what, Map<String, KType> scope) {
        KType t = type(e, scope);
        if (t != null && t != want) problems.add(what + " is " + t.text + ", not " + want.text + ": " + KirText.expr(e));
    }

    /** The expression's type, or null after reporting why it has none. */
    private KType type(Expr e, Map<String, KType> scope) {
        return switch (e) {
            case Expr.Lit l -> l.type();
            case Expr.Ref r -> {
                KType t = scope.get(r.name());
                if (t == null) problems.add(r.name() + " is not declared here");
                yield t;
            }
            case Expr.Id id -> KType.INT;
            case Expr.Load ld -> {
                KType elem = buffers.get(ld.array());
                expectType(ld.index(), KType.INT, "an index", scope);
                if (elem == null) problems.add(ld.array() + " is not a buffer or local array");
                yield elem == null ? null : elem.value();
            }
            case Expr.Call c -> {
                List<KType> args = new ArrayList<>();
                for (Expr a : c.args()) args.add(type(a, scope));
                if (args.contains(null)) yield null;
                KType t = c.prim().result(args);
                if (t == null) problems.add(c.prim().text + " does not take " + args.stream().map(x -> x.text).toList() + ": " + KirText.expr(e));
                yield t;
            }
        };
    }

    private boolean divergent(Expr e) {
        return switch (e) {
            case Expr.Lit l -> false;
            case Expr.Ref r -> divergent.contains(r.name());
            case Expr.Id id -> id.fn().divergent();
            case Expr.Load ld -> privateArrays.contains(ld.array()) || divergent(ld.index());
            case Expr.Call c -> c.args().stream().anyMatch(this::divergent);
        };
    }
}
