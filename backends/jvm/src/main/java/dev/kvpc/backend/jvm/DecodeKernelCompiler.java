package dev.kvpc.backend.jvm;

import dev.kvpc.runtime.engine.DecodeKernel;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;
import dev.kvpc.runtime.store.StoreLayout;
import org.objectweb.asm.ClassWriter;
import org.objectweb.asm.Label;
import org.objectweb.asm.MethodVisitor;
import org.objectweb.asm.Type;

import java.lang.invoke.MethodHandles;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;

import static org.objectweb.asm.Opcodes.*;

/**
 * Compiles a {@link DecodeKernel} for one head dimension, GQA group size and pair of row formats (keys and values
 * each f32, or int4 quantised per token in groups of channels, the {@code TokenGroupCodec} layout) to a class
 * through ASM. The class reads keys and values where the lane keeps them (its pages, through the slot table), with
 * the head dimension, group, row sizes and offsets as constants.
 *
 * <p><b>Why Vector API calls in the bytecode.</b> HotSpot's C2 compiles calls to {@code jdk.incubator.vector}
 * ({@code FloatVector.fromMemorySegment}, {@code fma}, {@code lane}, {@code convertShape}...) on species that
 * are constants into single SIMD instructions, with no vector objects left; its auto-vectoriser does not vectorise
 * the reductions of a dot product or reads through {@code MemorySegment} accessors in loops like these. So the
 * generated class does what a hand-written Vector API kernel does, and since the head dimension is a constant the
 * channel loop is unrolled at generation time: a row is a fixed sequence of vector loads and FMAs, one key or value
 * load shared by every query head of the group.
 *
 * <p><b>Species and lane counts.</b> The widest float species is that of {@code FloatVector.SPECIES_PREFERRED} on
 * the JVM that compiles (the one that runs the class; 512 bits on AVX-512, 256 on AVX2), read once. A row of f32 is
 * covered by chunks of that width, then by narrower species (halving down to 128 bits) for what is left, then by
 * scalar code for fewer than 4 channels (head dim 72 at 512 bits: 4 chunks of 16, one of 8). An int4 chunk of
 * {@code 2L} channels is {@code L} bytes read as a {@code ByteVector} of {@code L} lanes and widened to two float
 * vectors of {@code L} lanes (low nibbles: even channels, high nibbles: odd channels), so {@code L} is at least 8
 * (the smallest byte species is 64 bits); chunks stay inside one quantisation group, and groups (or their ends) that
 * no vector chunk fits are read by scalar loops. Because a chunk's lanes hold the even channels, then the odd ones,
 * the query is permuted once per call to that order for int4 keys, and for int4 values the weighted sums are
 * accumulated in that order and put back at the end.
 *
 * <p>Without the module {@code jdk.incubator.vector} in the boot layer (a JVM started without
 * {@code --add-modules jdk.incubator.vector}), or when asked, the class is scalar only: plain loops over the
 * channels, the same results up to rounding.
 *
 * <p>Results equal {@link dev.kvpc.runtime.engine.AttentionKernel}'s up to float rounding (sums in another order,
 * fused multiply-adds): the masking, the softmax (exponentials in float, their sum in double) and which entries the
 * column sums get are the same.
 *
 * <p><b>The same bits before and after the JIT.</b> A kernel's first calls run interpreted, through the Vector API's
 * Java code; once C2 compiles it they run as SIMD instructions. The generated code uses only operations whose result
 * both give exactly (loads, FMA, lane-wise arithmetic, rotations, lane reads): a vector's lanes are summed in a
 * fixed tree of rotations and adds rather than by {@code reduceLanes} (whose order is unspecified, and differs between the two), and the softmax's
 * exponentials are a polynomial in lane-wise arithmetic ({@link #vectorExp}) rather than {@code lanewise(EXP)}
 * (whose SIMD code rounds differently). So a run gives the same figures however long the JIT took to step in.
 */
public final class DecodeKernelCompiler {
    private static final String PACKAGE = "dev/kvpc/backend/jvm/";
    private static final String ITF = Type.getInternalName(DecodeKernel.class);
    private static final String ROWS = Type.getInternalName(dev.kvpc.runtime.lane.KernelRows.class);
    private static final String PART = Type.getInternalName(Lane.Part.class);
    private static final String SEG = "java/lang/foreign/MemorySegment";
    private static final String SEG_D = "L" + SEG + ";";
    private static final String FV = "jdk/incubator/vector/FloatVector";
    private static final String FV_D = "L" + FV + ";";
    private static final String BV = "jdk/incubator/vector/ByteVector";
    private static final String VEC = "jdk/incubator/vector/Vector";
    private static final String VEC_D = "L" + VEC + ";";
    private static final String SPECIES_D = "Ljdk/incubator/vector/VectorSpecies;";
    private static final String SHUFFLE = "jdk/incubator/vector/VectorShuffle";
    private static final String SHUFFLE_D = "L" + SHUFFLE + ";";
    private static final String OPS = "jdk/incubator/vector/VectorOperators";
    // the vector exponential (vectorExp): log2(e), 1.5 * 2^23 (adding it rounds to an integer in the low bits), ln 2 in
    // two parts (the first with 9 significant bits, so n * LN2_HI is exact), the polynomial's coefficients (the classic
    // single-precision minimax fit of (e^r - 1 - r) / r^2), and the least exponent given a normal float (below it: 0)
    private static final float LOG2E = 1.44269504088896341f, MAGIC = 12582912f, LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    private static final float[] EXP_POLY = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
    static final float EXP_FLOOR = -87f;
    private static final String ORDER = "java/nio/ByteOrder";
    private static final String ORDER_D = "L" + ORDER + ";";
    private static final String OF_FLOAT_D = "Ljava/lang/foreign/ValueLayout$OfFloat;";
    private static final String OF_INT_D = "Ljava/lang/foreign/ValueLayout$OfInt;";
    private static final String OF_BYTE_D = "Ljava/lang/foreign/ValueLayout$OfByte;";
    /** attend(KernelRows rows, float[] q, int qpos, BitSet attend, float[] out, float[] colSums) */
    private static final String ATTEND_D = "(L" + ROWS + ";[FILjava/util/BitSet;[F[F)V";

    /** Largest group size compiled; larger groups stay on the runtime kernel. */
    public static final int MAX_GROUP = 16;
    /**
     * Most heads whose per-row code is unrolled together; larger groups loop over blocks of heads (each block
     * re-reads the row, from L1), which keeps the method well under HotSpot's 8000-byte limit for compiling it.
     */
    static final int HEAD_BLOCK = 4;

    private static final String VECTOR_MODULE = "jdk.incubator.vector";

    /** Whether the Vector API is in the boot layer, so generated classes may use it. */
    public static boolean vectorApiAvailable() {
        return ModuleLayer.boot().findModule(VECTOR_MODULE).isPresent();
    }

    /** Bits of the preferred float species of this JVM (0 without the Vector API). */
    static int preferredVectorBits() {
        if (!vectorApiAvailable()) return 0;
        try {
            Class<?> fv = Class.forName("jdk.incubator.vector.FloatVector");
            Object species = fv.getField("SPECIES_PREFERRED").get(null);
            // through the public interface: the species' own class is not accessible
            return (Integer) Class.forName("jdk.incubator.vector.VectorSpecies").getMethod("vectorBitSize").invoke(species);
        } catch (ReflectiveOperationException | RuntimeException e) {
            return 0;
        }
    }

    /** Whether a row format is one this compiler reads: f32, or int4 grouped per token. */
    public static boolean supports(QuantSpec spec) {
        if (spec.precision() == Precision.F32) return true;
        return spec.precision() == Precision.INT4 && spec.axis() == QuantSpec.Axis.TOKEN;
    }

    /** Whether {@link #compile} accepts this head dimension, group and pair of formats. */
    public static boolean supports(int headDim, int group, QuantSpec keys, QuantSpec values) {
        if (headDim < 1 || group < 1 || group > MAX_GROUP || !supports(keys) || !supports(values)) return false;
        try {
            keys.validate(headDim);
            values.validate(headDim);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    private final int d, group;
    /** Heads whose per-row code is unrolled together (a divisor of the group, at most {@value #HEAD_BLOCK}). */
    private final int hbSize;
    /** Whether the group is done in several blocks of heads (a loop over blocks inside the loop over entries). */
    private final boolean blocked;
    private final Format keys, values;
    /** Widest float lanes used (0: scalar only). */
    private final int maxLanes;
    private final String name;

    private DecodeKernelCompiler(int headDim, int group, QuantSpec keys, QuantSpec values, int vectorBits) {
        this(headDim, group, keys, values, vectorBits, HEAD_BLOCK);
    }

    private DecodeKernelCompiler(int headDim, int group, QuantSpec keys, QuantSpec values, int vectorBits, int headBlock) {
        if (!supports(headDim, group, keys, values)) {
            throw new IllegalArgumentException("no compiled decode kernel for head dim " + headDim + ", group " + group + ", keys " + keys
                    + ", values " + values + " (supported: head dim >= 1, group 1.." + MAX_GROUP + ", f32 or int4 per token rows)");
        }
        this.d = headDim;
        this.group = group;
        int hb = Math.min(group, headBlock);
        while (group % hb != 0) hb--;
        this.hbSize = hb;
        this.blocked = hb < group;
        this.maxLanes = vectorBits >= 128 ? vectorBits / 32 : 0;
        this.keys = new Format(keys);
        this.values = new Format(values);
        this.name = PACKAGE + "DecodeKernel_d" + headDim + "_g" + group + "_" + this.keys.tag() + "_" + this.values.tag() + (maxLanes > 0 ? "_v" + maxLanes * 32 : "_scalar");
    }

    /** The class file: Vector API code when the module is there, else scalar. */
    public static byte[] classFile(int headDim, int group, QuantSpec keys, QuantSpec values) {
        return classFile(headDim, group, keys, values, true);
    }

    /**
     * HotSpot compiles no method of more than 8000 bytes of bytecode ({@code -XX:HugeMethodLimit}); a kernel left
     * to the interpreter would be far slower than the runtime kernel, so generated code must stay under it.
     */
    static final int CODE_LIMIT = 8000;

    /** Thrown when no head blocking brings a kernel's code under {@link #CODE_LIMIT} (very large head dims). */
    public static final class TooLargeException extends IllegalArgumentException {
        TooLargeException(String message) {
            super(message);
        }
    }

    /**
     * The class file; {@code vector} false forces the scalar-only class. Heads are unrolled in blocks of
     * {@value #HEAD_BLOCK}, fewer when the code would pass {@link #CODE_LIMIT}.
     */
    public static byte[] classFile(int headDim, int group, QuantSpec keys, QuantSpec values, boolean vector) {
        int bits = vector ? preferredVectorBits() : 0;
        int size = 0;
        for (int hb = HEAD_BLOCK; hb >= 1; hb /= 2) {
            byte[] b = new DecodeKernelCompiler(headDim, group, keys, values, bits, hb).emit();
            size = attendCodeSize(b);
            if (size < CODE_LIMIT) return b;
        }
        throw new TooLargeException("the decode kernel for head dim " + headDim + ", group " + group + ", keys " + keys + ", values " + values
                + " needs " + size + " bytes of bytecode, over the " + CODE_LIMIT + " HotSpot compiles; the runtime kernel runs it");
    }

    /** Bytes of bytecode of the attend method of a generated class: its Code attribute's code_length. */
    static int attendCodeSize(byte[] classFile) {
        var cr = new org.objectweb.asm.ClassReader(classFile);
        char[] buf = new char[cr.getMaxStringLength()];
        int at = cr.header + 6;
        at += 2 + 2 * cr.readUnsignedShort(at); // interfaces
        for (int pass = 0; pass < 2; pass++) { // fields, then methods
            int count = cr.readUnsignedShort(at);
            at += 2;
            for (int i = 0; i < count; i++) {
                String member = cr.readUTF8(at + 2, buf);
                int attributes = cr.readUnsignedShort(at + 6);
                at += 8;
                for (int k = 0; k < attributes; k++) {
                    String attribute = cr.readUTF8(at, buf);
                    int length = cr.readInt(at + 2);
                    // Code: max_stack u2, max_locals u2, code_length u4
                    if (pass == 1 && member.equals("attend") && attribute.equals("Code")) return cr.readInt(at + 10);
                    at += 6 + length;
                }
            }
        }
        throw new IllegalStateException("no attend method in the class file");
    }

    /** The internal name of the class {@link #classFile} makes. */
    public static String className(int headDim, int group, QuantSpec keys, QuantSpec values, boolean vector) {
        return new DecodeKernelCompiler(headDim, group, keys, values, vector ? preferredVectorBits() : 0).name;
    }

    /** Compiles and defines the kernel class (a hidden class); the factory makes instances (each with its scratch). */
    public static Factory compile(int headDim, int group, QuantSpec keys, QuantSpec values, boolean vector) {
        byte[] bytes = classFile(headDim, group, keys, values, vector);
        try {
            var ctor = MethodHandles.lookup().defineHiddenClass(bytes, true).lookupClass().getDeclaredConstructor();
            return () -> {
                try {
                    return (DecodeKernel) ctor.newInstance();
                } catch (ReflectiveOperationException e) {
                    throw new IllegalStateException("compiled decode kernel could not be instantiated", e);
                }
            };
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("compiled decode kernel for head dim " + headDim + " could not be defined", e);
        }
    }

    /** Makes kernels of one compiled class. */
    @FunctionalInterface
    public interface Factory {
        DecodeKernel create();
    }

    // ------------------------------------------------------------------------------------------------ layout plan

    /**
     * One run of channels read with one species: {@code lanes} 0 means scalar, -1 (int4 only) every group by one loop.
     * For int4 a vector chunk is {@code 2 * lanes} channels.
     */
    record Chunk(int start, int channels, int lanes) {}

    /** A row format and how the generated code reads a row of it. */
    private final class Format {
        final boolean int4;
        final int qgroup, groups;
        final long rowBytes, paramBytes;
        /** f32: chunks over the row. int4: per quantisation group, its chunks. */
        final List<Chunk> chunks = new ArrayList<>();
        /** int4 only: whether some chunk is a vector chunk (then the channels are permuted). */
        final boolean permuted;

        Format(QuantSpec spec) {
            int4 = spec.precision() == Precision.INT4;
            qgroup = int4 ? spec.group() : d;
            groups = d / qgroup;
            rowBytes = StoreLayout.rowBytes(spec, d);
            paramBytes = int4 ? 4L * groups : 0;
            boolean perm = false;
            if (!int4) {
                int c = 0;
                for (int l = maxLanes; l >= 4; l /= 2) {
                    while (d - c >= l) {
                        chunks.add(new Chunk(c, l, l));
                        c += l;
                    }
                }
                if (c < d) chunks.add(new Chunk(c, d - c, 0));
            } else {
                for (int g = 0; g < groups; g++) {
                    int c = g * qgroup, end = c + qgroup;
                    if (qgroup % 2 == 0) {
                        for (int l = maxLanes; l >= 8; l /= 2) {
                            while (end - c >= 2 * l) {
                                chunks.add(new Chunk(c, 2 * l, l));
                                perm = true;
                                c += 2 * l;
                            }
                        }
                    }
                    if (c < end) chunks.add(new Chunk(c, end - c, 0));
                }
            }
            permuted = perm;
            if (int4 && !perm) {
                // no vector chunk anywhere: one loop over the groups instead of one loop per group
                chunks.clear();
                chunks.add(new Chunk(0, d, -1));
            }
        }

        String tag() {
            return int4 ? "int4g" + qgroup : "f32";
        }

        /** The quantisation group a channel is in. */
        int groupOf(int channel) {
            return channel / qgroup;
        }
    }

    /** Position i of the permuted order holds channel perm[i]: even then odd channels within each int4 vector chunk. */
    private int[] permutation(Format f) {
        int[] p = new int[d];
        for (int i = 0; i < d; i++) p[i] = i;
        if (!f.int4) return p;
        for (Chunk c : f.chunks) {
            if (c.lanes <= 0) continue;
            for (int i = 0; i < c.lanes; i++) {
                p[c.start + i] = c.start + 2 * i;
                p[c.start + c.lanes + i] = c.start + 2 * i + 1;
            }
        }
        return p;
    }

    // ------------------------------------------------------------------------------------------------ emission

    private static final int THIS = 0, ROWS_ARG = 1, Q = 2, QPOS = 3, ATTEND = 4, OUT = 5, COLSUMS = 6;

    /** Local variable slots of the attend method. */
    private int next = 7;

    private int local(int size) {
        int s = next;
        next += size;
        return s;
    }

    private MethodVisitor m;

    private byte[] emit() {
        ClassWriter cw = new ClassWriter(ClassWriter.COMPUTE_FRAMES | ClassWriter.COMPUTE_MAXS);
        cw.visit(V21, ACC_PUBLIC | ACC_FINAL | ACC_SUPER, name, null, "java/lang/Object", new String[] {ITF});
        cw.visitField(ACC_PRIVATE, "lg", "[F", null, null).visitEnd();
        cw.visitField(ACC_PRIVATE | ACC_FINAL, "qx", "[F", null, null).visitEnd();
        cw.visitField(ACC_PRIVATE | ACC_FINAL, "acc", "[F", null, null).visitEnd();
        cw.visitField(ACC_PRIVATE | ACC_FINAL, "mx", "[F", null, null).visitEnd();
        cw.visitField(ACC_PRIVATE | ACC_STATIC | ACC_FINAL, "F32", OF_FLOAT_D, null, null).visitEnd();
        cw.visitField(ACC_PRIVATE | ACC_STATIC | ACC_FINAL, "I32", OF_INT_D, null, null).visitEnd();
        cw.visitField(ACC_PRIVATE | ACC_STATIC | ACC_FINAL, "KPERM", "[I", null, null).visitEnd();
        cw.visitField(ACC_PRIVATE | ACC_STATIC | ACC_FINAL, "VPERM", "[I", null, null).visitEnd();
        // the rotations of a lane-sum tree (reduceAccumulators): ROT_L_k moves lane i + k to lane i, of L lanes
        for (int l = maxLanes; l >= 4; l /= 2)
            for (int k = l / 2; k >= 1; k /= 2) cw.visitField(ACC_PRIVATE | ACC_STATIC | ACC_FINAL, "ROT_" + l + "_" + k, SHUFFLE_D, null, null).visitEnd();

        MethodVisitor ci = cw.visitMethod(ACC_STATIC, "<clinit>", "()V", null, null);
        ci.visitCode();
        ci.visitFieldInsn(GETSTATIC, "java/lang/foreign/ValueLayout", "JAVA_FLOAT_UNALIGNED", OF_FLOAT_D);
        ci.visitFieldInsn(GETSTATIC, ORDER, "LITTLE_ENDIAN", ORDER_D);
        ci.visitMethodInsn(INVOKEINTERFACE, "java/lang/foreign/ValueLayout$OfFloat", "withOrder", "(" + ORDER_D + ")" + OF_FLOAT_D, true);
        ci.visitFieldInsn(PUTSTATIC, name, "F32", OF_FLOAT_D);
        ci.visitFieldInsn(GETSTATIC, "java/lang/foreign/ValueLayout", "JAVA_INT_UNALIGNED", OF_INT_D);
        ci.visitFieldInsn(GETSTATIC, ORDER, "LITTLE_ENDIAN", ORDER_D);
        ci.visitMethodInsn(INVOKEINTERFACE, "java/lang/foreign/ValueLayout$OfInt", "withOrder", "(" + ORDER_D + ")" + OF_INT_D, true);
        ci.visitFieldInsn(PUTSTATIC, name, "I32", OF_INT_D);
        intArray(ci, permutation(keys));
        ci.visitFieldInsn(PUTSTATIC, name, "KPERM", "[I");
        intArray(ci, permutation(values));
        ci.visitFieldInsn(PUTSTATIC, name, "VPERM", "[I");
        for (int l = maxLanes; l >= 4; l /= 2) {
            for (int k = l / 2; k >= 1; k /= 2) {
                ci.visitFieldInsn(GETSTATIC, FV, "SPECIES_" + l * 32, SPECIES_D);
                push(ci, k);
                ci.visitInsn(ICONST_1);
                ci.visitInsn(ICONST_1);
                ci.visitMethodInsn(INVOKESTATIC, SHUFFLE, "iota", "(" + SPECIES_D + "IIZ)" + SHUFFLE_D, false);
                ci.visitFieldInsn(PUTSTATIC, name, "ROT_" + l + "_" + k, SHUFFLE_D);
            }
        }
        ci.visitInsn(RETURN);
        ci.visitMaxs(0, 0);
        ci.visitEnd();

        MethodVisitor init = cw.visitMethod(ACC_PUBLIC, "<init>", "()V", null, null);
        init.visitCode();
        init.visitVarInsn(ALOAD, 0);
        init.visitMethodInsn(INVOKESPECIAL, "java/lang/Object", "<init>", "()V", false);
        for (String f : List.of("lg", "qx", "acc")) {
            init.visitVarInsn(ALOAD, 0);
            push(init, f.equals("lg") ? group * 64 : group * d);
            init.visitIntInsn(NEWARRAY, T_FLOAT);
            init.visitFieldInsn(PUTFIELD, name, f, "[F");
        }
        init.visitVarInsn(ALOAD, 0);
        push(init, group);
        init.visitIntInsn(NEWARRAY, T_FLOAT);
        init.visitFieldInsn(PUTFIELD, name, "mx", "[F");
        init.visitInsn(RETURN);
        init.visitMaxs(0, 0);
        init.visitEnd();

        m = cw.visitMethod(ACC_PUBLIC, "attend", ATTEND_D, null, null);
        m.visitCode();
        attendBody();
        m.visitMaxs(0, 0);
        m.visitEnd();

        MethodVisitor ts = cw.visitMethod(ACC_PUBLIC, "toString", "()Ljava/lang/String;", null, null);
        ts.visitCode();
        ts.visitLdcInsn("compiled decode kernel: head dim " + d + ", group " + group + ", keys " + keys.tag() + ", values " + values.tag()
                + (maxLanes > 0 ? ", Vector API up to " + maxLanes + " float lanes" : ", scalar"));
        ts.visitInsn(ARETURN);
        ts.visitMaxs(0, 0);
        ts.visitEnd();
        cw.visitEnd();
        return cw.toByteArray();
    }

    private static void intArray(MethodVisitor mv, int[] a) {
        push(mv, a.length);
        mv.visitIntInsn(NEWARRAY, T_INT);
        for (int i = 0; i < a.length; i++) {
            if (a[i] == 0) continue;
            mv.visitInsn(DUP);
            push(mv, i);
            push(mv, a[i]);
            mv.visitInsn(IASTORE);
        }
    }

    private static void push(MethodVisitor mv, int v) {
        if (v >= -1 && v <= 5) mv.visitInsn(ICONST_0 + v);
        else if (v >= Byte.MIN_VALUE && v <= Byte.MAX_VALUE) mv.visitIntInsn(BIPUSH, v);
        else if (v >= Short.MIN_VALUE && v <= Short.MAX_VALUE) mv.visitIntInsn(SIPUSH, v);
        else mv.visitLdcInsn(v);
    }

    private void push(int v) {
        push(m, v);
    }

    private void pushLong(long v) {
        if (v == 0 || v == 1) m.visitInsn(LCONST_0 + (int) v);
        else m.visitLdcInsn(v);
    }

    private void pushFloat(float v) {
        if (v == 0f && Float.floatToRawIntBits(v) == 0) m.visitInsn(FCONST_0);
        else m.visitLdcInsn(v);
    }

    private int n, slots, positions, rpp, kp, vp, lg, qx, acc, j, s, seg, off;

    private void attendBody() {
        // head dim check: a kernel is for one head dim
        m.visitVarInsn(ALOAD, ROWS_ARG);
        m.visitMethodInsn(INVOKEINTERFACE, ROWS, "headDim", "()I", true);
        push(d);
        Label ok = new Label();
        m.visitJumpInsn(IF_ICMPEQ, ok);
        m.visitTypeInsn(NEW, "java/lang/IllegalArgumentException");
        m.visitInsn(DUP);
        m.visitLdcInsn("this decode kernel is compiled for head dim " + d + "; the lane has another");
        m.visitMethodInsn(INVOKESPECIAL, "java/lang/IllegalArgumentException", "<init>", "(Ljava/lang/String;)V", false);
        m.visitInsn(ATHROW);
        m.visitLabel(ok);

        n = local(1);
        slots = local(1);
        positions = local(1);
        rpp = local(1);
        kp = local(1);
        vp = local(1);
        lg = local(1);
        qx = local(1);
        acc = local(1);
        j = local(1);
        hbl = local(1);
        hd = local(1);
        hn = local(1);
        s = local(1);
        seg = local(1);
        off = local(2);
        rowsCall("size", "()I");
        m.visitVarInsn(ISTORE, n);
        rowsCall("slotTable", "()[I");
        m.visitVarInsn(ASTORE, slots);
        rowsCall("positionTable", "()[I");
        m.visitVarInsn(ASTORE, positions);
        rowsCall("rowsPerPage", "()I");
        m.visitVarInsn(ISTORE, rpp);
        for (var part : List.of("KEYS", "VALUES")) {
            m.visitVarInsn(ALOAD, ROWS_ARG);
            m.visitFieldInsn(GETSTATIC, PART, part, "L" + PART + ";");
            m.visitMethodInsn(INVOKEINTERFACE, ROWS, "rowPages", "(L" + PART + ";)[" + SEG_D, true);
            m.visitVarInsn(ASTORE, part.equals("KEYS") ? kp : vp);
        }
        // lg = this.lg, grown to group * n
        m.visitVarInsn(ALOAD, THIS);
        m.visitFieldInsn(GETFIELD, name, "lg", "[F");
        m.visitVarInsn(ASTORE, lg);
        m.visitVarInsn(ALOAD, lg);
        m.visitInsn(ARRAYLENGTH);
        push(group);
        m.visitVarInsn(ILOAD, n);
        m.visitInsn(IMUL);
        Label big = new Label();
        m.visitJumpInsn(IF_ICMPGE, big);
        push(group);
        m.visitVarInsn(ILOAD, n);
        m.visitInsn(IMUL);
        push(2);
        m.visitInsn(IMUL);
        m.visitIntInsn(NEWARRAY, T_FLOAT);
        m.visitVarInsn(ASTORE, lg);
        m.visitVarInsn(ALOAD, THIS);
        m.visitVarInsn(ALOAD, lg);
        m.visitFieldInsn(PUTFIELD, name, "lg", "[F");
        m.visitLabel(big);
        // qx: the query in the order the key chunks read channels
        if (keys.permuted) {
            m.visitVarInsn(ALOAD, THIS);
            m.visitFieldInsn(GETFIELD, name, "qx", "[F");
            m.visitVarInsn(ASTORE, qx);
            permute(Q, qx, "KPERM", false);
        } else {
            m.visitVarInsn(ALOAD, Q);
            m.visitVarInsn(ASTORE, qx);
        }
        // acc: where value sums go (out itself unless the value chunks permute channels)
        if (values.permuted) {
            m.visitVarInsn(ALOAD, THIS);
            m.visitFieldInsn(GETFIELD, name, "acc", "[F");
        } else {
            m.visitVarInsn(ALOAD, OUT);
        }
        m.visitVarInsn(ASTORE, acc);

        scores();
        softmax();
        valueSums();
        if (values.permuted) permute(acc, OUT, "VPERM", true);
        m.visitInsn(RETURN);
    }

    private void rowsCall(String method, String desc) {
        m.visitVarInsn(ALOAD, ROWS_ARG);
        m.visitMethodInsn(INVOKEINTERFACE, ROWS, method, desc, true);
    }

    /**
     * for (i = 0; i < group * d; i++) to[i] = from[i / d * d + perm[i % d]], or with {@code scatter}
     * to[i / d * d + perm[i % d]] = from[i].
     */
    private void permute(int from, int to, String perm, boolean scatter) {
        int i = local(1), src = local(1);
        push(0);
        m.visitVarInsn(ISTORE, i);
        Label top = new Label(), end = new Label();
        m.visitLabel(top);
        m.visitVarInsn(ILOAD, i);
        push(group * d);
        m.visitJumpInsn(IF_ICMPGE, end);
        // src = i / d * d + perm[i % d]
        m.visitVarInsn(ILOAD, i);
        push(d);
        m.visitInsn(IDIV);
        push(d);
        m.visitInsn(IMUL);
        m.visitFieldInsn(GETSTATIC, name, perm, "[I");
        m.visitVarInsn(ILOAD, i);
        push(d);
        m.visitInsn(IREM);
        m.visitInsn(IALOAD);
        m.visitInsn(IADD);
        m.visitVarInsn(ISTORE, src);
        m.visitVarInsn(ALOAD, to);
        m.visitVarInsn(ILOAD, scatter ? src : i);
        m.visitVarInsn(ALOAD, from);
        m.visitVarInsn(ILOAD, scatter ? i : src);
        m.visitInsn(FALOAD);
        m.visitInsn(FASTORE);
        m.visitIincInsn(i, 1);
        m.visitJumpInsn(GOTO, top);
        m.visitLabel(end);
    }

    /** seg = pages[s / rpp]; off = (long) (s % rpp) * rowBytes, with s = slots[2 * j + part]. */
    private void locateRow(int pages, int part, long rowBytes) {
        m.visitVarInsn(ALOAD, slots);
        m.visitVarInsn(ILOAD, j);
        m.visitInsn(ICONST_1);
        m.visitInsn(ISHL);
        if (part == 1) {
            m.visitInsn(ICONST_1);
            m.visitInsn(IADD);
        }
        m.visitInsn(IALOAD);
        m.visitVarInsn(ISTORE, s);
        m.visitVarInsn(ALOAD, pages);
        m.visitVarInsn(ILOAD, s);
        m.visitVarInsn(ILOAD, rpp);
        m.visitInsn(IDIV);
        m.visitInsn(AALOAD);
        m.visitVarInsn(ASTORE, seg);
        m.visitVarInsn(ILOAD, s);
        m.visitVarInsn(ILOAD, rpp);
        m.visitInsn(IREM);
        m.visitInsn(I2L);
        pushLong(rowBytes);
        m.visitInsn(LMUL);
        m.visitVarInsn(LSTORE, off);
    }

    /** Pushes off + delta (a long). */
    private void offPlus(long delta) {
        m.visitVarInsn(LLOAD, off);
        if (delta != 0) {
            pushLong(delta);
            m.visitInsn(LADD);
        }
    }

    /** for (j = 0; j < n; j++) { body }, with {@code cont} the label that continues. */
    private void entryLoop(Consumer<Label> body) {
        entryLoop(-1, body);
    }

    /** As above from j = the int local {@code from} (-1: from 0). */
    private void entryLoop(int from, Consumer<Label> body) {
        if (from < 0) push(0);
        else m.visitVarInsn(ILOAD, from);
        m.visitVarInsn(ISTORE, j);
        Label top = new Label(), cont = new Label(), end = new Label();
        m.visitLabel(top);
        m.visitVarInsn(ILOAD, j);
        m.visitVarInsn(ILOAD, n);
        m.visitJumpInsn(IF_ICMPGE, end);
        body.accept(cont);
        m.visitLabel(cont);
        m.visitIincInsn(j, 1);
        m.visitJumpInsn(GOTO, top);
        m.visitLabel(end);
    }

    /** Pushes g * n + j (index into lg) for head g of the whole group. */
    private void lgIndexAbs(int g) {
        if (g == 0) {
            m.visitVarInsn(ILOAD, j);
            return;
        }
        push(g);
        m.visitVarInsn(ILOAD, n);
        m.visitInsn(IMUL);
        m.visitVarInsn(ILOAD, j);
        m.visitInsn(IADD);
    }

    /** Pushes (hb + gi) * n + j for head gi of the current block. */
    private void lgIndex(int gi) {
        lgIndexAbs(gi);
        if (blocked) {
            m.visitVarInsn(ILOAD, hn);
            m.visitInsn(IADD);
        }
    }

    /** Pushes (hb + gi) * d + offset: where head gi of the current block starts in q, qx, acc, plus a constant. */
    private void headIndex(int gi, int offset) {
        push(gi * d + offset);
        if (blocked) {
            m.visitVarInsn(ILOAD, hd);
            m.visitInsn(IADD);
        }
    }

    /** Block-loop locals: the first head of the block, times d, times n. */
    private int hbl, hd, hn;

    /** Runs {@code body} for each block of heads (once, with no loop, when the group is one block). */
    private void headBlocks(Runnable body) {
        if (!blocked) {
            body.run();
            return;
        }
        push(0);
        m.visitVarInsn(ISTORE, hbl);
        Label top = new Label(), end = new Label();
        m.visitLabel(top);
        m.visitVarInsn(ILOAD, hbl);
        push(group);
        m.visitJumpInsn(IF_ICMPGE, end);
        m.visitVarInsn(ILOAD, hbl);
        push(d);
        m.visitInsn(IMUL);
        m.visitVarInsn(ISTORE, hd);
        m.visitVarInsn(ILOAD, hbl);
        m.visitVarInsn(ILOAD, n);
        m.visitInsn(IMUL);
        m.visitVarInsn(ISTORE, hn);
        body.run();
        m.visitIincInsn(hbl, hbSize);
        m.visitJumpInsn(GOTO, top);
        m.visitLabel(end);
    }

    // ---- pass 1: logits of every head of the group for each entry, read key rows once --------------------------

    private void scores() {
        // maxima: locals when the group is one block, else this.mx (filled with -inf)
        int[] mx = new int[hbSize];
        int mxa = local(1);
        m.visitVarInsn(ALOAD, THIS);
        m.visitFieldInsn(GETFIELD, name, "mx", "[F");
        m.visitVarInsn(ASTORE, mxa);
        if (blocked) {
            m.visitVarInsn(ALOAD, mxa);
            m.visitLdcInsn(Float.NEGATIVE_INFINITY);
            m.visitMethodInsn(INVOKESTATIC, "java/util/Arrays", "fill", "([FF)V", false);
        } else {
            for (int g = 0; g < hbSize; g++) {
                mx[g] = local(1);
                m.visitLdcInsn(Float.NEGATIVE_INFINITY);
                m.visitVarInsn(FSTORE, mx[g]);
            }
        }
        int[] t = new int[hbSize];
        for (int g = 0; g < hbSize; g++) t[g] = local(1);
        float scale = (float) (1.0 / Math.sqrt(d));
        entryLoop(cont -> {
            // masked: not in the attend set, or after the query
            Label masked = new Label(), live = new Label();
            m.visitVarInsn(ALOAD, ATTEND);
            Label noSet = new Label();
            m.visitJumpInsn(IFNULL, noSet);
            m.visitVarInsn(ALOAD, ATTEND);
            m.visitVarInsn(ILOAD, j);
            m.visitMethodInsn(INVOKEVIRTUAL, "java/util/BitSet", "get", "(I)Z", false);
            m.visitJumpInsn(IFEQ, masked);
            m.visitLabel(noSet);
            m.visitVarInsn(ALOAD, positions);
            m.visitVarInsn(ILOAD, j);
            m.visitInsn(IALOAD);
            m.visitVarInsn(ILOAD, QPOS);
            m.visitJumpInsn(IF_ICMPLE, live);
            m.visitLabel(masked);
            for (int g = 0; g < group; g++) {
                m.visitVarInsn(ALOAD, lg);
                lgIndexAbs(g);
                m.visitLdcInsn(Float.NEGATIVE_INFINITY);
                m.visitInsn(FASTORE);
            }
            m.visitJumpInsn(GOTO, cont);
            m.visitLabel(live);
            locateRow(kp, 0, keys.rowBytes);
            headBlocks(() -> {
                if (keys.int4) dotInt4(t);
                else dotF32(t);
                for (int g = 0; g < hbSize; g++) {
                    // t = t * scale; lg[g*n+j] = t; if (t > max) max = t
                    m.visitVarInsn(FLOAD, t[g]);
                    pushFloat(scale);
                    m.visitInsn(FMUL);
                    m.visitVarInsn(FSTORE, t[g]);
                    m.visitVarInsn(ALOAD, lg);
                    lgIndex(g);
                    m.visitVarInsn(FLOAD, t[g]);
                    m.visitInsn(FASTORE);
                    Label notMore = new Label();
                    if (blocked) {
                        // if (t > mx[hb + g]) mx[hb + g] = t
                        m.visitVarInsn(FLOAD, t[g]);
                        m.visitVarInsn(ALOAD, mxa);
                        m.visitVarInsn(ILOAD, hbl);
                        push(g);
                        m.visitInsn(IADD);
                        m.visitInsn(FALOAD);
                        m.visitInsn(FCMPL);
                        m.visitJumpInsn(IFLE, notMore);
                        m.visitVarInsn(ALOAD, mxa);
                        m.visitVarInsn(ILOAD, hbl);
                        push(g);
                        m.visitInsn(IADD);
                        m.visitVarInsn(FLOAD, t[g]);
                        m.visitInsn(FASTORE);
                    } else {
                        m.visitVarInsn(FLOAD, t[g]);
                        m.visitVarInsn(FLOAD, mx[g]);
                        m.visitInsn(FCMPL);
                        m.visitJumpInsn(IFLE, notMore);
                        m.visitVarInsn(FLOAD, t[g]);
                        m.visitVarInsn(FSTORE, mx[g]);
                    }
                    m.visitLabel(notMore);
                }
            });
        });
        if (!blocked) {
            for (int g = 0; g < hbSize; g++) {
                m.visitVarInsn(ALOAD, mxa);
                push(g);
                m.visitVarInsn(FLOAD, mx[g]);
                m.visitInsn(FASTORE);
            }
        }
    }

    /** Pushes FloatVector species of {@code lanes} floats. */
    private void floatSpecies(int lanes) {
        m.visitFieldInsn(GETSTATIC, FV, "SPECIES_" + lanes * 32, SPECIES_D);
    }

    private void byteSpecies(int lanes) {
        m.visitFieldInsn(GETSTATIC, BV, "SPECIES_" + lanes * 8, SPECIES_D);
    }

    /** Pushes FloatVector.fromArray(species, array, (hb + gi) * d + offset). */
    private void vectorFromArray(int lanes, int array, int gi, int offset) {
        floatSpecies(lanes);
        m.visitVarInsn(ALOAD, array);
        headIndex(gi, offset);
        m.visitMethodInsn(INVOKESTATIC, FV, "fromArray", "(" + SPECIES_D + "[FI)" + FV_D, false);
    }

    /** Stack: a, b, c (FloatVectors) -> a.fma(b, c). */
    private void fma() {
        m.visitMethodInsn(INVOKEVIRTUAL, FV, "fma", "(" + VEC_D + VEC_D + ")" + FV_D, false);
    }

    /** The accumulators of one species size, per head: local slots, zeroed when first used in a row. */
    private void vectorAccumulators(List<Chunk> chunks, Map<Integer, int[]> bySize) {
        for (Chunk c : chunks) {
            if (c.lanes <= 0 || bySize.containsKey(c.lanes)) continue;
            int[] a = new int[hbSize];
            for (int g = 0; g < hbSize; g++) a[g] = local(1);
            bySize.put(c.lanes, a);
        }
    }

    private void zeroAccumulators(Map<Integer, int[]> bySize) {
        for (var e : bySize.entrySet()) {
            for (int a : e.getValue()) {
                floatSpecies(e.getKey());
                m.visitMethodInsn(INVOKESTATIC, FV, "zero", "(" + SPECIES_D + ")" + FV_D, false);
                m.visitVarInsn(ASTORE, a);
            }
        }
    }

    /**
     * t[g] = sum of the accumulators' lanes, plus what scalar code added already (t[g] holds it). The lanes are added
     * in a fixed tree, {@code a = a + a.rearrange(ROT_L_k)} for k = L/2, L/4, ..., 1, then lane 0 (the halves, then
     * their halves...), not by {@code reduceLanes}, which may add them in any order: its Java code (run before C2
     * compiles the kernel) and its SIMD code (after) round differently, and a run's figures would depend on when the
     * JIT stepped in. Rotations and lane-wise adds give the same bits in both.
     */
    private void reduceAccumulators(Map<Integer, int[]> bySize, int[] t) {
        for (var e : bySize.entrySet()) {
            int lanes = e.getKey();
            for (int g = 0; g < hbSize; g++) {
                m.visitVarInsn(FLOAD, t[g]);
                m.visitVarInsn(ALOAD, e.getValue()[g]);
                for (int k = lanes / 2; k >= 1; k /= 2) {
                    m.visitInsn(DUP);
                    m.visitFieldInsn(GETSTATIC, name, "ROT_" + lanes + "_" + k, SHUFFLE_D);
                    m.visitMethodInsn(INVOKEVIRTUAL, FV, "rearrange", "(" + SHUFFLE_D + ")" + FV_D, false);
                    m.visitMethodInsn(INVOKEVIRTUAL, FV, "add", "(" + VEC_D + ")" + FV_D, false);
                }
                push(0);
                m.visitMethodInsn(INVOKEVIRTUAL, FV, "lane", "(I)F", false);
                m.visitInsn(FADD);
                m.visitVarInsn(FSTORE, t[g]);
            }
        }
    }

    private final Map<Integer, int[]> keyAcc = new TreeMap<>(Comparator.reverseOrder());

    /** t[g] = q_g . key row (f32). */
    private void dotF32(int[] t) {
        vectorAccumulators(keys.chunks, keyAcc);
        for (int g = 0; g < hbSize; g++) {
            m.visitInsn(FCONST_0);
            m.visitVarInsn(FSTORE, t[g]);
        }
        zeroAccumulators(keyAcc);
        int k = local(1);
        for (Chunk c : keys.chunks) {
            if (c.lanes > 0) {
                // k = FloatVector.fromMemorySegment(S, seg, off + 4c, LE); acc_g = k.fma(q_g[c..], acc_g)
                floatSpecies(c.lanes);
                m.visitVarInsn(ALOAD, seg);
                offPlus(4L * c.start);
                m.visitFieldInsn(GETSTATIC, ORDER, "LITTLE_ENDIAN", ORDER_D);
                m.visitMethodInsn(INVOKESTATIC, FV, "fromMemorySegment", "(" + SPECIES_D + SEG_D + "J" + ORDER_D + ")" + FV_D, false);
                m.visitVarInsn(ASTORE, k);
                int[] a = keyAcc.get(c.lanes);
                for (int g = 0; g < hbSize; g++) {
                    m.visitVarInsn(ALOAD, k);
                    vectorFromArray(c.lanes, qx, g, c.start);
                    m.visitVarInsn(ALOAD, a[g]);
                    fma();
                    m.visitVarInsn(ASTORE, a[g]);
                }
            } else if (maxLanes > 0) {
                // a short tail: unrolled scalar
                for (int i = c.start; i < c.start + c.channels; i++) {
                    int x = local(1);
                    m.visitVarInsn(ALOAD, seg);
                    m.visitFieldInsn(GETSTATIC, name, "F32", OF_FLOAT_D);
                    offPlus(4L * i);
                    m.visitMethodInsn(INVOKEINTERFACE, SEG, "get", "(" + OF_FLOAT_D + "J)F", true);
                    m.visitVarInsn(FSTORE, x);
                    for (int g = 0; g < hbSize; g++) {
                        m.visitVarInsn(FLOAD, t[g]);
                        m.visitVarInsn(ALOAD, qx);
                        headIndex(g, i);
                        m.visitInsn(FALOAD);
                        m.visitVarInsn(FLOAD, x);
                        m.visitInsn(FMUL);
                        m.visitInsn(FADD);
                        m.visitVarInsn(FSTORE, t[g]);
                    }
                }
            } else {
                scalarF32Loop(c, (i, x) -> {
                    for (int g = 0; g < hbSize; g++) {
                        m.visitVarInsn(FLOAD, t[g]);
                        m.visitVarInsn(ALOAD, qx);
                        pushChannel(g, i);
                        m.visitInsn(FALOAD);
                        m.visitVarInsn(FLOAD, x);
                        m.visitInsn(FMUL);
                        m.visitInsn(FADD);
                        m.visitVarInsn(FSTORE, t[g]);
                    }
                });
            }
        }
        reduceAccumulators(keyAcc, t);
    }

    /** Pushes (hb + g) * d + i, with i a local. */
    private void pushChannel(int g, int i) {
        m.visitVarInsn(ILOAD, i);
        if (g > 0) {
            push(g * d);
            m.visitInsn(IADD);
        }
        if (blocked) {
            m.visitVarInsn(ILOAD, hd);
            m.visitInsn(IADD);
        }
    }

    /** What a scalar loop does with channel local {@code i} and its element local {@code x}. */
    private interface ElementBody {
        void emit(int i, int x);
    }

    /** for (i = start; i < start + channels; i++) { x = f32 at off + 4i; body } */
    private void scalarF32Loop(Chunk c, ElementBody body) {
        int i = local(1), x = local(1);
        push(c.start);
        m.visitVarInsn(ISTORE, i);
        Label top = new Label(), end = new Label();
        m.visitLabel(top);
        m.visitVarInsn(ILOAD, i);
        push(c.start + c.channels);
        m.visitJumpInsn(IF_ICMPGE, end);
        m.visitVarInsn(ALOAD, seg);
        m.visitFieldInsn(GETSTATIC, name, "F32", OF_FLOAT_D);
        m.visitVarInsn(LLOAD, off);
        m.visitVarInsn(ILOAD, i);
        m.visitInsn(I2L);
        m.visitInsn(ICONST_2);
        m.visitInsn(LSHL);
        m.visitInsn(LADD);
        m.visitMethodInsn(INVOKEINTERFACE, SEG, "get", "(" + OF_FLOAT_D + "J)F", true);
        m.visitVarInsn(FSTORE, x);
        body.emit(i, x);
        m.visitIincInsn(i, 1);
        m.visitJumpInsn(GOTO, top);
        m.visitLabel(end);
    }

    /**
     * Reads quantisation group {@code qg}'s zero point and scale into locals z and sc (the scale as the codecs read it:
     * zero or non-finite becomes -0.0, so the group reads as its zero point).
     */
    private void groupParams(int qg, int z, int sc) {
        groupParams(qg, -1, z, sc);
    }

    /** As above with the group index in int local {@code qgLocal} when that is not -1. */
    private void groupParams(int qg, int qgLocal, int z, int sc) {
        int zs = local(1);
        m.visitVarInsn(ALOAD, seg);
        m.visitFieldInsn(GETSTATIC, name, "I32", OF_INT_D);
        if (qgLocal < 0) {
            offPlus(4L * qg);
        } else {
            m.visitVarInsn(LLOAD, off);
            m.visitVarInsn(ILOAD, qgLocal);
            m.visitInsn(I2L);
            m.visitInsn(ICONST_2);
            m.visitInsn(LSHL);
            m.visitInsn(LADD);
        }
        m.visitMethodInsn(INVOKEINTERFACE, SEG, "get", "(" + OF_INT_D + "J)I", true);
        m.visitVarInsn(ISTORE, zs);
        m.visitVarInsn(ILOAD, zs);
        m.visitInsn(I2S);
        m.visitMethodInsn(INVOKESTATIC, "java/lang/Float", "float16ToFloat", "(S)F", false);
        m.visitVarInsn(FSTORE, z);
        m.visitVarInsn(ILOAD, zs);
        push(16);
        m.visitInsn(IUSHR);
        m.visitInsn(I2S);
        m.visitMethodInsn(INVOKESTATIC, "java/lang/Float", "float16ToFloat", "(S)F", false);
        m.visitVarInsn(FSTORE, sc);
        // if (sc == 0 || !Float.isFinite(sc)) sc = -0.0f
        Label degenerate = new Label(), fine = new Label();
        m.visitVarInsn(FLOAD, sc);
        m.visitInsn(FCONST_0);
        m.visitInsn(FCMPL);
        m.visitJumpInsn(IFEQ, degenerate);
        m.visitVarInsn(FLOAD, sc);
        m.visitMethodInsn(INVOKESTATIC, "java/lang/Float", "isFinite", "(F)Z", false);
        m.visitJumpInsn(IFNE, fine);
        m.visitLabel(degenerate);
        m.visitLdcInsn(-0.0f);
        m.visitVarInsn(FSTORE, sc);
        m.visitLabel(fine);
    }

    /**
     * for (i = start; i < start + channels; i++) { x = z + code(i) * sc; body }, code(i) the nibble of channel i
     * (low nibble for even channels).
     */
    private void scalarInt4Loop(Format f, Chunk c, int z, int sc, ElementBody body) {
        if (c.lanes < 0) {
            allGroupsLoop(f, z, sc, body);
            return;
        }
        int i = local(1);
        push(c.start);
        m.visitVarInsn(ISTORE, i);
        int4Elements(f, i, -1, c.start + c.channels, z, sc, body);
    }

    /**
     * Every group of a row no vector chunk reads, as one loop over groups: for (k = 0; k < groups; k++) { z, sc of
     * group k; its channels }. Keeps the code size independent of the number of groups.
     */
    private void allGroupsLoop(Format f, int z, int sc, ElementBody body) {
        int k = local(1), i = local(1), end = local(1);
        push(0);
        m.visitVarInsn(ISTORE, k);
        Label top = new Label(), done = new Label();
        m.visitLabel(top);
        m.visitVarInsn(ILOAD, k);
        push(f.groups);
        m.visitJumpInsn(IF_ICMPGE, done);
        groupParams(0, k, z, sc);
        m.visitVarInsn(ILOAD, k);
        push(f.qgroup);
        m.visitInsn(IMUL);
        m.visitInsn(DUP);
        m.visitVarInsn(ISTORE, i);
        push(f.qgroup);
        m.visitInsn(IADD);
        m.visitVarInsn(ISTORE, end);
        int4Elements(f, i, end, 0, z, sc, body);
        m.visitIincInsn(k, 1);
        m.visitJumpInsn(GOTO, top);
        m.visitLabel(done);
    }

    /** while (i < end) { x = z + code(i) * sc; body; i++ }, end a local ({@code endLocal}) or the constant. */
    private void int4Elements(Format f, int i, int endLocal, int endConst, int z, int sc, ElementBody body) {
        int x = local(1);
        Label top = new Label(), end = new Label();
        m.visitLabel(top);
        m.visitVarInsn(ILOAD, i);
        if (endLocal >= 0) m.visitVarInsn(ILOAD, endLocal);
        else push(endConst);
        m.visitJumpInsn(IF_ICMPGE, end);
        // byte at off + paramBytes + (i >> 1), shifted by (i & 1) * 4, & 15
        m.visitVarInsn(ALOAD, seg);
        m.visitFieldInsn(GETSTATIC, "java/lang/foreign/ValueLayout", "JAVA_BYTE", OF_BYTE_D);
        offPlus(f.paramBytes);
        m.visitVarInsn(ILOAD, i);
        m.visitInsn(ICONST_1);
        m.visitInsn(ISHR);
        m.visitInsn(I2L);
        m.visitInsn(LADD);
        m.visitMethodInsn(INVOKEINTERFACE, SEG, "get", "(" + OF_BYTE_D + "J)B", true);
        m.visitVarInsn(ILOAD, i);
        m.visitInsn(ICONST_1);
        m.visitInsn(IAND);
        m.visitInsn(ICONST_2);
        m.visitInsn(ISHL);
        m.visitInsn(ISHR);
        push(15);
        m.visitInsn(IAND);
        m.visitInsn(I2F);
        m.visitVarInsn(FLOAD, sc);
        m.visitInsn(FMUL);
        m.visitVarInsn(FLOAD, z);
        m.visitInsn(FADD);
        m.visitVarInsn(FSTORE, x);
        body.emit(i, x);
        m.visitIincInsn(i, 1);
        m.visitJumpInsn(GOTO, top);
        m.visitLabel(end);
    }

    /**
     * Leaves the dequantised low and high halves of an int4 vector chunk in locals lo and hi:
     * {@code b = ByteVector.fromMemorySegment(BS, seg, codes + start / 2, LE)}, {@code lo = B2F(b & 15).fma(sc, z)},
     * {@code hi = B2F((b >>> 4) & 15).fma(sc, z)}, with sc and z broadcast.
     */
    private void int4Chunk(Format f, Chunk c, int zv, int scv, int lo, int hi) {
        int b = local(1);
        byteSpecies(c.lanes);
        m.visitVarInsn(ALOAD, seg);
        offPlus(f.paramBytes + c.start / 2);
        m.visitFieldInsn(GETSTATIC, ORDER, "LITTLE_ENDIAN", ORDER_D);
        m.visitMethodInsn(INVOKESTATIC, BV, "fromMemorySegment", "(" + SPECIES_D + SEG_D + "J" + ORDER_D + ")L" + BV + ";", false);
        m.visitVarInsn(ASTORE, b);
        for (int half = 0; half < 2; half++) {
            m.visitVarInsn(ALOAD, b);
            if (half == 1) {
                m.visitFieldInsn(GETSTATIC, OPS, "LSHR", "L" + OPS + "$Binary;");
                push(4);
                m.visitMethodInsn(INVOKEVIRTUAL, BV, "lanewise", "(L" + OPS + "$Binary;B)L" + BV + ";", false);
            }
            push(15);
            m.visitMethodInsn(INVOKEVIRTUAL, BV, "and", "(B)L" + BV + ";", false);
            m.visitFieldInsn(GETSTATIC, OPS, "B2F", "L" + OPS + "$Conversion;");
            floatSpecies(c.lanes);
            push(0);
            m.visitMethodInsn(INVOKEVIRTUAL, VEC, "convertShape", "(L" + OPS + "$Conversion;" + SPECIES_D + "I)" + VEC_D, false);
            m.visitTypeInsn(CHECKCAST, FV);
            m.visitVarInsn(ALOAD, scv);
            m.visitVarInsn(ALOAD, zv);
            fma();
            m.visitVarInsn(ASTORE, half == 0 ? lo : hi);
        }
    }

    /** Broadcasts float local {@code x} to a FloatVector of {@code lanes} into local {@code v}. */
    private void broadcast(int lanes, int x, int v) {
        floatSpecies(lanes);
        m.visitVarInsn(FLOAD, x);
        m.visitMethodInsn(INVOKESTATIC, FV, "broadcast", "(" + SPECIES_D + "F)" + FV_D, false);
        m.visitVarInsn(ASTORE, v);
    }

    /** t[g] = q_g . dequantised int4 key row. */
    private void dotInt4(int[] t) {
        vectorAccumulators(keys.chunks, keyAcc);
        for (int g = 0; g < hbSize; g++) {
            m.visitInsn(FCONST_0);
            m.visitVarInsn(FSTORE, t[g]);
        }
        zeroAccumulators(keyAcc);
        int z = local(1), sc = local(1), lo = local(1), hi = local(1);
        int lastGroup = -1;
        Map<Integer, int[]> bc = new HashMap<>();
        for (Chunk c : keys.chunks) {
            int qg = keys.groupOf(c.start);
            if (c.lanes >= 0 && qg != lastGroup) {
                groupParams(qg, z, sc);
                lastGroup = qg;
                bc.clear();
            }
            if (c.lanes > 0) {
                int[] zs = bc.get(c.lanes);
                if (zs == null) {
                    zs = new int[] {local(1), local(1)};
                    broadcast(c.lanes, z, zs[0]);
                    broadcast(c.lanes, sc, zs[1]);
                    bc.put(c.lanes, zs);
                }
                int4Chunk(keys, c, zs[0], zs[1], lo, hi);
                int[] a = keyAcc.get(c.lanes);
                for (int g = 0; g < hbSize; g++) {
                    for (int half = 0; half < 2; half++) {
                        m.visitVarInsn(ALOAD, half == 0 ? lo : hi);
                        vectorFromArray(c.lanes, qx, g, c.start + half * c.lanes);
                        m.visitVarInsn(ALOAD, a[g]);
                        fma();
                        m.visitVarInsn(ASTORE, a[g]);
                    }
                }
            } else {
                scalarInt4Loop(keys, c, z, sc, (i, x) -> {
                    for (int g = 0; g < hbSize; g++) {
                        m.visitVarInsn(FLOAD, t[g]);
                        m.visitVarInsn(ALOAD, qx);
                        pushChannel(g, i);
                        m.visitInsn(FALOAD);
                        m.visitVarInsn(FLOAD, x);
                        m.visitInsn(FMUL);
                        m.visitInsn(FADD);
                        m.visitVarInsn(FSTORE, t[g]);
                    }
                });
            }
        }
        reduceAccumulators(keyAcc, t);
    }

    // ---- pass 2: softmax per head --------------------------------------------------------------------------------

    /**
     * For each head g (a loop): max = mx[g]; if max is -inf every probability is 0; else e = (float) exp(l - max) for
     * the unmasked entries (masked ones 0), sum in double, inv = (float) (1 / sum), p = e * inv, in place. The
     * exponentials are {@link #vectorExp}'s over whole vectors, then Math.exp's for the rest (and in the scalar class).
     */
    private void softmax() {
        int g = local(1), base = local(1), max = local(1), sum = local(2), inv = local(1), x = local(1);
        push(0);
        m.visitVarInsn(ISTORE, g);
        Label top = new Label(), end = new Label(), nextHead = new Label();
        m.visitLabel(top);
        m.visitVarInsn(ILOAD, g);
        push(group);
        m.visitJumpInsn(IF_ICMPGE, end);
        m.visitVarInsn(ILOAD, g);
        m.visitVarInsn(ILOAD, n);
        m.visitInsn(IMUL);
        m.visitVarInsn(ISTORE, base);
        m.visitVarInsn(ALOAD, THIS);
        m.visitFieldInsn(GETFIELD, name, "mx", "[F");
        m.visitVarInsn(ILOAD, g);
        m.visitInsn(FALOAD);
        m.visitVarInsn(FSTORE, max);
        Label some = new Label();
        m.visitVarInsn(FLOAD, max);
        m.visitLdcInsn(Float.NEGATIVE_INFINITY);
        m.visitInsn(FCMPL);
        m.visitJumpInsn(IFNE, some);
        // nothing visible: Arrays.fill(lg, base, base + n, 0)
        m.visitVarInsn(ALOAD, lg);
        m.visitVarInsn(ILOAD, base);
        m.visitVarInsn(ILOAD, base);
        m.visitVarInsn(ILOAD, n);
        m.visitInsn(IADD);
        m.visitInsn(FCONST_0);
        m.visitMethodInsn(INVOKESTATIC, "java/util/Arrays", "fill", "([FIIF)V", false);
        m.visitJumpInsn(GOTO, nextHead);
        m.visitLabel(some);
        m.visitInsn(DCONST_0);
        m.visitVarInsn(DSTORE, sum);
        int from = local(1);
        push(0);
        m.visitVarInsn(ISTORE, from);
        if (maxLanes > 0) vectorExp(base, max, sum, from);
        entryLoop(from, cont -> {
            m.visitVarInsn(ALOAD, lg);
            m.visitVarInsn(ILOAD, base);
            m.visitVarInsn(ILOAD, j);
            m.visitInsn(IADD);
            m.visitInsn(FALOAD);
            m.visitVarInsn(FSTORE, x);
            Label visible = new Label(), store = new Label();
            m.visitVarInsn(FLOAD, x);
            m.visitLdcInsn(Float.NEGATIVE_INFINITY);
            m.visitInsn(FCMPL);
            m.visitJumpInsn(IFNE, visible);
            m.visitInsn(FCONST_0);
            m.visitVarInsn(FSTORE, x);
            m.visitJumpInsn(GOTO, store);
            m.visitLabel(visible);
            m.visitVarInsn(FLOAD, x);
            m.visitVarInsn(FLOAD, max);
            m.visitInsn(FSUB);
            m.visitInsn(F2D);
            m.visitMethodInsn(INVOKESTATIC, "java/lang/Math", "exp", "(D)D", false);
            m.visitInsn(D2F);
            m.visitVarInsn(FSTORE, x);
            m.visitVarInsn(DLOAD, sum);
            m.visitVarInsn(FLOAD, x);
            m.visitInsn(F2D);
            m.visitInsn(DADD);
            m.visitVarInsn(DSTORE, sum);
            m.visitLabel(store);
            m.visitVarInsn(ALOAD, lg);
            m.visitVarInsn(ILOAD, base);
            m.visitVarInsn(ILOAD, j);
            m.visitInsn(IADD);
            m.visitVarInsn(FLOAD, x);
            m.visitInsn(FASTORE);
        });
        m.visitInsn(DCONST_1);
        m.visitVarInsn(DLOAD, sum);
        m.visitInsn(DDIV);
        m.visitInsn(D2F);
        m.visitVarInsn(FSTORE, inv);
        push(0);
        m.visitVarInsn(ISTORE, from);
        if (maxLanes > 0) vectorScale(base, inv, from);
        entryLoop(from, cont -> {
            m.visitVarInsn(ALOAD, lg);
            m.visitVarInsn(ILOAD, base);
            m.visitVarInsn(ILOAD, j);
            m.visitInsn(IADD);
            m.visitInsn(DUP2);
            m.visitInsn(FALOAD);
            m.visitVarInsn(FLOAD, inv);
            m.visitInsn(FMUL);
            m.visitInsn(FASTORE);
        });
        m.visitLabel(nextHead);
        m.visitIincInsn(g, 1);
        m.visitJumpInsn(GOTO, top);
        m.visitLabel(end);
    }

    /**
     * The exponentials of the widest species' whole vectors of entries {@code [0, from)} where {@code from} becomes
     * {@code n} rounded down to a multiple of the lanes, from lane-wise arithmetic only, so that the interpreted and
     * the compiled kernel agree bit for bit (the Vector API's {@code EXP} does not):
     * {@code x = fromArray(lg, base + j).sub(max)}; entries under {@value #EXP_FLOOR} (masked ones are {@code -inf})
     * give 0; else {@code n = round(x log2 e)} (one FMA into {@code t = x log2 e + 1.5 * 2^23}, whose low bits are
     * n), {@code r = x - n ln2} in two parts (Cody-Waite), a degree-5 polynomial for {@code e^r} on {@code |r| <= ln2/2}
     * and {@code 2^n} built in the exponent bits ({@code (t bits << 23) + (127 << 23)}). Relative error about 1e-7
     * against {@code Math.exp}. Stored back, and summed in double: the two halves of each vector widened
     * ({@code F2D}, parts 0 and 1) into two double accumulators, whose lanes are added in order at the end, to
     * {@code sum}. The scalar loop does the rest with {@code Math.exp}.
     */
    private void vectorExp(int base, int max, int sum, int from) {
        int lanes = maxLanes, x = local(1), t = local(1), r = local(1), under = local(1), lo = local(1), hi = local(1), nv = local(1);
        String dv = "jdk/incubator/vector/DoubleVector", dvD = "L" + dv + ";";
        String iv = "jdk/incubator/vector/IntVector", ivD = "L" + iv + ";", maskD = "Ljdk/incubator/vector/VectorMask;";
        String dSpecies = "SPECIES_" + lanes * 32;
        for (int a : new int[] {lo, hi}) {
            m.visitFieldInsn(GETSTATIC, dv, dSpecies, SPECIES_D);
            m.visitMethodInsn(INVOKESTATIC, dv, "zero", "(" + SPECIES_D + ")" + dvD, false);
            m.visitVarInsn(ASTORE, a);
        }
        floatSpecies(lanes);
        m.visitVarInsn(ILOAD, n);
        m.visitMethodInsn(INVOKEINTERFACE, "jdk/incubator/vector/VectorSpecies", "loopBound", "(I)I", true);
        m.visitVarInsn(ISTORE, from);
        push(0);
        m.visitVarInsn(ISTORE, j);
        Label top = new Label(), end = new Label();
        m.visitLabel(top);
        m.visitVarInsn(ILOAD, j);
        m.visitVarInsn(ILOAD, from);
        m.visitJumpInsn(IF_ICMPGE, end);
        // x = fromArray(S, lg, base + j).sub(max); under = x < EXP_FLOOR; x = max(x, EXP_FLOOR)
        floatSpecies(lanes);
        m.visitVarInsn(ALOAD, lg);
        m.visitVarInsn(ILOAD, base);
        m.visitVarInsn(ILOAD, j);
        m.visitInsn(IADD);
        m.visitMethodInsn(INVOKESTATIC, FV, "fromArray", "(" + SPECIES_D + "[FI)" + FV_D, false);
        m.visitVarInsn(FLOAD, max);
        m.visitMethodInsn(INVOKEVIRTUAL, FV, "sub", "(F)" + FV_D, false);
        m.visitVarInsn(ASTORE, x);
        m.visitVarInsn(ALOAD, x);
        m.visitFieldInsn(GETSTATIC, OPS, "LT", "L" + OPS + "$Comparison;");
        pushFloat(EXP_FLOOR);
        m.visitMethodInsn(INVOKEVIRTUAL, FV, "compare", "(L" + OPS + "$Comparison;F)" + maskD, false);
        m.visitVarInsn(ASTORE, under);
        m.visitVarInsn(ALOAD, x);
        pushFloat(EXP_FLOOR);
        m.visitMethodInsn(INVOKEVIRTUAL, FV, "max", "(F)" + FV_D, false);
        m.visitVarInsn(ASTORE, x);
        // t = x.fma(LOG2E, MAGIC); n = t - MAGIC (exact); r = x - n * LN2_HI - n * LN2_LO (n * LN2_HI is exact)
        m.visitVarInsn(ALOAD, x);
        pushFloat(LOG2E);
        pushFloat(MAGIC);
        m.visitMethodInsn(INVOKEVIRTUAL, FV, "fma", "(FF)" + FV_D, false);
        m.visitVarInsn(ASTORE, t);
        m.visitVarInsn(ALOAD, t);
        pushFloat(MAGIC);
        m.visitMethodInsn(INVOKEVIRTUAL, FV, "sub", "(F)" + FV_D, false);
        m.visitVarInsn(ASTORE, nv);
        m.visitVarInsn(ALOAD, x);
        for (float c : new float[] {LN2_HI, LN2_LO}) {
            m.visitVarInsn(ALOAD, nv);
            pushFloat(c);
            m.visitMethodInsn(INVOKEVIRTUAL, FV, "mul", "(F)" + FV_D, false);
            m.visitMethodInsn(INVOKEVIRTUAL, FV, "sub", "(" + VEC_D + ")" + FV_D, false);
        }
        m.visitVarInsn(ASTORE, r);
        // p = (((c0 r + c1) r + c2) r + ... ) + c5 by fused steps; e = p r^2 + r + 1
        m.visitVarInsn(ALOAD, r);
        pushFloat(EXP_POLY[0]);
        pushFloat(EXP_POLY[1]);
        m.visitMethodInsn(INVOKEVIRTUAL, FV, "fma", "(FF)" + FV_D, false);
        for (int i = 2; i < EXP_POLY.length; i++) {
            m.visitVarInsn(ALOAD, r);
            floatSpecies(lanes);
            pushFloat(EXP_POLY[i]);
            m.visitMethodInsn(INVOKESTATIC, FV, "broadcast", "(" + SPECIES_D + "F)" + FV_D, false);
            m.visitMethodInsn(INVOKEVIRTUAL, FV, "fma", "(" + VEC_D + VEC_D + ")" + FV_D, false);
        }
        m.visitVarInsn(ALOAD, r);
        m.visitVarInsn(ALOAD, r);
        m.visitMethodInsn(INVOKEVIRTUAL, FV, "mul", "(" + VEC_D + ")" + FV_D, false);
        m.visitMethodInsn(INVOKEVIRTUAL, FV, "mul", "(" + VEC_D + ")" + FV_D, false);
        m.visitVarInsn(ALOAD, r);
        m.visitMethodInsn(INVOKEVIRTUAL, FV, "add", "(" + VEC_D + ")" + FV_D, false);
        m.visitInsn(FCONST_1);
        m.visitMethodInsn(INVOKEVIRTUAL, FV, "add", "(F)" + FV_D, false);
        // * 2^n: the float whose bits are (t's bits << 23) + (127 << 23); then 0 where under
        m.visitVarInsn(ALOAD, t);
        m.visitMethodInsn(INVOKEVIRTUAL, FV, "reinterpretAsInts", "()" + ivD, false);
        m.visitFieldInsn(GETSTATIC, OPS, "LSHL", "L" + OPS + "$Binary;");
        push(23);
        m.visitMethodInsn(INVOKEVIRTUAL, iv, "lanewise", "(L" + OPS + "$Binary;I)" + ivD, false);
        push(127 << 23);
        m.visitMethodInsn(INVOKEVIRTUAL, iv, "add", "(I)" + ivD, false);
        m.visitMethodInsn(INVOKEVIRTUAL, iv, "reinterpretAsFloats", "()" + FV_D, false);
        m.visitMethodInsn(INVOKEVIRTUAL, FV, "mul", "(" + VEC_D + ")" + FV_D, false);
        m.visitInsn(FCONST_0);
        m.visitVarInsn(ALOAD, under);
        m.visitMethodInsn(INVOKEVIRTUAL, FV, "blend", "(F" + maskD + ")" + FV_D, false);
        m.visitVarInsn(ASTORE, x);
        m.visitVarInsn(ALOAD, x);
        m.visitVarInsn(ALOAD, lg);
        m.visitVarInsn(ILOAD, base);
        m.visitVarInsn(ILOAD, j);
        m.visitInsn(IADD);
        m.visitMethodInsn(INVOKEVIRTUAL, FV, "intoArray", "([FI)V", false);
        for (int part = 0; part < 2; part++) {
            int a = part == 0 ? lo : hi;
            m.visitVarInsn(ALOAD, a);
            m.visitVarInsn(ALOAD, x);
            m.visitFieldInsn(GETSTATIC, OPS, "F2D", "L" + OPS + "$Conversion;");
            m.visitFieldInsn(GETSTATIC, dv, dSpecies, SPECIES_D);
            push(part);
            m.visitMethodInsn(INVOKEVIRTUAL, VEC, "convertShape", "(L" + OPS + "$Conversion;" + SPECIES_D + "I)" + VEC_D, false);
            m.visitMethodInsn(INVOKEVIRTUAL, dv, "add", "(" + VEC_D + ")" + dvD, false);
            m.visitVarInsn(ASTORE, a);
        }
        push(lanes);
        m.visitVarInsn(ILOAD, j);
        m.visitInsn(IADD);
        m.visitVarInsn(ISTORE, j);
        m.visitJumpInsn(GOTO, top);
        m.visitLabel(end);
        // sum += the lanes of lo + hi, from lane 0 up
        m.visitVarInsn(ALOAD, lo);
        m.visitVarInsn(ALOAD, hi);
        m.visitMethodInsn(INVOKEVIRTUAL, dv, "add", "(" + VEC_D + ")" + dvD, false);
        m.visitVarInsn(ASTORE, lo);
        m.visitVarInsn(DLOAD, sum);
        for (int i = 0; i < lanes / 2; i++) {
            m.visitVarInsn(ALOAD, lo);
            push(i);
            m.visitMethodInsn(INVOKEVIRTUAL, dv, "lane", "(I)D", false);
            if (i > 0) m.visitInsn(DADD);
        }
        m.visitInsn(DADD);
        m.visitVarInsn(DSTORE, sum);
    }

    /** lg[base + j] *= inv over the whole vectors of entries; {@code from} becomes where the scalar loop goes on. */
    private void vectorScale(int base, int inv, int from) {
        int lanes = maxLanes;
        floatSpecies(lanes);
        m.visitVarInsn(ILOAD, n);
        m.visitMethodInsn(INVOKEINTERFACE, "jdk/incubator/vector/VectorSpecies", "loopBound", "(I)I", true);
        m.visitVarInsn(ISTORE, from);
        push(0);
        m.visitVarInsn(ISTORE, j);
        Label top = new Label(), end = new Label();
        m.visitLabel(top);
        m.visitVarInsn(ILOAD, j);
        m.visitVarInsn(ILOAD, from);
        m.visitJumpInsn(IF_ICMPGE, end);
        floatSpecies(lanes);
        m.visitVarInsn(ALOAD, lg);
        m.visitVarInsn(ILOAD, base);
        m.visitVarInsn(ILOAD, j);
        m.visitInsn(IADD);
        m.visitMethodInsn(INVOKESTATIC, FV, "fromArray", "(" + SPECIES_D + "[FI)" + FV_D, false);
        m.visitVarInsn(FLOAD, inv);
        m.visitMethodInsn(INVOKEVIRTUAL, FV, "mul", "(F)" + FV_D, false);
        m.visitVarInsn(ALOAD, lg);
        m.visitVarInsn(ILOAD, base);
        m.visitVarInsn(ILOAD, j);
        m.visitInsn(IADD);
        m.visitMethodInsn(INVOKEVIRTUAL, FV, "intoArray", "([FI)V", false);
        push(lanes);
        m.visitVarInsn(ILOAD, j);
        m.visitInsn(IADD);
        m.visitVarInsn(ISTORE, j);
        m.visitJumpInsn(GOTO, top);
        m.visitLabel(end);
    }

    // ---- pass 3: weighted sums of the values, column sums --------------------------------------------------------

    private final Map<Integer, int[]> probVectors = new TreeMap<>(Comparator.reverseOrder());

    private void valueSums() {
        // acc[0 .. group * d) = 0
        m.visitVarInsn(ALOAD, acc);
        push(0);
        push(group * d);
        m.visitInsn(FCONST_0);
        m.visitMethodInsn(INVOKESTATIC, "java/util/Arrays", "fill", "([FIIF)V", false);
        int[] p = new int[hbSize];
        for (int g = 0; g < hbSize; g++) p[g] = local(1);
        for (Chunk c : values.chunks) {
            if (c.lanes <= 0 || probVectors.containsKey(c.lanes)) continue;
            int[] a = new int[hbSize];
            for (int g = 0; g < hbSize; g++) a[g] = local(1);
            probVectors.put(c.lanes, a);
        }
        entryLoop(cont -> {
            // skip entries no head reads (masked, or underflowed to 0)
            Label some = new Label();
            for (int g = 0; g < group; g++) {
                m.visitVarInsn(ALOAD, lg);
                lgIndexAbs(g);
                m.visitInsn(FALOAD);
                m.visitInsn(FCONST_0);
                m.visitInsn(FCMPL);
                m.visitJumpInsn(IFNE, some);
            }
            m.visitJumpInsn(GOTO, cont);
            m.visitLabel(some);
            locateRow(vp, 1, values.rowBytes);
            headBlocks(() -> {
                for (int g = 0; g < hbSize; g++) {
                    m.visitVarInsn(ALOAD, lg);
                    lgIndex(g);
                    m.visitInsn(FALOAD);
                    m.visitVarInsn(FSTORE, p[g]);
                }
                for (var e : probVectors.entrySet()) {
                    for (int g = 0; g < hbSize; g++) broadcast(e.getKey(), p[g], e.getValue()[g]);
                }
                if (values.int4) axpyInt4(p);
                else axpyF32(p);
                // if (colSums != null) colSums[j] += p_g, head by head
                Label noSums = new Label();
                m.visitVarInsn(ALOAD, COLSUMS);
                m.visitJumpInsn(IFNULL, noSums);
                for (int g = 0; g < hbSize; g++) {
                    m.visitVarInsn(ALOAD, COLSUMS);
                    m.visitVarInsn(ILOAD, j);
                    m.visitInsn(DUP2);
                    m.visitInsn(FALOAD);
                    m.visitVarInsn(FLOAD, p[g]);
                    m.visitInsn(FADD);
                    m.visitInsn(FASTORE);
                }
                m.visitLabel(noSums);
            });
        });
    }

    /** acc[g*d + index ..] = v.fma(pv_g, acc[g*d + index ..]) for every head, v in local {@code v}. */
    private void vectorUpdate(int lanes, int v, int index) {
        int[] pv = probVectors.get(lanes);
        for (int g = 0; g < hbSize; g++) {
            m.visitVarInsn(ALOAD, v);
            m.visitVarInsn(ALOAD, pv[g]);
            vectorFromArray(lanes, acc, g, index);
            fma();
            m.visitVarInsn(ALOAD, acc);
            headIndex(g, index);
            m.visitMethodInsn(INVOKEVIRTUAL, FV, "intoArray", "([FI)V", false);
        }
    }

    /** acc[g*d + i] += p_g * x for every head, i a local channel index. */
    private void scalarUpdate(int[] p, int i, int x) {
        for (int g = 0; g < hbSize; g++) {
            m.visitVarInsn(ALOAD, acc);
            pushChannel(g, i);
            m.visitInsn(DUP2);
            m.visitInsn(FALOAD);
            m.visitVarInsn(FLOAD, p[g]);
            m.visitVarInsn(FLOAD, x);
            m.visitInsn(FMUL);
            m.visitInsn(FADD);
            m.visitInsn(FASTORE);
        }
    }

    private void axpyF32(int[] p) {
        int v = local(1);
        for (Chunk c : values.chunks) {
            if (c.lanes > 0) {
                floatSpecies(c.lanes);
                m.visitVarInsn(ALOAD, seg);
                offPlus(4L * c.start);
                m.visitFieldInsn(GETSTATIC, ORDER, "LITTLE_ENDIAN", ORDER_D);
                m.visitMethodInsn(INVOKESTATIC, FV, "fromMemorySegment", "(" + SPECIES_D + SEG_D + "J" + ORDER_D + ")" + FV_D, false);
                m.visitVarInsn(ASTORE, v);
                vectorUpdate(c.lanes, v, c.start);
            } else {
                scalarF32Loop(c, (i, x) -> scalarUpdate(p, i, x));
            }
        }
    }

    private void axpyInt4(int[] p) {
        int z = local(1), sc = local(1), lo = local(1), hi = local(1);
        int lastGroup = -1;
        Map<Integer, int[]> bc = new HashMap<>();
        for (Chunk c : values.chunks) {
            int qg = values.groupOf(c.start);
            if (c.lanes >= 0 && qg != lastGroup) {
                groupParams(qg, z, sc);
                lastGroup = qg;
                bc.clear();
            }
            if (c.lanes > 0) {
                int[] zs = bc.get(c.lanes);
                if (zs == null) {
                    zs = new int[] {local(1), local(1)};
                    broadcast(c.lanes, z, zs[0]);
                    broadcast(c.lanes, sc, zs[1]);
                    bc.put(c.lanes, zs);
                }
                int4Chunk(values, c, zs[0], zs[1], lo, hi);
                vectorUpdate(c.lanes, lo, c.start);
                vectorUpdate(c.lanes, hi, c.start + c.lanes);
            } else {
                scalarInt4Loop(values, c, z, sc, (i, x) -> scalarUpdate(p, i, x));
            }
        }
    }
}
