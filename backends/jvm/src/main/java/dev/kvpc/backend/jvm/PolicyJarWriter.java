package dev.kvpc.backend.jvm;

import dev.kvpc.ir.Specialized;
import dev.kvpc.runtime.load.PolicyLoadException;
import dev.kvpc.runtime.load.PolicyManifest;
import dev.kvpc.runtime.policy.CompiledLaneClass;
import dev.kvpc.runtime.policy.CompiledPolicy;
import org.objectweb.asm.ClassWriter;
import org.objectweb.asm.Label;
import org.objectweb.asm.MethodVisitor;
import org.objectweb.asm.Type;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import static org.objectweb.asm.Opcodes.*;

/**
 * Writes a compiled policy as the jar the runtime's {@code PolicyJarLoader} accepts: the manifest
 * ({@value PolicyManifest#PATH}), one class per lane class, the attention variant compiled (when the program has one
 * other than standard attention), and an entry class implementing {@link CompiledPolicy}
 * that holds the specialised program's IR text and instantiates the lane classes. Entries are in a fixed order with
 * a fixed time, so the same source compiles to the same bytes.
 */
public final class PolicyJarWriter {
    /** 1980-01-01, the zip epoch: jars are reproducible. */
    private static final long FIXED_TIME = 315532800000L + 12 * 3600 * 1000L;
    private static final int CHUNK = 8000;

    private PolicyJarWriter() {}

    /** Internal name of the entry class of {@code program}'s jar. */
    public static String entryClassName(Specialized program) {
        return "kvpc/gen/" + JvmPolicies.sanitize(program.root()) + "/Policy";
    }

    /** Internal name of the compiled attention variant in {@code program}'s jar. */
    public static String variantClassName(Specialized program) {
        return "kvpc/gen/" + JvmPolicies.sanitize(program.root()) + "/Variant";
    }

    /** Whether the program attends with a variant other than standard attention (its jar then carries it compiled). */
    static boolean hasVariant(Specialized program) {
        return program.variant() != null && !program.variant().name().equals("standard");
    }

    /** Every class of the jar by internal name: lane classes, the attention variant if any, then the entry class. */
    public static Map<String, byte[]> classes(JvmPolicies compiled) {
        Specialized program = compiled.program();
        Map<String, byte[]> all = new LinkedHashMap<>(compiled.classFiles());
        if (hasVariant(program)) all.put(variantClassName(program), VariantCompiler.classFile(program.variant(), program.shape(), variantClassName(program)));
        all.put(entryClassName(program), entryClass(program));
        return all;
    }

    /**
     * The manifest keys every jar has, for {@code program}'s exact shape and this kvpc's version (the entry class
     * aside): a caller adds the predicted memory ({@code memory.*}, {@code prediction.*}) when it has it.
     */
    public static Map<String, String> manifest(Specialized program, String sourceSha256, java.util.Collection<String> evidence) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put(PolicyManifest.KEY_FORMAT, Integer.toString(PolicyManifest.FORMAT_VERSION));
        m.put(PolicyManifest.KEY_NAME, program.root());
        m.put(PolicyManifest.KEY_SOURCE_SHA256, sourceSha256);
        m.put(PolicyManifest.KEY_COMPILER_VERSION, dev.kvpc.runtime.load.KvpcVersion.current());
        m.put("shape.layers", Integer.toString(program.shape().layers()));
        m.put("shape.heads", Integer.toString(program.shape().heads()));
        m.put("shape.kv-heads", Integer.toString(program.shape().kvHeads()));
        m.put("shape.head-dim", Integer.toString(program.shape().headDim()));
        m.put(PolicyManifest.KEY_EVIDENCE, String.join(",", evidence));
        return m;
    }

    /** The jar's bytes; {@code manifest} holds every key but {@code entry.class}. */
    public static byte[] jar(Specialized program, String source, Map<String, String> manifest) {
        JvmPolicies compiled = JvmPolicies.compile(program, source);
        StringBuilder text = new StringBuilder();
        Map<String, String> keys = new LinkedHashMap<>(manifest);
        keys.put(PolicyManifest.KEY_ENTRY_CLASS, entryClassName(program).replace('/', '.'));
        for (var e : keys.entrySet()) text.append(e.getKey()).append('=').append(e.getValue()).append('\n');
        PolicyManifest m;
        try {
            m = PolicyManifest.parse(text.toString());
        } catch (PolicyLoadException e) {
            throw new IllegalArgumentException("manifest: " + e.getMessage(), e);
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ZipOutputStream zip = new ZipOutputStream(bytes)) {
            put(zip, PolicyManifest.PATH, m.toBytes());
            for (var e : classes(compiled).entrySet()) put(zip, e.getKey() + ".class", e.getValue());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteArray();
    }

    private static void put(ZipOutputStream zip, String name, byte[] data) throws IOException {
        ZipEntry e = new ZipEntry(name);
        e.setTime(FIXED_TIME);
        zip.putNextEntry(e);
        zip.write(data);
        zip.closeEntry();
    }

    /** The entry class: {@code program()} returns the IR text, {@code laneClass(c)} a new lane class {@code c}. */
    static byte[] entryClass(Specialized program) {
        String name = entryClassName(program);
        ClassWriter cw = new ClassWriter(ClassWriter.COMPUTE_FRAMES | ClassWriter.COMPUTE_MAXS) {
            @Override
            protected String getCommonSuperClass(String a, String b) {
                return "java/lang/Object";
            }
        };
        cw.visit(V21, ACC_PUBLIC | ACC_FINAL | ACC_SUPER, name, null, "java/lang/Object", new String[] {Type.getInternalName(CompiledPolicy.class)});
        cw.visitSource(program.root() + ".kvp", null);
        MethodVisitor init = cw.visitMethod(ACC_PUBLIC, "<init>", "()V", null, null);
        init.visitCode();
        init.visitVarInsn(ALOAD, 0);
        init.visitMethodInsn(INVOKESPECIAL, "java/lang/Object", "<init>", "()V", false);
        init.visitInsn(RETURN);
        init.visitMaxs(0, 0);
        init.visitEnd();

        // the IR text in constant-pool sized pieces
        String ir = program.print();
        MethodVisitor mv = cw.visitMethod(ACC_PUBLIC, "program", "()Ljava/lang/String;", null, null);
        mv.visitCode();
        mv.visitTypeInsn(NEW, "java/lang/StringBuilder");
        mv.visitInsn(DUP);
        mv.visitMethodInsn(INVOKESPECIAL, "java/lang/StringBuilder", "<init>", "()V", false);
        for (int i = 0; i < ir.length(); i += CHUNK) {
            mv.visitLdcInsn(ir.substring(i, Math.min(ir.length(), i + CHUNK)));
            mv.visitMethodInsn(INVOKEVIRTUAL, "java/lang/StringBuilder", "append", "(Ljava/lang/String;)Ljava/lang/StringBuilder;", false);
        }
        mv.visitMethodInsn(INVOKEVIRTUAL, "java/lang/StringBuilder", "toString", "()Ljava/lang/String;", false);
        mv.visitInsn(ARETURN);
        mv.visitMaxs(0, 0);
        mv.visitEnd();

        int n = program.classes().size();
        mv = cw.visitMethod(ACC_PUBLIC, "laneClasses", "()I", null, null);
        mv.visitCode();
        mv.visitLdcInsn(n);
        mv.visitInsn(IRETURN);
        mv.visitMaxs(0, 0);
        mv.visitEnd();

        if (hasVariant(program)) {
            String vc = variantClassName(program);
            mv = cw.visitMethod(ACC_PUBLIC, "variant", "()L" + Type.getInternalName(dev.kvpc.runtime.AttentionVariant.class) + ";", null, null);
            mv.visitCode();
            mv.visitTypeInsn(NEW, vc);
            mv.visitInsn(DUP);
            mv.visitMethodInsn(INVOKESPECIAL, vc, "<init>", "()V", false);
            mv.visitInsn(ARETURN);
            mv.visitMaxs(0, 0);
            mv.visitEnd();
        }

        String lc = Type.getInternalName(CompiledLaneClass.class);
        mv = cw.visitMethod(ACC_PUBLIC, "laneClass", "(I)L" + lc + ";", null, null);
        mv.visitCode();
        Label bad = new Label();
        Label[] cases = new Label[n];
        for (int i = 0; i < n; i++) cases[i] = new Label();
        mv.visitVarInsn(ILOAD, 1);
        if (n > 0) mv.visitTableSwitchInsn(0, n - 1, bad, cases);
        for (int i = 0; i < n; i++) {
            mv.visitLabel(cases[i]);
            String cls = JvmPolicies.laneClassName(program, i);
            mv.visitTypeInsn(NEW, cls);
            mv.visitInsn(DUP);
            mv.visitMethodInsn(INVOKESPECIAL, cls, "<init>", "()V", false);
            mv.visitInsn(ARETURN);
        }
        mv.visitLabel(bad);
        mv.visitTypeInsn(NEW, "java/lang/IllegalArgumentException");
        mv.visitInsn(DUP);
        mv.visitLdcInsn(program.root() + " has " + n + " lane classes");
        mv.visitMethodInsn(INVOKESPECIAL, "java/lang/IllegalArgumentException", "<init>", "(Ljava/lang/String;)V", false);
        mv.visitInsn(ATHROW);
        mv.visitMaxs(0, 0);
        mv.visitEnd();
        cw.visitEnd();
        return cw.toByteArray();
    }
}
