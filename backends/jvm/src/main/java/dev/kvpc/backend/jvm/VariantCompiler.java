package dev.kvpc.backend.jvm;

import dev.kvpc.ir.*;
import dev.kvpc.ir.pass.Fold;
import dev.kvpc.runtime.AttentionVariant;
import org.objectweb.asm.ClassWriter;
import org.objectweb.asm.Label;
import org.objectweb.asm.MethodVisitor;
import org.objectweb.asm.Type;

import java.lang.invoke.MethodHandles;
import java.util.HashMap;
import java.util.Map;

import static org.objectweb.asm.Opcodes.*;

/**
 * Compiles a KVP attention variant to a class implementing the runtime's {@link AttentionVariant}: the logit and the
 * mask become straight-line double arithmetic (with one loop per dot product), in exactly the order of the
 * reference interpreter, so the two agree bit for bit. Dispatch over IR nodes is a pattern-matching switch here;
 * the IR holds no backend code.
 */
public final class VariantCompiler {
    private static final String PACKAGE = "dev/kvpc/backend/jvm/";
    private static final String ITF = Type.getInternalName(AttentionVariant.class);
    private static final String SIG = "([FI[FIIII)";

    private final AttentionIr variant;
    private final LaneShape shape;
    private final Map<String, Object> params = new HashMap<>();

    private VariantCompiler(AttentionIr variant, LaneShape shape) {
        // scale, heads, head_dim, context and slopes as plain operations: their one definition
        this.variant = dev.kvpc.ir.VariantSignals.desugar(variant, shape);
        this.shape = shape;
        for (PolicyIr.Param p : variant.params()) {
            if (p.init() == null) throw new IllegalArgumentException("variant " + variant.name() + " parameter " + p.name() + " has no value");
            Object v = Fold.evaluate(p.init(), new Fold.Lane(shape, 0, 0, params, f -> null));
            if (v == null) throw new IllegalArgumentException("variant parameter " + p.name() + " is not a constant");
            params.put(p.name(), v);
        }
    }

    /** The class file of the compiled variant. */
    public static byte[] classFile(AttentionIr variant, LaneShape shape) {
        return classFile(variant, shape, className(variant));
    }

    /** The class file of the compiled variant, as class {@code internalName} (a policy jar's own package). */
    public static byte[] classFile(AttentionIr variant, LaneShape shape, String internalName) {
        return new VariantCompiler(variant, shape).emit(internalName);
    }

    /** Compiles and defines the variant as a hidden class; returns an instance. */
    public static AttentionVariant compile(AttentionIr variant, LaneShape shape) {
        try {
            var lookup = MethodHandles.lookup().defineHiddenClass(classFile(variant, shape), true);
            return (AttentionVariant) lookup.lookupClass().getDeclaredConstructor().newInstance();
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("compiled variant " + variant.name() + " could not be defined", e);
        }
    }

    static String className(AttentionIr v) {
        return PACKAGE + "Variant_" + v.name().replaceAll("[^A-Za-z0-9_]", "_");
    }

    private byte[] emit(String name) {
        ClassWriter cw = new ClassWriter(ClassWriter.COMPUTE_FRAMES | ClassWriter.COMPUTE_MAXS);
        cw.visit(V21, ACC_PUBLIC | ACC_FINAL | ACC_SUPER, name, null, "java/lang/Object", new String[] {ITF});
        cw.visitSource(variant.name() + ".kvp", null);
        MethodVisitor init = cw.visitMethod(ACC_PUBLIC, "<init>", "()V", null, null);
        init.visitCode();
        init.visitVarInsn(ALOAD, 0);
        init.visitMethodInsn(INVOKESPECIAL, "java/lang/Object", "<init>", "()V", false);
        init.visitInsn(RETURN);
        init.visitMaxs(0, 0);
        init.visitEnd();

        MethodVisitor logit = cw.visitMethod(ACC_PUBLIC, "logit", SIG + "D", null, null);
        logit.visitCode();
        int r = new Body(logit).computation(variant.logits());
        logit.visitVarInsn(DLOAD, r);
        logit.visitInsn(DRETURN);
        logit.visitMaxs(0, 0);
        logit.visitEnd();

        MethodVisitor vis = cw.visitMethod(ACC_PUBLIC, "visible", SIG + "Z", null, null);
        vis.visitCode();
        if (variant.mask() == null) {
            // causal: kpos <= qpos
            Label no = new Label();
            vis.visitVarInsn(ILOAD, 5);
            vis.visitVarInsn(ILOAD, 4);
            vis.visitJumpInsn(IF_ICMPGT, no);
            vis.visitInsn(ICONST_1);
            vis.visitInsn(IRETURN);
            vis.visitLabel(no);
            vis.visitInsn(ICONST_0);
            vis.visitInsn(IRETURN);
        } else {
            int m = new Body(vis).computation(variant.mask());
            Label no = new Label();
            vis.visitVarInsn(DLOAD, m);
            vis.visitInsn(DCONST_0);
            vis.visitInsn(DCMPL);
            vis.visitJumpInsn(IFEQ, no);
            vis.visitInsn(ICONST_1);
            vis.visitInsn(IRETURN);
            vis.visitLabel(no);
            vis.visitInsn(ICONST_0);
            vis.visitInsn(IRETURN);
        }
        vis.visitMaxs(0, 0);
        vis.visitEnd();

        String norm = Type.getInternalName(AttentionVariant.Normalize.class);
        MethodVisitor nm = cw.visitMethod(ACC_PUBLIC, "normalize", "()L" + norm + ";", null, null);
        nm.visitCode();
        nm.visitFieldInsn(GETSTATIC, norm, variant.normalize().name(), "L" + norm + ";");
        nm.visitInsn(ARETURN);
        nm.visitMaxs(0, 0);
        nm.visitEnd();
        cw.visitEnd();
        return cw.toByteArray();
    }

    /** Emits one method body: each definition's value in a double local (q and k stay arrays). */
    private final class Body {
        private final MethodVisitor mv;
        private final Map<Integer, Integer> slot = new HashMap<>();
        /** Values that are the q or k arrays: id -> "q" or "k". */
        private final Map<Integer, String> arrays = new HashMap<>();
        private int next = 8;

        Body(MethodVisitor mv) {
            this.mv = mv;
        }

        int computation(Computation c) {
            int line = 1;
            for (Instr i : c.block().instrs()) {
                if (!(i instanceof Instr.Def d)) throw new IllegalArgumentException("attention variants compute values only");
                Label here = new Label();
                mv.visitLabel(here);
                mv.visitLineNumber(line++, here);
                def(d);
            }
            return local(c.result());
        }

        private int local(int id) {
            Integer s = slot.get(id);
            if (s == null) throw new IllegalStateException("%" + id + " has no value here (an array where a number is needed?)");
            return s;
        }

        private void load(int id) {
            mv.visitVarInsn(DLOAD, local(id));
        }

        private void store(int id) {
            int s = next;
            next += 2;
            slot.put(id, s);
            mv.visitVarInsn(DSTORE, s);
        }

        private void def(Instr.Def d) {
            switch (d.op()) {
                case Op.Const c -> {
                    mv.visitLdcInsn(toDouble(c.value()));
                    store(d.id());
                }
                case Op.Param p -> {
                    Object v = params.get(p.name());
                    if (v == null) throw new IllegalArgumentException("unknown variant parameter " + p.name());
                    mv.visitLdcInsn(toDouble(v));
                    store(d.id());
                }
                case Op.Signal s -> {
                    switch (s.signal()) {
                        case Q, K -> arrays.put(d.id(), s.signal().word());
                        case QPOS -> intArg(4, d.id());
                        case KPOS -> intArg(5, d.id());
                        case HEAD -> intArg(6, d.id());
                        default -> throw new IllegalArgumentException("attention variants cannot read " + s.signal().word());
                    }
                }
                case Op.Dot dot -> dot(d.id(), dot);
                case Op.Map1 m -> {
                    load(m.x());
                    switch (m.fn()) {
                        case NEG -> mv.visitInsn(DNEG);
                        case NOT -> truth(IFNE, true);
                        case ABS -> mv.visitMethodInsn(INVOKESTATIC, "java/lang/Math", "abs", "(D)D", false);
                        case EXP -> mv.visitMethodInsn(INVOKESTATIC, "java/lang/Math", "exp", "(D)D", false);
                        case LOG -> mv.visitMethodInsn(INVOKESTATIC, "java/lang/Math", "log", "(D)D", false);
                        case SQRT -> mv.visitMethodInsn(INVOKESTATIC, "java/lang/Math", "sqrt", "(D)D", false);
                        case TANH -> mv.visitMethodInsn(INVOKESTATIC, "java/lang/Math", "tanh", "(D)D", false);
                        case SIGMOID -> {
                            // 1 / (1 + exp(-x))
                            mv.visitInsn(DNEG);
                            mv.visitMethodInsn(INVOKESTATIC, "java/lang/Math", "exp", "(D)D", false);
                            mv.visitInsn(DCONST_1);
                            mv.visitInsn(DADD);
                            int t = next;
                            next += 2;
                            mv.visitVarInsn(DSTORE, t);
                            mv.visitInsn(DCONST_1);
                            mv.visitVarInsn(DLOAD, t);
                            mv.visitInsn(DDIV);
                        }
                        case TO_INT -> {
                            mv.visitInsn(D2L);
                            mv.visitInsn(L2D);
                        }
                        case TO_FLOAT -> { }
                    }
                    store(d.id());
                }
                case Op.Map2 m -> {
                    load(m.a());
                    load(m.b());
                    switch (m.fn()) {
                        case ADD -> mv.visitInsn(DADD);
                        case SUB -> mv.visitInsn(DSUB);
                        case MUL -> mv.visitInsn(DMUL);
                        case DIV -> mv.visitInsn(DDIV);
                        case MOD -> mv.visitInsn(DREM);
                        case MAX -> mv.visitMethodInsn(INVOKESTATIC, "java/lang/Math", "max", "(DD)D", false);
                        case MIN -> mv.visitMethodInsn(INVOKESTATIC, "java/lang/Math", "min", "(DD)D", false);
                        case POW -> mv.visitMethodInsn(INVOKESTATIC, "java/lang/Math", "pow", "(DD)D", false);
                        // comparisons: NaN compares false (dcmpg for <, <=; dcmpl for >, >=, ==, !=)
                        case LT -> { mv.visitInsn(DCMPG); truth(IFLT, false); }
                        case LE -> { mv.visitInsn(DCMPG); truth(IFLE, false); }
                        case GT -> { mv.visitInsn(DCMPL); truth(IFGT, false); }
                        case GE -> { mv.visitInsn(DCMPL); truth(IFGE, false); }
                        case EQ -> { mv.visitInsn(DCMPL); truth(IFEQ, false); }
                        case NE -> { mv.visitInsn(DCMPL); truth(IFNE, false); }
                        case AND, OR -> {
                            // a != 0 (and|or) b != 0
                            int b = next, a = next + 2;
                            next += 4;
                            mv.visitVarInsn(DSTORE, b);
                            mv.visitVarInsn(DSTORE, a);
                            Label yes = new Label(), no = new Label(), end = new Label();
                            mv.visitVarInsn(DLOAD, a);
                            mv.visitInsn(DCONST_0);
                            mv.visitInsn(DCMPL);
                            if (m.fn() == Op.Fn2.AND) {
                                mv.visitJumpInsn(IFEQ, no);
                            } else {
                                mv.visitJumpInsn(IFNE, yes);
                            }
                            mv.visitVarInsn(DLOAD, b);
                            mv.visitInsn(DCONST_0);
                            mv.visitInsn(DCMPL);
                            mv.visitJumpInsn(IFEQ, no);
                            mv.visitLabel(yes);
                            mv.visitInsn(DCONST_1);
                            mv.visitJumpInsn(GOTO, end);
                            mv.visitLabel(no);
                            mv.visitInsn(DCONST_0);
                            mv.visitLabel(end);
                        }
                    }
                    store(d.id());
                }
                case Op.Choose c -> {
                    Label other = new Label(), end = new Label();
                    load(c.cond());
                    mv.visitInsn(DCONST_0);
                    mv.visitInsn(DCMPL);
                    mv.visitJumpInsn(IFEQ, other);
                    load(c.a());
                    mv.visitJumpInsn(GOTO, end);
                    mv.visitLabel(other);
                    load(c.b());
                    mv.visitLabel(end);
                    store(d.id());
                }
                default -> throw new IllegalArgumentException("attention variants cannot use " + d.op().getClass().getSimpleName());
            }
        }

        private void intArg(int arg, int id) {
            mv.visitVarInsn(ILOAD, arg);
            mv.visitInsn(I2D);
            store(id);
        }

        /** After a compare (int on the stack): 1.0 when {@code jump} holds (or does not, when {@code invert}), else 0.0. */
        private void truth(int jump, boolean invert) {
            Label yes = new Label(), end = new Label();
            if (invert) {
                // NOT: x (a double) on the stack: 1.0 when x == 0
                mv.visitInsn(DCONST_0);
                mv.visitInsn(DCMPL);
                mv.visitJumpInsn(IFEQ, yes);
            } else {
                mv.visitJumpInsn(jump, yes);
            }
            mv.visitInsn(DCONST_0);
            mv.visitJumpInsn(GOTO, end);
            mv.visitLabel(yes);
            mv.visitInsn(DCONST_1);
            mv.visitLabel(end);
        }

        /** sum over channels of (double) q[qOff + i] * k[i], in order. */
        private void dot(int id, Op.Dot dot) {
            String a = arrays.get(dot.a()), b = arrays.get(dot.b());
            if (a == null || b == null) throw new IllegalArgumentException("dot takes q and k in an attention variant");
            int sum = next, i = next + 2;
            next += 3;
            mv.visitInsn(DCONST_0);
            mv.visitVarInsn(DSTORE, sum);
            mv.visitInsn(ICONST_0);
            mv.visitVarInsn(ISTORE, i);
            Label loop = new Label(), done = new Label();
            mv.visitLabel(loop);
            mv.visitVarInsn(ILOAD, i);
            mv.visitLdcInsn(shape.headDim());
            mv.visitJumpInsn(IF_ICMPGE, done);
            element(a, i);
            mv.visitInsn(F2D);
            element(b, i);
            mv.visitInsn(F2D);
            mv.visitInsn(DMUL);
            mv.visitVarInsn(DLOAD, sum);
            mv.visitInsn(DADD);
            mv.visitVarInsn(DSTORE, sum);
            mv.visitIincInsn(i, 1);
            mv.visitJumpInsn(GOTO, loop);
            mv.visitLabel(done);
            mv.visitVarInsn(DLOAD, sum);
            store(id);
        }

        /** Pushes q[qOff + i] or k[i] as a float. */
        private void element(String array, int i) {
            if (array.equals("q")) {
                mv.visitVarInsn(ALOAD, 1);
                mv.visitVarInsn(ILOAD, 2);
                mv.visitVarInsn(ILOAD, i);
                mv.visitInsn(IADD);
            } else {
                mv.visitVarInsn(ALOAD, 3);
                mv.visitVarInsn(ILOAD, i);
            }
            mv.visitInsn(FALOAD);
        }
    }

    private static double toDouble(Object v) {
        return v instanceof Long l ? l : v instanceof Double d ? d : ((Boolean) v ? 1 : 0);
    }
}
