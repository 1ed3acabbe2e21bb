package dev.kvpc.runtime.load;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;

import org.objectweb.asm.ClassWriter;
import org.objectweb.asm.FieldVisitor;
import org.objectweb.asm.MethodVisitor;
import org.objectweb.asm.Opcodes;

/** Builds class files with ASM and policy jars with {@link JarOutputStream}, for the loader tests. */
final class TestJars implements Opcodes {
    private TestJars() {
    }

    static final String SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    /** The host model most tests load for. */
    static final ModelShapeSpec HOST = new ModelShapeSpec(2, 8, 4, 64);

    // ---------------------------------------------------------------------------------------------- classes

    /** A class to build: {@code public class name extends superName implements interfaces}, with members. */
    static final class ClassBuilder {
        private final String name;
        private String superName = "java/lang/Object";
        private String[] interfaces = {};
        private int access = ACC_PUBLIC | ACC_SUPER;
        private boolean constructor = true;
        private final List<Consumer<ClassWriter>> members = new ArrayList<>();

        private ClassBuilder(String name) {
            this.name = name;
        }

        ClassBuilder extend(String superName) {
            this.superName = superName;
            return this;
        }

        ClassBuilder implement(String... interfaces) {
            this.interfaces = interfaces;
            return this;
        }

        ClassBuilder access(int access) {
            this.access = access;
            return this;
        }

        /** No default constructor (interfaces, or a class that declares its own). */
        ClassBuilder noConstructor() {
            this.constructor = false;
            return this;
        }

        ClassBuilder field(int access, String fieldName, String desc) {
            members.add(cw -> {
                FieldVisitor fv = cw.visitField(access, fieldName, desc, null, null);
                fv.visitEnd();
            });
            return this;
        }

        /** A method whose code is {@code body} (which must end with a return or throw); no code if body is null. */
        ClassBuilder method(int access, String methodName, String desc, Consumer<MethodVisitor> body) {
            members.add(cw -> {
                MethodVisitor mv = cw.visitMethod(access, methodName, desc, null, null);
                if (body != null) {
                    mv.visitCode();
                    body.accept(mv);
                    mv.visitMaxs(0, 0);
                }
                mv.visitEnd();
            });
            return this;
        }

        /** A public static method. */
        ClassBuilder staticMethod(String methodName, String desc, Consumer<MethodVisitor> body) {
            return method(ACC_PUBLIC | ACC_STATIC, methodName, desc, body);
        }

        byte[] build() {
            ClassWriter cw = new ClassWriter(ClassWriter.COMPUTE_FRAMES) {
                @Override
                protected String getCommonSuperClass(String a, String b) {
                    try {
                        return super.getCommonSuperClass(a, b);
                    } catch (RuntimeException e) { // one of them is a class of the jar being built
                        return "java/lang/Object";
                    }
                }
            };
            cw.visit(V25, access, name, null, superName, interfaces);
            if (constructor && (access & ACC_INTERFACE) == 0) {
                MethodVisitor mv = cw.visitMethod(ACC_PUBLIC, "<init>", "()V", null, null);
                mv.visitCode();
                mv.visitVarInsn(ALOAD, 0);
                mv.visitMethodInsn(INVOKESPECIAL, superName, "<init>", "()V", false);
                mv.visitInsn(RETURN);
                mv.visitMaxs(0, 0);
                mv.visitEnd();
            }
            for (Consumer<ClassWriter> m : members) m.accept(cw);
            cw.visitEnd();
            return cw.toByteArray();
        }
    }

    static ClassBuilder cls(String name) {
        return new ClassBuilder(name);
    }

    /** A class with a default constructor and one public static method {@code method desc} doing {@code body}. */
    static byte[] oneMethod(String name, String method, String desc, Consumer<MethodVisitor> body) {
        return cls(name).staticMethod(method, desc, body).build();
    }

    /** One class by internal name. */
    static Map<String, byte[]> classes(String name, byte[] bytes) {
        Map<String, byte[]> m = new LinkedHashMap<>();
        m.put(name, bytes);
        return m;
    }

    // ---------------------------------------------------------------------------------------------- a benign policy

    static final String BENIGN = "gen/Benign";
    static final String HELPER = "gen/Helper";

    /**
     * A benign policy of two classes: {@code gen/Benign} (the entry) and {@code gen/Helper}. Benign has a static
     * initialiser ({@code SCALE = (float) Math.sqrt(4)}) and static methods:
     * <ul>
     *   <li>{@code score(float[])}: sorted copy c; {@code |c[0]| + c[last] * SCALE + new Helper(3).twice()};</li>
     *   <li>{@code describe(int)}: {@code "n=" + n} (string concatenation through invokedynamic);</li>
     *   <li>{@code squares(int)}: {@code Arrays.setAll(new int[n], Benign::sq)} (a lambda);</li>
     *   <li>{@code viaSegment(float[])}: writes 5 at index 0 and reads index 1 through a MemorySegment of the array,
     *       returns their sum;</li>
     *   <li>{@code checked(int)}: throws IllegalArgumentException for a negative argument, else returns it.</li>
     * </ul>
     */
    static Map<String, byte[]> benignClasses() {
        Map<String, byte[]> m = new LinkedHashMap<>();
        m.put(BENIGN, benign());
        m.put(HELPER, cls(HELPER).noConstructor()
                .field(ACC_PRIVATE | ACC_FINAL, "x", "I")
                .method(ACC_PUBLIC, "<init>", "(I)V", mv -> {
                    mv.visitVarInsn(ALOAD, 0);
                    mv.visitMethodInsn(INVOKESPECIAL, "java/lang/Object", "<init>", "()V", false);
                    mv.visitVarInsn(ALOAD, 0);
                    mv.visitVarInsn(ILOAD, 1);
                    mv.visitFieldInsn(PUTFIELD, HELPER, "x", "I");
                    mv.visitInsn(RETURN);
                })
                .method(ACC_PUBLIC, "twice", "()F", mv -> {
                    mv.visitInsn(ICONST_2);
                    mv.visitVarInsn(ALOAD, 0);
                    mv.visitFieldInsn(GETFIELD, HELPER, "x", "I");
                    mv.visitInsn(IMUL);
                    mv.visitInsn(I2F);
                    mv.visitInsn(FRETURN);
                })
                .method(ACC_PUBLIC, "hashCode", "()I", mv -> { // overrides Object.hashCode, calls the super one
                    mv.visitVarInsn(ALOAD, 0);
                    mv.visitMethodInsn(INVOKESPECIAL, "java/lang/Object", "hashCode", "()I", false);
                    mv.visitInsn(IRETURN);
                })
                .build());
        return m;
    }

    private static byte[] benign() {
        String b = BENIGN;
        return cls(b)
                .field(ACC_PRIVATE | ACC_STATIC, "SCALE", "F")
                .method(ACC_STATIC, "<clinit>", "()V", mv -> {
                    mv.visitLdcInsn(4.0);
                    mv.visitMethodInsn(INVOKESTATIC, "java/lang/Math", "sqrt", "(D)D", false);
                    mv.visitInsn(D2F);
                    mv.visitFieldInsn(PUTSTATIC, b, "SCALE", "F");
                    mv.visitInsn(RETURN);
                })
                .staticMethod("score", "([F)F", mv -> {
                    mv.visitVarInsn(ALOAD, 0);
                    mv.visitVarInsn(ALOAD, 0);
                    mv.visitInsn(ARRAYLENGTH);
                    mv.visitMethodInsn(INVOKESTATIC, "java/util/Arrays", "copyOf", "([FI)[F", false);
                    mv.visitVarInsn(ASTORE, 1);
                    mv.visitVarInsn(ALOAD, 1);
                    mv.visitMethodInsn(INVOKESTATIC, "java/util/Arrays", "sort", "([F)V", false);
                    mv.visitVarInsn(ALOAD, 1);
                    mv.visitInsn(ICONST_0);
                    mv.visitInsn(FALOAD);
                    mv.visitMethodInsn(INVOKESTATIC, "java/lang/Math", "abs", "(F)F", false);
                    mv.visitVarInsn(ALOAD, 1);
                    mv.visitVarInsn(ALOAD, 1);
                    mv.visitInsn(ARRAYLENGTH);
                    mv.visitInsn(ICONST_1);
                    mv.visitInsn(ISUB);
                    mv.visitInsn(FALOAD);
                    mv.visitFieldInsn(GETSTATIC, b, "SCALE", "F");
                    mv.visitInsn(FMUL);
                    mv.visitInsn(FADD);
                    mv.visitTypeInsn(NEW, HELPER);
                    mv.visitInsn(DUP);
                    mv.visitInsn(ICONST_3);
                    mv.visitMethodInsn(INVOKESPECIAL, HELPER, "<init>", "(I)V", false);
                    mv.visitMethodInsn(INVOKEVIRTUAL, HELPER, "twice", "()F", false);
                    mv.visitInsn(FADD);
                    mv.visitInsn(FRETURN);
                })
                .staticMethod("describe", "(I)Ljava/lang/String;", mv -> {
                    mv.visitVarInsn(ILOAD, 0);
                    mv.visitInvokeDynamicInsn("makeConcatWithConstants", "(I)Ljava/lang/String;", CONCAT, "n=\u0001");
                    mv.visitInsn(ARETURN);
                })
                .staticMethod("squares", "(I)[I", mv -> {
                    mv.visitVarInsn(ILOAD, 0);
                    mv.visitIntInsn(NEWARRAY, T_INT);
                    mv.visitVarInsn(ASTORE, 1);
                    mv.visitVarInsn(ALOAD, 1);
                    mv.visitInvokeDynamicInsn("applyAsInt", "()Ljava/util/function/IntUnaryOperator;", LAMBDA,
                            org.objectweb.asm.Type.getType("(I)I"), new org.objectweb.asm.Handle(H_INVOKESTATIC, b, "sq", "(I)I", false),
                            org.objectweb.asm.Type.getType("(I)I"));
                    mv.visitMethodInsn(INVOKESTATIC, "java/util/Arrays", "setAll", "([ILjava/util/function/IntUnaryOperator;)V", false);
                    mv.visitVarInsn(ALOAD, 1);
                    mv.visitInsn(ARETURN);
                })
                .method(ACC_PRIVATE | ACC_STATIC, "sq", "(I)I", mv -> {
                    mv.visitVarInsn(ILOAD, 0);
                    mv.visitVarInsn(ILOAD, 0);
                    mv.visitInsn(IMUL);
                    mv.visitInsn(IRETURN);
                })
                .staticMethod("viaSegment", "([F)F", mv -> {
                    String seg = "java/lang/foreign/MemorySegment", layout = "Ljava/lang/foreign/ValueLayout$OfFloat;";
                    mv.visitVarInsn(ALOAD, 0);
                    mv.visitMethodInsn(INVOKESTATIC, seg, "ofArray", "([F)Ljava/lang/foreign/MemorySegment;", true);
                    mv.visitVarInsn(ASTORE, 1);
                    mv.visitVarInsn(ALOAD, 1);
                    mv.visitFieldInsn(GETSTATIC, "java/lang/foreign/ValueLayout", "JAVA_FLOAT", layout);
                    mv.visitInsn(LCONST_0);
                    mv.visitLdcInsn(5.0f);
                    mv.visitMethodInsn(INVOKEINTERFACE, seg, "set", "(" + layout + "JF)V", true);
                    mv.visitVarInsn(ALOAD, 1);
                    mv.visitFieldInsn(GETSTATIC, "java/lang/foreign/ValueLayout", "JAVA_FLOAT", layout);
                    mv.visitLdcInsn(4L);
                    mv.visitMethodInsn(INVOKEINTERFACE, seg, "get", "(" + layout + "J)F", true);
                    mv.visitVarInsn(ALOAD, 0);
                    mv.visitInsn(ICONST_0);
                    mv.visitInsn(FALOAD);
                    mv.visitInsn(FADD);
                    mv.visitInsn(FRETURN);
                })
                .staticMethod("checked", "(I)I", mv -> {
                    org.objectweb.asm.Label ok = new org.objectweb.asm.Label();
                    mv.visitVarInsn(ILOAD, 0);
                    mv.visitJumpInsn(IFGE, ok);
                    mv.visitTypeInsn(NEW, "java/lang/IllegalArgumentException");
                    mv.visitInsn(DUP);
                    mv.visitLdcInsn("negative");
                    mv.visitMethodInsn(INVOKESPECIAL, "java/lang/IllegalArgumentException", "<init>", "(Ljava/lang/String;)V", false);
                    mv.visitInsn(ATHROW);
                    mv.visitLabel(ok);
                    mv.visitVarInsn(ILOAD, 0);
                    mv.visitInsn(IRETURN);
                })
                .build();
    }

    /** The string concatenation bootstrap. */
    static final org.objectweb.asm.Handle CONCAT = new org.objectweb.asm.Handle(H_INVOKESTATIC, "java/lang/invoke/StringConcatFactory",
            "makeConcatWithConstants", "(Ljava/lang/invoke/MethodHandles$Lookup;Ljava/lang/String;Ljava/lang/invoke/MethodType;"
            + "Ljava/lang/String;[Ljava/lang/Object;)Ljava/lang/invoke/CallSite;", false);
    /** The lambda bootstrap. */
    static final org.objectweb.asm.Handle LAMBDA = new org.objectweb.asm.Handle(H_INVOKESTATIC, "java/lang/invoke/LambdaMetafactory",
            "metafactory", "(Ljava/lang/invoke/MethodHandles$Lookup;Ljava/lang/String;Ljava/lang/invoke/MethodType;"
            + "Ljava/lang/invoke/MethodType;Ljava/lang/invoke/MethodHandle;Ljava/lang/invoke/MethodType;)Ljava/lang/invoke/CallSite;", false);

    // ---------------------------------------------------------------------------------------------- jars

    /** A manifest for policy {@code policy} whose entry class is {@code entryInternalName}, fitting any model. */
    static PolicyManifest manifest(String policy, String entryInternalName) {
        return manifest(policy, entryInternalName, ShapeConstraints.ANY);
    }

    static PolicyManifest manifest(String policy, String entryInternalName, ShapeConstraints shape) {
        return PolicyManifest.of(policy, SHA, KvpcVersion.current(), shape, Set.of("attn", "observed-queries:32"),
                Map.of("kv", 512L, "state", 8L), entryInternalName.replace('/', '.'), new PolicyManifest.Prediction(4096, "f16"));
    }

    /** A policy jar {@code dir/file} holding {@code classes} (by internal name), its entry the first of them. */
    static Path policyJar(Path dir, String file, Map<String, byte[]> classes) throws IOException {
        String entry = classes.keySet().iterator().next();
        return writeJar(dir.resolve(file), manifest(file.replace(".jar", ""), entry).toBytes(), classes);
    }

    /** A jar with these manifest bytes (none if null) and classes, plus a JAR MANIFEST.MF and a resource. */
    static Path writeJar(Path file, byte[] manifest, Map<String, byte[]> classes) throws IOException {
        try (OutputStream os = Files.newOutputStream(file); JarOutputStream jar = new JarOutputStream(os)) {
            jar.putNextEntry(new JarEntry("META-INF/MANIFEST.MF"));
            jar.write("Manifest-Version: 1.0\r\n\r\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            jar.closeEntry();
            if (manifest != null) {
                jar.putNextEntry(new JarEntry(PolicyManifest.PATH));
                jar.write(manifest);
                jar.closeEntry();
            }
            for (Map.Entry<String, byte[]> e : classes.entrySet()) {
                jar.putNextEntry(new JarEntry(e.getKey() + ".class"));
                jar.write(e.getValue());
                jar.closeEntry();
            }
            jar.putNextEntry(new JarEntry("README.txt"));
            jar.write("not a class".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            jar.closeEntry();
        }
        return file;
    }
}
