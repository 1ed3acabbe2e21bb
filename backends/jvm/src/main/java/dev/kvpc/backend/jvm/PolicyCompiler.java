package dev.kvpc.backend.jvm;

import dev.kvpc.ir.Axis;
import dev.kvpc.ir.Instr;
import dev.kvpc.ir.Op;
import dev.kvpc.ir.Ty;
import dev.kvpc.ir.loop.Loop;
import dev.kvpc.ir.loop.Loop.*;
import dev.kvpc.runtime.policy.CompiledLaneClass;
import dev.kvpc.runtime.policy.LaneContext;
import org.objectweb.asm.ClassWriter;
import org.objectweb.asm.Label;
import org.objectweb.asm.MethodVisitor;
import org.objectweb.asm.Type;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.objectweb.asm.Opcodes.*;

/**
 * Compiles one lane class of a policy, as loop IR, to a class implementing the runtime's {@link CompiledLaneClass}.
 * Each kernel becomes a static method over {@code double[]} buffers: loop nests become JVM loops, scalar
 * expressions straight-line double arithmetic in exactly the interpreter's order (so sums, means and scores agree
 * bit for bit), set primitives and effects calls to the {@link LaneContext}. After a keep, evict or merge the
 * extents are read again and every buffer over tokens still to be read is re-indexed to the surviving entries.
 *
 * <p>Dispatch over IR nodes is a pattern-matching switch here; the IR holds no backend code. The class's source
 * file and each handler kernel's line-number table name the {@code .kvp} file and the line of the handler
 * ({@code on ...} or {@code every ...}) it was compiled from, so a stack trace through policy code points there.
 */
public final class PolicyCompiler {
    static final String ITF = Type.getInternalName(CompiledLaneClass.class);
    static final String CTX = Type.getInternalName(LaneContext.class);
    static final String CTX_DESC = "L" + CTX + ";";
    /** The descriptor of each {@link LaneContext} method, by name. */
    static final Map<String, String> CTX_METHODS = new HashMap<>();

    static {
        for (java.lang.reflect.Method m : LaneContext.class.getMethods()) {
            if (CTX_METHODS.put(m.getName(), Type.getMethodDescriptor(m)) != null) throw new IllegalStateException("LaneContext overloads " + m.getName());
        }
    }
    private static final String KERNEL_DESC = "(" + CTX_DESC + ")[D";

    private final Loop.Program program;
    private final String className;
    private final String source;
    /** The vector constants the kernels read (channel tables' rows), each a static final field of the class. */
    private final Map<Op.Vector, String> vectors = new LinkedHashMap<>();

    private PolicyCompiler(Loop.Program program, String className, String source) {
        this.program = program;
        this.className = className;
        this.source = source;
    }

    /**
     * The class file of a compiled lane class named {@code className} (internal form, {@code kvpc/gen/H2o_0});
     * {@code source} names the {@code .kvp} file in stack traces.
     */
    public static byte[] classFile(Loop.Program program, String className, String source) {
        return new PolicyCompiler(program, className, source).emit();
    }

    private byte[] emit() {
        ClassWriter cw = new ClassWriter(ClassWriter.COMPUTE_FRAMES | ClassWriter.COMPUTE_MAXS) {
            @Override
            protected String getCommonSuperClass(String a, String b) {
                return "java/lang/Object";
            }
        };
        cw.visit(V21, ACC_PUBLIC | ACC_FINAL | ACC_SUPER, className, null, "java/lang/Object", new String[] {ITF});
        cw.visitSource(sourceFile(), null);
        MethodVisitor init = cw.visitMethod(ACC_PUBLIC, "<init>", "()V", null, null);
        init.visitCode();
        init.visitVarInsn(ALOAD, 0);
        init.visitMethodInsn(INVOKESPECIAL, "java/lang/Object", "<init>", "()V", false);
        init.visitInsn(RETURN);
        init.visitMaxs(0, 0);
        init.visitEnd();

        MethodVisitor pol = cw.visitMethod(ACC_PUBLIC, "policy", "()Ljava/lang/String;", null, null);
        pol.visitCode();
        pol.visitLdcInsn(program.policy());
        pol.visitInsn(ARETURN);
        pol.visitMaxs(0, 0);
        pol.visitEnd();

        List<Kernel> ks = program.kernels();
        MethodVisitor names = cw.visitMethod(ACC_PUBLIC, "kernels", "()[Ljava/lang/String;", null, null);
        names.visitCode();
        pushInt(names, ks.size());
        names.visitTypeInsn(ANEWARRAY, "java/lang/String");
        for (int i = 0; i < ks.size(); i++) {
            names.visitInsn(DUP);
            pushInt(names, i);
            names.visitLdcInsn(ks.get(i).name());
            names.visitInsn(AASTORE);
        }
        names.visitInsn(ARETURN);
        names.visitMaxs(0, 0);
        names.visitEnd();

        MethodVisitor run = cw.visitMethod(ACC_PUBLIC, "run", "(I" + CTX_DESC + ")[D", null, null);
        run.visitCode();
        Label bad = new Label();
        Label[] cases = new Label[ks.size()];
        for (int i = 0; i < cases.length; i++) cases[i] = new Label();
        run.visitVarInsn(ILOAD, 1);
        if (cases.length > 0) run.visitTableSwitchInsn(0, cases.length - 1, bad, cases);
        for (int i = 0; i < cases.length; i++) {
            run.visitLabel(cases[i]);
            run.visitVarInsn(ALOAD, 2);
            run.visitMethodInsn(INVOKESTATIC, className, methodName(i), KERNEL_DESC, false);
            run.visitInsn(ARETURN);
        }
        run.visitLabel(bad);
        run.visitTypeInsn(NEW, "java/lang/IllegalArgumentException");
        run.visitInsn(DUP);
        run.visitLdcInsn("no kernel with this index in " + program.policy());
        run.visitMethodInsn(INVOKESPECIAL, "java/lang/IllegalArgumentException", "<init>", "(Ljava/lang/String;)V", false);
        run.visitInsn(ATHROW);
        run.visitMaxs(0, 0);
        run.visitEnd();

        for (int i = 0; i < ks.size(); i++) {
            MethodVisitor mv = cw.visitMethod(ACC_PRIVATE | ACC_STATIC, methodName(i), KERNEL_DESC, null, null);
            mv.visitCode();
            new Body(mv, ks.get(i)).emit();
            mv.visitMaxs(0, 0);
            mv.visitEnd();
        }
        helpers(cw);
        vectorFields(cw);
        cw.visitEnd();
        return cw.toByteArray();
    }

    /** The static final fields of the vector constants, filled once when the class initialises. */
    private void vectorFields(ClassWriter cw) {
        if (vectors.isEmpty()) return;
        MethodVisitor mv = cw.visitMethod(ACC_STATIC, "<clinit>", "()V", null, null);
        mv.visitCode();
        for (Map.Entry<Op.Vector, String> e : vectors.entrySet()) {
            cw.visitField(ACC_PRIVATE | ACC_STATIC | ACC_FINAL, e.getValue(), "[D", null, null).visitEnd();
            Op.Vector v = e.getKey();
            pushInt(mv, v.size());
            mv.visitIntInsn(NEWARRAY, T_DOUBLE);
            for (int i = 0; i < v.size(); i++) {
                if (v.at(i) == 0 && Double.doubleToRawLongBits(v.at(i)) == 0) continue;
                mv.visitInsn(DUP);
                pushInt(mv, i);
                mv.visitLdcInsn(v.at(i));
                mv.visitInsn(DASTORE);
            }
            mv.visitFieldInsn(PUTSTATIC, className, e.getValue(), "[D");
        }
        mv.visitInsn(RETURN);
        mv.visitMaxs(0, 0);
        mv.visitEnd();
    }

    /** The {@code .kvp} file the handlers come from (their origin), else the file compiled. */
    private String sourceFile() {
        for (Kernel k : program.kernels()) {
            if (k.origin() != null && k.origin().lastIndexOf(':') > 0) return k.origin().substring(0, k.origin().lastIndexOf(':'));
        }
        return source;
    }

    /** The source line of a kernel's handler, or -1. */
    static int originLine(Kernel k) {
        if (k.origin() == null) return -1;
        try {
            return Integer.parseInt(k.origin().substring(k.origin().lastIndexOf(':') + 1));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** Method names say which kernel they are ({@code handler1_overflow$3}), so stack traces read as the policy. */
    String methodName(int i) {
        return program.kernels().get(i).name().replaceAll("[^A-Za-z0-9]+", "_") + "$" + i;
    }

    private static void pushInt(MethodVisitor mv, int v) {
        if (v >= -1 && v <= 5) mv.visitInsn(ICONST_0 + v);
        else if (v >= Byte.MIN_VALUE && v <= Byte.MAX_VALUE) mv.visitIntInsn(BIPUSH, v);
        else if (v >= Short.MIN_VALUE && v <= Short.MAX_VALUE) mv.visitIntInsn(SIPUSH, v);
        else mv.visitLdcInsn(v);
    }

    // ------------------------------------------------------------------------------------------- static helpers

    /** Small pure helpers the kernels call for the operations without one JVM instruction (the JIT inlines them). */
    private void helpers(ClassWriter cw) {
        // mod(a, b): b == 0 ? NaN : a % b
        MethodVisitor mv = cw.visitMethod(ACC_PRIVATE | ACC_STATIC, "mod", "(DD)D", null, null);
        mv.visitCode();
        Label nz = new Label();
        mv.visitVarInsn(DLOAD, 2);
        mv.visitInsn(DCONST_0);
        mv.visitInsn(DCMPL);
        mv.visitJumpInsn(IFNE, nz);
        mv.visitLdcInsn(Double.NaN);
        mv.visitInsn(DRETURN);
        mv.visitLabel(nz);
        mv.visitVarInsn(DLOAD, 0);
        mv.visitVarInsn(DLOAD, 2);
        mv.visitInsn(DREM);
        mv.visitInsn(DRETURN);
        mv.visitMaxs(0, 0);
        mv.visitEnd();
        // comparisons: 1.0 or 0.0
        for (Op.Fn2 f : Op.Fn2.values()) {
            if (!f.comparison()) continue;
            mv = cw.visitMethod(ACC_PRIVATE | ACC_STATIC, f.word(), "(DD)D", null, null);
            mv.visitCode();
            Label no = new Label();
            mv.visitVarInsn(DLOAD, 0);
            mv.visitVarInsn(DLOAD, 2);
            // DCMPG for < and <= (NaN compares greater: false), DCMPL for > and >= (NaN compares less: false)
            mv.visitInsn(f == Op.Fn2.LT || f == Op.Fn2.LE ? DCMPG : DCMPL);
            mv.visitJumpInsn(switch (f) {
                case LT -> IFGE;
                case LE -> IFGT;
                case GT -> IFLE;
                case GE -> IFLT;
                case EQ -> IFNE;
                case NE -> IFEQ;
                default -> throw new IllegalStateException();
            }, no);
            mv.visitInsn(DCONST_1);
            mv.visitInsn(DRETURN);
            mv.visitLabel(no);
            mv.visitInsn(DCONST_0);
            mv.visitInsn(DRETURN);
            mv.visitMaxs(0, 0);
            mv.visitEnd();
        }
        // truth(x): x != 0 (NaN is true, as in the interpreter)
        for (String name : List.of("and", "or")) {
            mv = cw.visitMethod(ACC_PRIVATE | ACC_STATIC, name, "(DD)D", null, null);
            mv.visitCode();
            Label t = new Label(), f = new Label();
            mv.visitVarInsn(DLOAD, 0);
            mv.visitInsn(DCONST_0);
            mv.visitInsn(DCMPL);
            if (name.equals("and")) {
                mv.visitJumpInsn(IFEQ, f);
                mv.visitVarInsn(DLOAD, 2);
                mv.visitInsn(DCONST_0);
                mv.visitInsn(DCMPL);
                mv.visitJumpInsn(IFEQ, f);
                mv.visitInsn(DCONST_1);
                mv.visitInsn(DRETURN);
                mv.visitLabel(f);
                mv.visitInsn(DCONST_0);
                mv.visitInsn(DRETURN);
            } else {
                mv.visitJumpInsn(IFNE, t);
                mv.visitVarInsn(DLOAD, 2);
                mv.visitInsn(DCONST_0);
                mv.visitInsn(DCMPL);
                mv.visitJumpInsn(IFNE, t);
                mv.visitInsn(DCONST_0);
                mv.visitInsn(DRETURN);
                mv.visitLabel(t);
                mv.visitInsn(DCONST_1);
                mv.visitInsn(DRETURN);
            }
            mv.visitMaxs(0, 0);
            mv.visitEnd();
        }
        // not(x): x == 0 ? 1 : 0
        mv = cw.visitMethod(ACC_PRIVATE | ACC_STATIC, "not", "(D)D", null, null);
        mv.visitCode();
        Label nz2 = new Label();
        mv.visitVarInsn(DLOAD, 0);
        mv.visitInsn(DCONST_0);
        mv.visitInsn(DCMPL);
        mv.visitJumpInsn(IFNE, nz2);
        mv.visitInsn(DCONST_1);
        mv.visitInsn(DRETURN);
        mv.visitLabel(nz2);
        mv.visitInsn(DCONST_0);
        mv.visitInsn(DRETURN);
        mv.visitMaxs(0, 0);
        mv.visitEnd();
        // sigmoid(x) = 1 / (1 + exp(-x))
        mv = cw.visitMethod(ACC_PRIVATE | ACC_STATIC, "sigmoid", "(D)D", null, null);
        mv.visitCode();
        mv.visitInsn(DCONST_1);
        mv.visitInsn(DCONST_1);
        mv.visitVarInsn(DLOAD, 0);
        mv.visitInsn(DNEG);
        mv.visitMethodInsn(INVOKESTATIC, "java/lang/Math", "exp", "(D)D", false);
        mv.visitInsn(DADD);
        mv.visitInsn(DDIV);
        mv.visitInsn(DRETURN);
        mv.visitMaxs(0, 0);
        mv.visitEnd();
    }

    // ------------------------------------------------------------------------------------------- kernel bodies

    static Axis axisOf(Dim d) {
        if (d.symbol() == null) return null;
        for (Axis a : Axis.values()) if (dev.kvpc.ir.loop.LoopLowering.dim(a).symbol().equals(d.symbol())) return a;
        return null;
    }

    /** One kernel's method. Local 0 is the context. */
    private final class Body {
        private final MethodVisitor mv;
        private final Kernel kernel;
        private int next = 1;
        /** Buffer id -> local holding its double[] (tensors) or its handle (sets). */
        private final Map<Integer, Integer> local = new HashMap<>();
        /** Buffer id -> local holding the epoch it was computed at (buffers over tokens). */
        private final Map<Integer, Integer> epochLocal = new HashMap<>();
        private final Map<Integer, List<Dim>> dims = new HashMap<>();
        private final Map<Integer, List<Axis>> axes = new HashMap<>();
        private final Map<Integer, Ty.Elem> elems = new HashMap<>();
        private final Set<Integer> sets = new LinkedHashSet<>();
        /** Extent symbol -> int local, reloaded at the start and after every change of the entries. */
        private final Map<String, Integer> extents = new LinkedHashMap<>();
        /** Loop variable scopes. */
        private final List<Map<String, Integer>> vars = new ArrayList<>();
        /** Statement order: buffer id -> index of its definition and of its last read. */
        private final Map<Integer, Integer> defAt = new HashMap<>(), lastUse = new HashMap<>();
        private final Map<Stmt, Integer> order = new java.util.IdentityHashMap<>();
        /** How many statements read each value. */
        private final Map<Integer, Integer> useCount = new HashMap<>();
        private int counter;

        Body(MethodVisitor mv, Kernel kernel) {
            this.mv = mv;
            this.kernel = kernel;
        }

        void emit() {
            scan(kernel.body());
            if (kernel.result() >= 0) lastUse.merge(kernel.result(), Integer.MAX_VALUE, Math::max);
            collectExtents(kernel.body());
            // every buffer local starts null so that re-indexing after an effect is defined on every path
            for (int id : new java.util.TreeSet<>(allIds(kernel.body()))) {
                int l = next++;
                local.put(id, l);
                mv.visitInsn(ACONST_NULL);
                mv.visitVarInsn(ASTORE, l);
                if (overTokens(id) && !sets.contains(id)) {
                    int e = next++;
                    epochLocal.put(id, e);
                    mv.visitInsn(ICONST_0);
                    mv.visitVarInsn(ISTORE, e);
                }
            }
            for (String sym : extents.keySet()) extents.put(sym, next++);
            int line = originLine(kernel);
            if (line > 0) {
                // the kernel is one handler of the source: its code maps to the handler's line
                Label l = new Label();
                mv.visitLabel(l);
                mv.visitLineNumber(line, l);
            }
            reloadExtents();
            block(kernel.body());
            if (kernel.result() >= 0) {
                mv.visitVarInsn(ALOAD, local.get(kernel.result()));
            } else {
                mv.visitInsn(ACONST_NULL);
            }
            mv.visitInsn(ARETURN);
        }

        // ---- analysis

        private void scan(List<Stmt> body) {
            for (Stmt s : body) {
                int at = counter++;
                order.put(s, at);
                switch (s) {
                    case Alloc a -> {
                        defAt.putIfAbsent(a.id(), at);
                        dims.put(a.id(), a.dims());
                        List<Axis> ax = new ArrayList<>();
                        for (Dim d : a.dims()) {
                            Axis x = axisOf(d);
                            if (x == null) throw new UnsupportedOperationException("buffer %" + a.id() + " has a constant extent " + d.show());
                            ax.add(x);
                        }
                        axes.put(a.id(), ax);
                        elems.put(a.id(), a.elem());
                    }
                    case Bind b -> {
                        defAt.putIfAbsent(b.id(), at);
                        typed(b.id(), b.type());
                    }
                    case SetPrim p -> {
                        defAt.putIfAbsent(p.id(), at);
                        typed(p.id(), p.type());
                        for (int o : p.op().operands()) use(o, at);
                    }
                    case For f -> {
                        uses(f.from(), at);
                        uses(f.to(), at);
                        scan(f.body());
                    }
                    case Assign a -> {
                        for (Expr e : a.index()) uses(e, at);
                        uses(a.value(), at);
                    }
                    case Accumulate a -> {
                        for (Expr e : a.index()) uses(e, at);
                        uses(a.value(), at);
                        use(a.buf(), at);
                    }
                    case Effect e -> {
                        for (int o : effectOperands(e.effect())) use(o, at);
                    }
                    case Loop.If f -> {
                        uses(f.cond(), at);
                        scan(f.then());
                        scan(f.otherwise());
                    }
                }
            }
        }

        private void typed(int id, Ty t) {
            switch (t) {
                case Ty.Tensor tt -> {
                    axes.put(id, tt.axes());
                    elems.put(id, tt.elem());
                    List<Dim> ds = new ArrayList<>();
                    for (Axis a : tt.axes()) ds.add(dev.kvpc.ir.loop.LoopLowering.dim(a));
                    dims.put(id, ds);
                }
                case Ty.SetTy s -> sets.add(id);
                default -> throw new UnsupportedOperationException("value of type " + t);
            }
        }

        private void use(int id, int at) {
            lastUse.merge(id, at, Math::max);
            useCount.merge(id, 1, Integer::sum);
        }

        private void uses(Expr e, int at) {
            switch (e) {
                case Load l -> {
                    use(l.buf(), at);
                    for (Expr i : l.index()) uses(i, at);
                }
                case Un u -> uses(u.x(), at);
                case Bin b -> {
                    uses(b.a(), at);
                    uses(b.b(), at);
                }
                case Loop.Choose c -> {
                    uses(c.cond(), at);
                    uses(c.a(), at);
                    uses(c.b(), at);
                }
                default -> {
                }
            }
        }

        private Set<Integer> allIds(List<Stmt> body) {
            Set<Integer> out = new LinkedHashSet<>();
            for (Stmt s : body) {
                switch (s) {
                    case Alloc a -> out.add(a.id());
                    case Bind b -> out.add(b.id());
                    case SetPrim p -> out.add(p.id());
                    case For f -> out.addAll(allIds(f.body()));
                    case Loop.If f -> {
                        out.addAll(allIds(f.then()));
                        out.addAll(allIds(f.otherwise()));
                    }
                    default -> {
                    }
                }
            }
            return out;
        }

        private void collectExtents(List<Stmt> body) {
            for (Stmt s : body) {
                switch (s) {
                    case Alloc a -> a.dims().forEach(this::extentOf);
                    case Bind b -> {
                        if (b.type() instanceof Ty.Tensor t) t.axes().forEach(x -> extentOf(dev.kvpc.ir.loop.LoopLowering.dim(x)));
                    }
                    case SetPrim p -> {
                        if (p.type() instanceof Ty.Tensor t) t.axes().forEach(x -> extentOf(dev.kvpc.ir.loop.LoopLowering.dim(x)));
                    }
                    case For f -> {
                        exprExtents(f.from());
                        exprExtents(f.to());
                        collectExtents(f.body());
                    }
                    case Assign a -> exprExtents(a.value());
                    case Accumulate a -> exprExtents(a.value());
                    case Loop.If f -> {
                        collectExtents(f.then());
                        collectExtents(f.otherwise());
                    }
                    default -> {
                    }
                }
            }
        }

        private void exprExtents(Expr e) {
            switch (e) {
                case Extent x -> extentOf(x.dim());
                case Load l -> l.index().forEach(this::exprExtents);
                case Un u -> exprExtents(u.x());
                case Bin b -> {
                    exprExtents(b.a());
                    exprExtents(b.b());
                }
                case Loop.Choose c -> {
                    exprExtents(c.cond());
                    exprExtents(c.a());
                    exprExtents(c.b());
                }
                default -> {
                }
            }
        }

        private void extentOf(Dim d) {
            if (d.symbol() != null) extents.putIfAbsent(d.symbol(), -1);
        }

        private void reloadExtents() {
            for (var e : extents.entrySet()) {
                mv.visitVarInsn(ALOAD, 0);
                Axis axis = axisOf(Dim.sym(e.getKey()));
                if (axis == null) throw new IllegalStateException("extent " + e.getKey() + " is no axis's length");
                constant(axis);
                ctx("extent");
                mv.visitVarInsn(ISTORE, e.getValue());
            }
        }

        private List<Integer> effectOperands(Instr i) {
            return switch (i) {
                case Instr.Keep k -> List.of(k.set());
                case Instr.Evict k -> List.of(k.set());
                case Instr.Attend k -> List.of(k.set());
                case Instr.Merge m -> m.weight() < 0 ? List.of(m.source(), m.dest()) : List.of(m.source(), m.dest(), m.weight());
                case Instr.Store s -> {
                    List<Integer> l = new ArrayList<>();
                    if (s.bits() >= 0) l.add(s.bits());
                    if (s.group() >= 0) l.add(s.group());
                    if (s.set() >= 0) l.add(s.set());
                    yield l;
                }
                case Instr.StateWrite w -> List.of(w.value());
                default -> throw new UnsupportedOperationException("effect " + i);
            };
        }

        // ---- code

        /** A call of {@link LaneContext}'s method {@code name} (names are unique there), its descriptor its own. */
        private void ctx(String name) {
            mv.visitMethodInsn(INVOKEINTERFACE, CTX, name, CTX_METHODS.get(name), true);
        }

        /** An enum constant of the policy vocabulary, as the argument of a {@link LaneContext} call. */
        private void constant(Enum<?> e) {
            Class<?> c = e.getDeclaringClass();
            mv.visitFieldInsn(GETSTATIC, Type.getInternalName(c), e.name(), Type.getDescriptor(c));
        }

        /** A buffer's axes as {@link LaneContext} takes them: {@link Axis#mask}. */
        private void axesOf(List<Axis> ax) {
            pushInt(mv, Axis.mask(ax));
        }

        private void block(List<Stmt> body) {
            for (int i = 0; i < body.size(); i++) {
                Stmt s = body.get(i), next = i + 1 < body.size() ? body.get(i + 1) : null;
                if (s instanceof Bind b && rankedLater(body, i, b)) {
                    deferred.put(b.id(), b);
                    continue;
                }
                if (s instanceof SetPrim p && p.op() instanceof Op.Rank r && deferred.containsKey(r.score())) {
                    rankBound(deferred.get(r.score()), -1, r, p);
                    continue;
                }
                if (fusedPair(s, next)) {
                    i++;
                    continue;
                }
                stmt(s);
            }
        }

        /** Binds of a state or kernel statistic emitted with the ranking that is their only use. */
        private final Map<Integer, Bind> deferred = new HashMap<>();

        /**
         * Whether bind {@code b} (statement {@code i}) is used only by a ranking (directly, or through a restriction
         * to a set that only the ranking uses) later in the same block, with no effect between: nothing changes the
         * entries or states, so the value read at the ranking is the value the bind would have read.
         */
        private boolean rankedLater(List<Stmt> body, int i, Bind b) {
            if (useCount.getOrDefault(b.id(), 0) != 1 || !(b.source() instanceof Op.StateRead || b.source() instanceof Op.KernelStat)) return false;
            for (int j = i + 1; j < body.size(); j++) {
                if (!(body.get(j) instanceof SetPrim p)) {
                    if (hasEffect(body.get(j))) return false;
                    continue;
                }
                if (p.op() instanceof Op.Rank r && r.score() == b.id()) return true;
                if (p.op() instanceof Op.Within w && w.x() == b.id()) {
                    return useCount.getOrDefault(p.id(), 0) == 1 && j + 1 < body.size() && body.get(j + 1) instanceof SetPrim q
                            && q.op() instanceof Op.Rank r && r.score() == p.id();
                }
            }
            return false;
        }

        private static boolean hasEffect(Stmt s) {
            return switch (s) {
                case Effect e -> true;
                case For f -> f.body().stream().anyMatch(Body::hasEffect);
                case Loop.If f -> f.then().stream().anyMatch(Body::hasEffect) || f.otherwise().stream().anyMatch(Body::hasEffect);
                default -> false;
            };
        }

        /**
         * {@link LaneContext#rankState} or {@link LaneContext#rankKernelStat}: a deferred bind, restricted to
         * {@code set} (-1: none), ranked.
         */
        private void rankBound(Bind b, int set, Op.Rank r, SetPrim p) {
            mv.visitVarInsn(ALOAD, 0);
            boolean state = b.source() instanceof Op.StateRead;
            if (b.source() instanceof Op.StateRead s) mv.visitLdcInsn(s.name());
            else kernelStatSource((Op.KernelStat) b.source());
            axesOf(axes.get(b.id()));
            if (set >= 0) mv.visitVarInsn(ALOAD, local.get(set));
            else mv.visitInsn(ACONST_NULL);
            rankArguments(r, p);
            ctx(state ? "rankState" : "rankKernelStat");
            mv.visitVarInsn(ASTORE, local.get(p.id()));
            stampEpoch(p.id());
        }

        /**
         * A value made only to be consumed by the very next statement, where the context has the pair as one
         * operation ({@link LaneContext#writeStateFrom}, {@link LaneContext#rankWithin}): emits the pair and returns
         * true. Nothing lies between the two, so no effect can change what the value would have held.
         */
        private boolean fusedPair(Stmt s, Stmt next) {
            if (s instanceof Bind b && b.source() instanceof Op.KernelStat k && next instanceof Effect e && e.effect() instanceof Instr.StateWrite w
                    && w.value() == b.id() && useCount.getOrDefault(b.id(), 0) == 1) {
                mv.visitVarInsn(ALOAD, 0);
                mv.visitLdcInsn(w.state());
                constant(w.op());
                kernelStatSource(k);
                axesOf(axes.get(b.id()));
                ctx("writeStateFrom");
                return true;
            }
            if (s instanceof SetPrim p && p.op() instanceof Op.Within w && deferred.containsKey(w.x()) && next instanceof SetPrim q && q.op() instanceof Op.Rank r) {
                rankBound(deferred.get(w.x()), w.set(), r, q);
                return true;
            }
            if (s instanceof SetPrim p && p.op() instanceof Op.Within w && !sets.contains(w.x()) && next instanceof SetPrim q
                    && q.op() instanceof Op.Rank r && r.score() == p.id() && useCount.getOrDefault(p.id(), 0) == 1) {
                mv.visitVarInsn(ALOAD, 0);
                bufAndAxes(w.x());
                mv.visitVarInsn(ALOAD, local.get(w.set()));
                rankArguments(r, q);
                ctx("rankWithin");
                mv.visitVarInsn(ASTORE, local.get(q.id()));
                stampEpoch(q.id());
                return true;
            }
            return false;
        }

        /** A rank's arguments after its score: order, count, floor (-1: none), domain, algorithm. */
        private void rankArguments(Op.Rank r, SetPrim p) {
            mv.visitInsn(r.order() == Op.Order.TOP ? ICONST_1 : ICONST_0);
            scalarLong(r.count());
            if (r.floor() >= 0) scalarLong(r.floor());
            else mv.visitLdcInsn(-1L);
            constant(((Ty.SetTy) p.type()).domain());
            constant(r.algorithm());
        }

        private boolean overTokens(int id) {
            List<Axis> ax = axes.get(id);
            return ax != null && ax.contains(Axis.TOKEN);
        }

        /** After defining a tensor over tokens: remember the epoch it indexes. */
        private void stampEpoch(int id) {
            if (!overTokens(id)) return;
            Integer l = epochLocal.get(id);
            if (l == null) return;
            mv.visitVarInsn(ALOAD, 0);
            ctx("epoch");
            mv.visitVarInsn(ISTORE, l);
        }

        private void stmt(Stmt s) {
            switch (s) {
                case Alloc a -> {
                    pushSize(a.dims());
                    mv.visitIntInsn(NEWARRAY, T_DOUBLE);
                    mv.visitVarInsn(ASTORE, local.get(a.id()));
                    stampEpoch(a.id());
                }
                case Bind b -> {
                    bind(b);
                    mv.visitVarInsn(ASTORE, local.get(b.id()));
                    stampEpoch(b.id());
                }
                case For f when f.body().size() == 1 && f.body().getFirst() instanceof Accumulate a
                        && !mentions(a.index(), f.var()) && !reads(a.value(), a.buf()) -> registerReduction(f, a);
                case For f -> {
                    OpenLoop open = openLoop(f);
                    block(f.body());
                    closeLoop(open);
                }
                case Assign a -> {
                    mv.visitVarInsn(ALOAD, local.get(a.buf()));
                    index(a.buf(), a.index());
                    expr(a.value());
                    if (elems.get(a.buf()) == Ty.Elem.INT && a.value() instanceof Bin b && b.fn() != Op.Fn2.DIV) {
                        mv.visitInsn(D2L);
                        mv.visitInsn(L2D);
                    }
                    mv.visitInsn(DASTORE);
                }
                case Accumulate a -> {
                    mv.visitVarInsn(ALOAD, local.get(a.buf()));
                    index(a.buf(), a.index());
                    mv.visitInsn(DUP2);
                    mv.visitInsn(DALOAD);
                    expr(a.value());
                    fold(a.op());
                    mv.visitInsn(DASTORE);
                }
                case SetPrim p -> setPrim(p);
                case Effect e -> effect(e.effect(), order.get(s));
                case Loop.If f -> {
                    Label no = new Label(), done = new Label();
                    expr(f.cond());
                    mv.visitInsn(DCONST_0);
                    mv.visitInsn(DCMPL);
                    mv.visitJumpInsn(IFEQ, no);
                    block(f.then());
                    mv.visitJumpInsn(GOTO, done);
                    mv.visitLabel(no);
                    block(f.otherwise());
                    mv.visitLabel(done);
                }
            }
        }

        private void pushSize(List<Dim> ds) {
            pushInt(mv, 1);
            for (Dim d : ds) {
                extent(d);
                mv.visitInsn(IMUL);
            }
        }

        private void extent(Dim d) {
            if (d.symbol() == null) pushInt(mv, (int) d.value());
            else mv.visitVarInsn(ILOAD, extents.get(d.symbol()));
        }

        /** Pushes the flat row-major index of {@code index} into buffer {@code id}. */
        /**
         * A loop whose only statement folds values into one cell (the cell's index does not use the loop variable,
         * and the values do not read its buffer): the cell lives in a register for the loop and is stored once after
         * it. The same operations in the same order as folding in memory, so the same bits.
         */
        private void registerReduction(For f, Accumulate a) {
            int acc = next;
            next += 2;
            mv.visitVarInsn(ALOAD, local.get(a.buf()));
            index(a.buf(), a.index());
            mv.visitInsn(DALOAD);
            mv.visitVarInsn(DSTORE, acc);
            OpenLoop open = openLoop(f);
            mv.visitVarInsn(DLOAD, acc);
            expr(a.value());
            fold(a.op());
            mv.visitVarInsn(DSTORE, acc);
            closeLoop(open);
            mv.visitVarInsn(ALOAD, local.get(a.buf()));
            index(a.buf(), a.index());
            mv.visitVarInsn(DLOAD, acc);
            mv.visitInsn(DASTORE);
        }

        /** An open JVM loop: its counter local and its labels. */
        private record OpenLoop(int counter, Label head, Label exit) {}

        /** A loop's bounds into locals and its test; the body follows, then {@link #closeLoop}. */
        private OpenLoop openLoop(For f) {
            int v = next++, end = next++;
            expr(f.from());
            mv.visitInsn(D2I);
            mv.visitVarInsn(ISTORE, v);
            expr(f.to());
            mv.visitInsn(D2I);
            mv.visitVarInsn(ISTORE, end);
            Label head = new Label(), exit = new Label();
            mv.visitLabel(head);
            mv.visitVarInsn(ILOAD, v);
            mv.visitVarInsn(ILOAD, end);
            mv.visitJumpInsn(IF_ICMPGE, exit);
            vars.add(Map.of(f.var(), v));
            return new OpenLoop(v, head, exit);
        }

        private void closeLoop(OpenLoop l) {
            vars.removeLast();
            mv.visitIincInsn(l.counter(), 1);
            mv.visitJumpInsn(GOTO, l.head());
            mv.visitLabel(l.exit());
        }

        /** Folds the value on the stack into the accumulator below it. */
        private void fold(Op.Red op) {
            switch (op) {
                case SUM -> mv.visitInsn(DADD);
                case MAX -> mv.visitMethodInsn(INVOKESTATIC, "java/lang/Math", "max", "(DD)D", false);
                case MIN -> mv.visitMethodInsn(INVOKESTATIC, "java/lang/Math", "min", "(DD)D", false);
                default -> throw new IllegalStateException("accumulation by " + op);
            }
        }

        /** Whether any of {@code es} uses loop variable {@code var}. */
        private static boolean mentions(List<Expr> es, String var) {
            for (Expr e : es) if (mentions(e, var)) return true;
            return false;
        }

        private static boolean mentions(Expr e, String var) {
            return switch (e) {
                case Var v -> v.name().equals(var);
                case Load l -> mentions(l.index(), var);
                case Un u -> mentions(u.x(), var);
                case Bin b -> mentions(b.a(), var) || mentions(b.b(), var);
                case Loop.Choose c -> mentions(c.cond(), var) || mentions(c.a(), var) || mentions(c.b(), var);
                default -> false;
            };
        }

        /** Whether {@code e} loads from buffer {@code buf}. */
        private static boolean reads(Expr e, int buf) {
            return switch (e) {
                case Load l -> l.buf() == buf || l.index().stream().anyMatch(x -> reads(x, buf));
                case Un u -> reads(u.x(), buf);
                case Bin b -> reads(b.a(), buf) || reads(b.b(), buf);
                case Loop.Choose c -> reads(c.cond(), buf) || reads(c.a(), buf) || reads(c.b(), buf);
                default -> false;
            };
        }

        private void index(int id, List<Expr> index) {
            List<Dim> ds = dims.get(id);
            if (ds == null) throw new IllegalStateException("%" + id + " has no shape");
            if (ds.size() != index.size()) throw new IllegalStateException("%" + id + " has " + ds.size() + " axes, indexed by " + index.size());
            if (index.isEmpty()) {
                mv.visitInsn(ICONST_0);
                return;
            }
            intExpr(index.getFirst());
            for (int i = 1; i < index.size(); i++) {
                extent(ds.get(i));
                mv.visitInsn(IMUL);
                intExpr(index.get(i));
                mv.visitInsn(IADD);
            }
        }

        private void intExpr(Expr e) {
            if (e instanceof Var v) {
                mv.visitVarInsn(ILOAD, var(v.name()));
                return;
            }
            expr(e);
            mv.visitInsn(D2I);
        }

        private int var(String name) {
            for (int i = vars.size() - 1; i >= 0; i--) {
                Integer l = vars.get(i).get(name);
                if (l != null) return l;
            }
            throw new IllegalStateException("loop variable " + name + " is not in scope");
        }

        private void expr(Expr e) {
            switch (e) {
                case Const c -> {
                    double v = switch (c.value()) {
                        case Long l -> l;
                        case Double d -> d;
                        case Integer i -> i;
                        case Boolean b -> b ? 1 : 0;
                        default -> throw new UnsupportedOperationException("constant " + c.value());
                    };
                    if (v == 0 && Double.doubleToRawLongBits(v) == 0) mv.visitInsn(DCONST_0);
                    else if (v == 1) mv.visitInsn(DCONST_1);
                    else mv.visitLdcInsn(v);
                }
                case Var v -> {
                    mv.visitVarInsn(ILOAD, var(v.name()));
                    mv.visitInsn(I2D);
                }
                case Extent x -> {
                    extent(x.dim());
                    mv.visitInsn(I2D);
                }
                case Load l -> {
                    mv.visitVarInsn(ALOAD, local.get(l.buf()));
                    index(l.buf(), l.index());
                    mv.visitInsn(DALOAD);
                }
                case Un u -> {
                    expr(u.x());
                    switch (u.fn()) {
                        case NEG -> mv.visitInsn(DNEG);
                        case NOT -> helper("not", "(D)D");
                        case ABS -> math("abs");
                        case EXP -> math("exp");
                        case LOG -> math("log");
                        case SQRT -> math("sqrt");
                        case TANH -> math("tanh");
                        case SIGMOID -> helper("sigmoid", "(D)D");
                        case TO_INT -> {
                            mv.visitInsn(D2L);
                            mv.visitInsn(L2D);
                        }
                        case TO_FLOAT -> {
                        }
                    }
                }
                case Bin b -> {
                    expr(b.a());
                    expr(b.b());
                    switch (b.fn()) {
                        case ADD -> mv.visitInsn(DADD);
                        case SUB -> mv.visitInsn(DSUB);
                        case MUL -> mv.visitInsn(DMUL);
                        case DIV -> mv.visitInsn(DDIV);
                        case MOD -> helper("mod", "(DD)D");
                        case MAX -> mv.visitMethodInsn(INVOKESTATIC, "java/lang/Math", "max", "(DD)D", false);
                        case MIN -> mv.visitMethodInsn(INVOKESTATIC, "java/lang/Math", "min", "(DD)D", false);
                        case AND -> helper("and", "(DD)D");
                        case OR -> helper("or", "(DD)D");
                        case POW -> mv.visitMethodInsn(INVOKESTATIC, "java/lang/Math", "pow", "(DD)D", false);
                        case LT, LE, GT, GE, EQ, NE -> helper(b.fn().word(), "(DD)D");
                    }
                }
                case Loop.Choose c -> {
                    Label no = new Label(), done = new Label();
                    expr(c.cond());
                    mv.visitInsn(DCONST_0);
                    mv.visitInsn(DCMPL);
                    mv.visitJumpInsn(IFEQ, no);
                    expr(c.a());
                    mv.visitJumpInsn(GOTO, done);
                    mv.visitLabel(no);
                    expr(c.b());
                    mv.visitLabel(done);
                }
            }
        }

        private void math(String name) {
            mv.visitMethodInsn(INVOKESTATIC, "java/lang/Math", name, "(D)D", false);
        }

        private void helper(String name, String desc) {
            mv.visitMethodInsn(INVOKESTATIC, className, name, desc, false);
        }

        /** Pushes element 0 of a scalar buffer as a long. */
        private void scalarLong(int id) {
            mv.visitVarInsn(ALOAD, local.get(id));
            mv.visitInsn(ICONST_0);
            mv.visitInsn(DALOAD);
            mv.visitInsn(D2L);
        }

        private void bufAndAxes(int id) {
            mv.visitVarInsn(ALOAD, local.get(id));
            axesOf(axes.get(id));
        }

        /** The runtime's buffer for what a bind reads: a signal, a state or a kernel statistic. */
        private void bind(Bind b) {
            switch (b.source()) {
                case Op.Signal s -> {
                    mv.visitVarInsn(ALOAD, 0);
                    constant(s.signal());
                    axesOf(axes.get(b.id()));
                    ctx("signal");
                }
                case Op.StateRead s -> {
                    mv.visitVarInsn(ALOAD, 0);
                    mv.visitLdcInsn(s.name());
                    axesOf(axes.get(b.id()));
                    ctx("state");
                }
                case Op.KernelStat k -> {
                    mv.visitVarInsn(ALOAD, 0);
                    kernelStatSource(k);
                    axesOf(axes.get(b.id()));
                    ctx("kernelStat");
                }
                case Op.ModelStat m -> {
                    mv.visitVarInsn(ALOAD, 0);
                    constant(m.stat());
                    mv.visitLdcInsn(m.state());
                    axesOf(axes.get(b.id()));
                    ctx("modelStat");
                }
                case Op.Vector v -> mv.visitFieldInsn(GETSTATIC, className, vectors.computeIfAbsent(v, k -> "vector$" + vectors.size()), "[D");
                default -> {
                    // a parameter or table left unspecialised: running it is an error, as the interpreter's is
                    mv.visitTypeInsn(NEW, "java/lang/IllegalStateException");
                    mv.visitInsn(DUP);
                    mv.visitLdcInsn(b.kind() + " " + b.what() + " was not specialised away before compilation");
                    mv.visitMethodInsn(INVOKESPECIAL, "java/lang/IllegalStateException", "<init>", "(Ljava/lang/String;)V", false);
                    mv.visitInsn(ATHROW);
                }
            }
        }

        /** A kernel statistic's signal, reduction and axes reduced over, as {@link LaneContext#kernelStat} takes them. */
        private void kernelStatSource(Op.KernelStat k) {
            constant(k.input());
            constant(k.fn());
            axesOf(k.over());
        }

        private void setPrim(SetPrim p) {
            int id = p.id();
            Op op = p.op();
            switch (op) {
                case Op.Rank r -> {
                    mv.visitVarInsn(ALOAD, 0);
                    bufAndAxes(r.score());
                    rankArguments(r, p);
                    ctx("rank");
                }
                case Op.Range r -> {
                    mv.visitVarInsn(ALOAD, 0);
                    mv.visitInsn(r.end() == Op.End.LAST ? ICONST_1 : ICONST_0);
                    scalarLong(r.count());
                    ctx("range");
                }
                case Op.All a -> {
                    mv.visitVarInsn(ALOAD, 0);
                    ctx("all");
                }
                case Op.Compensation c -> {
                    mv.visitVarInsn(ALOAD, 0);
                    ctx("compensation");
                }
                case Op.Where w -> {
                    mv.visitVarInsn(ALOAD, 0);
                    bufAndAxes(w.pred());
                    ctx("where");
                }
                case Op.Pages pg -> {
                    mv.visitVarInsn(ALOAD, 0);
                    mv.visitVarInsn(ALOAD, local.get(pg.pages()));
                    ctx("pages");
                }
                case Op.SetOp s -> {
                    mv.visitVarInsn(ALOAD, 0);
                    constant(s.fn());
                    mv.visitVarInsn(ALOAD, local.get(s.a()));
                    mv.visitVarInsn(ALOAD, local.get(s.b()));
                    ctx("setOp");
                }
                case Op.Within w -> {
                    mv.visitVarInsn(ALOAD, 0);
                    if (sets.contains(w.x())) {
                        mv.visitVarInsn(ALOAD, local.get(w.x()));
                        mv.visitVarInsn(ALOAD, local.get(w.set()));
                        ctx("withinSet");
                    } else {
                        bufAndAxes(w.x());
                        mv.visitVarInsn(ALOAD, local.get(w.set()));
                        ctx("within");
                    }
                }
                case Op.Quantile q when !q.over().isEmpty() -> {
                    mv.visitVarInsn(ALOAD, 0);
                    bufAndAxes(q.x());
                    axesOf(q.over());
                    mv.visitVarInsn(ALOAD, local.get(q.p()));
                    mv.visitInsn(ICONST_0);
                    mv.visitInsn(DALOAD);
                    ctx("quantileAlong");
                }
                case Op.Quantile q -> {
                    pushInt(mv, 1);
                    mv.visitIntInsn(NEWARRAY, T_DOUBLE);
                    mv.visitInsn(DUP);
                    mv.visitInsn(ICONST_0);
                    mv.visitVarInsn(ALOAD, 0);
                    bufAndAxes(q.x());
                    mv.visitVarInsn(ALOAD, local.get(q.p()));
                    mv.visitInsn(ICONST_0);
                    mv.visitInsn(DALOAD);
                    ctx("quantile");
                    mv.visitInsn(DASTORE);
                }
                case Op.Prim pr -> {
                    int values = pr.operand(Op.Operand.VALUES, 0), set = pr.operand(Op.Operand.SET, 0), rows = pr.operand(Op.Operand.SET, 1);
                    int scalar = pr.operand(Op.Operand.SCALAR, 0);
                    mv.visitVarInsn(ALOAD, 0);
                    constant(pr.fn());
                    if (values >= 0) {
                        bufAndAxes(values);
                    } else {
                        mv.visitInsn(ACONST_NULL);
                        mv.visitInsn(ICONST_0);
                    }
                    if (!pr.fn().setResult()) {
                        if (set >= 0) mv.visitVarInsn(ALOAD, local.get(set));
                        else mv.visitInsn(ACONST_NULL);
                        if (rows >= 0) mv.visitVarInsn(ALOAD, local.get(rows));
                        else mv.visitInsn(ACONST_NULL);
                    }
                    if (scalar >= 0) {
                        mv.visitVarInsn(ALOAD, local.get(scalar));
                        mv.visitInsn(ICONST_0);
                        mv.visitInsn(DALOAD);
                    } else {
                        mv.visitInsn(DCONST_0);
                    }
                    if (pr.fn().setResult()) {
                        ctx("primSet");
                    } else {
                        axesOf(axes.get(id));
                        ctx("prim");
                    }
                }
                case Op.Choose c -> {
                    Label no = new Label(), done = new Label();
                    mv.visitVarInsn(ALOAD, local.get(c.cond()));
                    mv.visitInsn(ICONST_0);
                    mv.visitInsn(DALOAD);
                    mv.visitInsn(DCONST_0);
                    mv.visitInsn(DCMPL);
                    mv.visitJumpInsn(IFEQ, no);
                    mv.visitVarInsn(ALOAD, local.get(c.a()));
                    mv.visitJumpInsn(GOTO, done);
                    mv.visitLabel(no);
                    mv.visitVarInsn(ALOAD, local.get(c.b()));
                    mv.visitLabel(done);
                }
                default -> throw new UnsupportedOperationException("operation " + op + " is not compiled for policies");
            }
            mv.visitVarInsn(ASTORE, local.get(id));
            stampEpoch(id);
        }

        private void effect(Instr i, int at) {
            switch (i) {
                case Instr.Keep k -> setEffect("keep", k.set());
                case Instr.Evict k -> setEffect("evict", k.set());
                case Instr.Attend k -> setEffect("attend", k.set());
                case Instr.Merge m -> {
                    mv.visitVarInsn(ALOAD, 0);
                    mv.visitVarInsn(ALOAD, local.get(m.source()));
                    mv.visitVarInsn(ALOAD, local.get(m.dest()));
                    constant(m.by());
                    if (m.weight() >= 0) {
                        bufAndAxes(m.weight());
                    } else {
                        mv.visitInsn(ACONST_NULL);
                        mv.visitInsn(ICONST_0);
                    }
                    ctx("merge");
                }
                case Instr.Store s -> {
                    mv.visitVarInsn(ALOAD, 0);
                    mv.visitInsn(s.parts().contains(Instr.Part.KEYS) ? ICONST_1 : ICONST_0);
                    mv.visitInsn(s.parts().contains(Instr.Part.VALUES) ? ICONST_1 : ICONST_0);
                    constant(s.format());
                    if (s.bits() >= 0) scalarLong(s.bits());
                    else mv.visitLdcInsn(-1L);
                    if (s.axis() == null) mv.visitInsn(ACONST_NULL);
                    else constant(s.axis());
                    if (s.group() >= 0) scalarLong(s.group());
                    else mv.visitLdcInsn(-1L);
                    constant(s.scope());
                    if (s.set() >= 0) mv.visitVarInsn(ALOAD, local.get(s.set()));
                    else mv.visitInsn(ACONST_NULL);
                    ctx("store");
                }
                case Instr.StateWrite w -> {
                    mv.visitVarInsn(ALOAD, 0);
                    mv.visitLdcInsn(w.state());
                    constant(w.op());
                    bufAndAxes(w.value());
                    ctx("writeState");
                }
                default -> throw new UnsupportedOperationException("effect " + i);
            }
            if (i instanceof Instr.Keep || i instanceof Instr.Evict || i instanceof Instr.Merge) afterEntriesChanged(at);
        }

        private void setEffect(String name, int set) {
            mv.visitVarInsn(ALOAD, 0);
            mv.visitVarInsn(ALOAD, local.get(set));
            ctx(name);
        }

        /** Extents again, and every buffer over tokens defined before {@code at} and read after it re-indexed. */
        private void afterEntriesChanged(int at) {
            reloadExtents();
            for (int id : local.keySet()) {
                if (!overTokens(id) || sets.contains(id)) continue;
                Integer def = defAt.get(id), last = lastUse.get(id);
                if (def == null || last == null || def >= at || last <= at) continue;
                Integer ep = epochLocal.get(id);
                if (ep == null) continue;
                mv.visitVarInsn(ALOAD, 0);
                bufAndAxes(id);
                mv.visitVarInsn(ILOAD, ep);
                ctx("rebase");
                mv.visitVarInsn(ASTORE, local.get(id));
                mv.visitVarInsn(ALOAD, 0);
                ctx("epoch");
                mv.visitVarInsn(ISTORE, ep);
            }
        }
    }
}
