package dev.kvpc.runtime.load;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import org.junit.jupiter.api.Test;
import org.objectweb.asm.Handle;
import org.objectweb.asm.Label;
import org.objectweb.asm.MethodVisitor;
import org.objectweb.asm.Opcodes;
import org.objectweb.asm.Type;

/** The verifier's rules one by one, on class files built in memory (no jars). */
class BytecodeVerifierTest implements Opcodes {
    private final BytecodeVerifier verifier = new BytecodeVerifier(getClass().getClassLoader());

    private List<String> check(Map<String, byte[]> classes) {
        return verifier.check(classes);
    }

    /** Problems of one class {@code gen/T} whose static method {@code m desc} is {@code body}. */
    private List<String> method(String desc, Consumer<MethodVisitor> body) {
        return check(TestJars.classes("gen/T", TestJars.oneMethod("gen/T", "m", desc, body)));
    }

    private void allowed(String desc, Consumer<MethodVisitor> body) {
        assertEquals(List.of(), method(desc, body));
    }

    private void refused(String expected, String desc, Consumer<MethodVisitor> body) {
        List<String> p = method(desc, body);
        assertEquals(1, p.size(), () -> "one refusal expected: " + p);
        assertEquals(expected, p.getFirst());
    }

    private static String calls(String desc, String call, String why) {
        return "refused: class gen/T, method m" + desc + " calls " + call + ", which policy code may not call" + (why == null ? "" : " (" + why + ")");
    }

    /** A class {@code gen/T} with one static method {@code m desc}, written as given: no maximums or frames computed. */
    private static byte[] raw(String desc, int maxStack, int maxLocals, Consumer<MethodVisitor> body) {
        org.objectweb.asm.ClassWriter cw = new org.objectweb.asm.ClassWriter(0);
        cw.visit(V21, ACC_PUBLIC | ACC_SUPER, "gen/T", null, "java/lang/Object", null);
        MethodVisitor mv = cw.visitMethod(ACC_PUBLIC | ACC_STATIC, "m", desc, null, null);
        mv.visitCode();
        body.accept(mv);
        mv.visitMaxs(maxStack, maxLocals);
        mv.visitEnd();
        cw.visitEnd();
        return cw.toByteArray();
    }

    /**
     * Code the JVM's own verifier would reject when the class is first linked, inside the host, with a VerifyError
     * (found by the reliability run in mutated jars: kvpc run ended with a raw trace): refused at load instead.
     */
    @Test
    void codeTheJvmWouldRejectIsRefused() {
        List<String> underflow = check(Map.of("gen/T", raw("()J", 2, 0, mv -> {
            mv.visitInsn(LREM);
            mv.visitInsn(LRETURN);
        })));
        assertEquals(1, underflow.size(), underflow::toString);
        assertTrue(underflow.getFirst().startsWith("refused: class gen/T, method m()J does not verify: "), underflow.getFirst());
        List<String> kinds = check(Map.of("gen/T", raw("(D)D", 4, 2, mv -> {
            mv.visitVarInsn(DLOAD, 0);
            mv.visitVarInsn(DLOAD, 0);
            mv.visitInsn(ISHL);
            mv.visitInsn(I2D);
            mv.visitInsn(DRETURN);
        })));
        assertEquals(1, kinds.size(), kinds::toString);
        assertTrue(kinds.getFirst().startsWith("refused: class gen/T, method m(D)D does not verify: "), kinds.getFirst());
        // maximums too small are no matter: the loader computes them again when it adds the watchdog (withTicks)
    }

    // ---------------------------------------------------------------------------------------------- allowed

    @Test
    void benignPolicyPasses() {
        assertEquals(List.of(), check(TestJars.benignClasses()));
    }

    @Test
    void vectorApiPasses() {
        String fv = "jdk/incubator/vector/FloatVector", species = "Ljdk/incubator/vector/VectorSpecies;";
        allowed("([F)F", mv -> {
            mv.visitFieldInsn(GETSTATIC, fv, "SPECIES_PREFERRED", species);
            mv.visitVarInsn(ALOAD, 0);
            mv.visitInsn(ICONST_0);
            mv.visitMethodInsn(INVOKESTATIC, fv, "fromArray", "(" + species + "[FI)Ljdk/incubator/vector/FloatVector;", false);
            mv.visitInsn(DUP);
            mv.visitMethodInsn(INVOKEVIRTUAL, fv, "mul", "(Ljdk/incubator/vector/Vector;)Ljdk/incubator/vector/FloatVector;", false);
            mv.visitFieldInsn(GETSTATIC, "jdk/incubator/vector/VectorOperators", "ADD", "Ljdk/incubator/vector/VectorOperators$Associative;");
            mv.visitMethodInsn(INVOKEVIRTUAL, fv, "reduceLanes", "(Ljdk/incubator/vector/VectorOperators$Associative;)F", false);
            mv.visitInsn(FRETURN);
        });
    }

    @Test
    void memoryThroughAGivenArenaPasses() {
        allowed("(Ljava/lang/foreign/Arena;)J", mv -> {
            mv.visitVarInsn(ALOAD, 0);
            mv.visitFieldInsn(GETSTATIC, "java/lang/foreign/ValueLayout", "JAVA_INT", "Ljava/lang/foreign/ValueLayout$OfInt;");
            mv.visitLdcInsn(16L);
            mv.visitMethodInsn(INVOKEINTERFACE, "java/lang/foreign/Arena", "allocate",
                    "(Ljava/lang/foreign/MemoryLayout;J)Ljava/lang/foreign/MemorySegment;", true);
            mv.visitInsn(DUP);
            mv.visitFieldInsn(GETSTATIC, "java/lang/foreign/ValueLayout", "JAVA_INT", "Ljava/lang/foreign/ValueLayout$OfInt;");
            mv.visitLdcInsn(8L);
            mv.visitInsn(ICONST_3);
            mv.visitMethodInsn(INVOKEINTERFACE, "java/lang/foreign/MemorySegment", "setAtIndex", "(Ljava/lang/foreign/ValueLayout$OfInt;JI)V", true);
            mv.visitLdcInsn(4L);
            mv.visitLdcInsn(8L);
            mv.visitMethodInsn(INVOKEINTERFACE, "java/lang/foreign/MemorySegment", "asSlice", "(JJ)Ljava/lang/foreign/MemorySegment;", true);
            mv.visitMethodInsn(INVOKEINTERFACE, "java/lang/foreign/MemorySegment", "byteSize", "()J", true);
            mv.visitInsn(LRETURN);
        });
    }

    @Test
    void numbersTextArraysAndExceptionsPass() {
        allowed("([I)Ljava/lang/String;", mv -> {
            mv.visitVarInsn(ALOAD, 0);
            mv.visitMethodInsn(INVOKEVIRTUAL, "[I", "clone", "()Ljava/lang/Object;", false);
            mv.visitTypeInsn(CHECKCAST, "[I");
            mv.visitInsn(POP);
            mv.visitFieldInsn(GETSTATIC, "java/lang/Integer", "MAX_VALUE", "I");
            mv.visitMethodInsn(INVOKESTATIC, "java/lang/Integer", "bitCount", "(I)I", false);
            mv.visitMethodInsn(INVOKESTATIC, "java/lang/Integer", "valueOf", "(I)Ljava/lang/Integer;", false);
            mv.visitMethodInsn(INVOKEVIRTUAL, "java/lang/Integer", "floatValue", "()F", false);
            mv.visitMethodInsn(INVOKESTATIC, "java/lang/Float", "floatToRawIntBits", "(F)I", false);
            mv.visitInsn(POP);
            mv.visitTypeInsn(NEW, "java/util/BitSet");
            mv.visitInsn(DUP);
            mv.visitMethodInsn(INVOKESPECIAL, "java/util/BitSet", "<init>", "()V", false);
            mv.visitInsn(ICONST_3);
            mv.visitMethodInsn(INVOKEVIRTUAL, "java/util/BitSet", "set", "(I)V", false);
            mv.visitMethodInsn(INVOKESTATIC, "java/nio/ByteOrder", "nativeOrder", "()Ljava/nio/ByteOrder;", false);
            mv.visitInsn(POP);
            Label ok = new Label();
            mv.visitVarInsn(ALOAD, 0);
            mv.visitInsn(ARRAYLENGTH);
            mv.visitJumpInsn(IFNE, ok);
            mv.visitTypeInsn(NEW, "java/lang/IllegalStateException");
            mv.visitInsn(DUP);
            mv.visitMethodInsn(INVOKESPECIAL, "java/lang/IllegalStateException", "<init>", "()V", false);
            mv.visitInsn(ATHROW);
            mv.visitLabel(ok);
            mv.visitTypeInsn(NEW, "java/lang/StringBuilder");
            mv.visitInsn(DUP);
            mv.visitMethodInsn(INVOKESPECIAL, "java/lang/StringBuilder", "<init>", "()V", false);
            mv.visitLdcInsn("x");
            mv.visitMethodInsn(INVOKEVIRTUAL, "java/lang/String", "length", "()I", false);
            mv.visitMethodInsn(INVOKEVIRTUAL, "java/lang/StringBuilder", "append", "(I)Ljava/lang/StringBuilder;", false);
            mv.visitMethodInsn(INVOKEVIRTUAL, "java/lang/StringBuilder", "toString", "()Ljava/lang/String;", false);
            mv.visitInsn(ARETURN);
        });
    }

    @Test
    void objectMethodsInheritedByJarClassesPass() {
        byte[] c = TestJars.cls("gen/T").method(ACC_PUBLIC, "m", "()I", mv -> {
            mv.visitVarInsn(ALOAD, 0);
            mv.visitMethodInsn(INVOKEVIRTUAL, "gen/T", "hashCode", "()I", false); // resolves to java/lang/Object
            mv.visitVarInsn(ALOAD, 0);
            mv.visitMethodInsn(INVOKEVIRTUAL, "gen/T", "toString", "()Ljava/lang/String;", false);
            mv.visitMethodInsn(INVOKEVIRTUAL, "java/lang/String", "length", "()I", false);
            mv.visitInsn(IADD);
            mv.visitLdcInsn(Type.getObjectType("gen/T")); // a class literal of the jar's own class
            mv.visitInsn(POP);
            mv.visitInsn(IRETURN);
        }).build();
        assertEquals(List.of(), check(TestJars.classes("gen/T", c)));
    }

    @Test
    void recordMethodsBootstrapPassesForTheRecordsOwnFields() {
        Handle bsm = new Handle(H_INVOKESTATIC, "java/lang/runtime/ObjectMethods", "bootstrap",
                "(Ljava/lang/invoke/MethodHandles$Lookup;Ljava/lang/String;Ljava/lang/invoke/TypeDescriptor;Ljava/lang/Class;"
                        + "Ljava/lang/String;[Ljava/lang/invoke/MethodHandle;)Ljava/lang/Object;", false);
        byte[] good = record("gen/Pair", bsm, new Object[] {Type.getObjectType("gen/Pair"), "a",
                new Handle(H_GETFIELD, "gen/Pair", "a", "I", false)});
        assertEquals(List.of(), check(TestJars.classes("gen/Pair", good)));
        byte[] bad = record("gen/Pair", bsm, new Object[] {Type.getObjectType("gen/Pair"), "a",
                new Handle(H_INVOKESTATIC, "java/lang/System", "exit", "(I)V", false)});
        List<String> p = check(TestJars.classes("gen/Pair", bad));
        assertEquals(1, p.size(), p::toString);
        assertTrue(p.getFirst().endsWith("which policy code may not use (record methods must read the record's own fields)"), p.getFirst());
    }

    private static byte[] record(String name, Handle bsm, Object[] args) {
        return TestJars.cls(name).extend("java/lang/Record").access(ACC_PUBLIC | ACC_FINAL | ACC_SUPER)
                .field(ACC_PRIVATE | ACC_FINAL, "a", "I")
                .method(ACC_PUBLIC | ACC_FINAL, "toString", "()Ljava/lang/String;", mv -> {
                    mv.visitVarInsn(ALOAD, 0);
                    mv.visitInvokeDynamicInsn("toString", "(L" + name + ";)Ljava/lang/String;", bsm, args);
                    mv.visitInsn(ARETURN);
                }).build();
    }

    @Test
    void theRuntimeApiPasses() {
        // LaneContext is read from the API loader's class files; epoch() is declared there
        String ctx = "dev/kvpc/runtime/policy/LaneContext";
        allowed("(L" + ctx + ";)I", mv -> {
            mv.visitFieldInsn(GETSTATIC, "dev/kvpc/runtime/AttentionVariant$Normalize", "SOFTMAX", "Ldev/kvpc/runtime/AttentionVariant$Normalize;");
            mv.visitInsn(POP);
            mv.visitVarInsn(ALOAD, 0);
            mv.visitMethodInsn(INVOKEINTERFACE, ctx, "epoch", "()I", true);
            mv.visitVarInsn(ALOAD, 0);
            mv.visitMethodInsn(INVOKEINTERFACE, ctx, "hashCode", "()I", true);
            mv.visitInsn(IADD);
            mv.visitInsn(IRETURN);
        });
        refused(calls("(L" + ctx + ";)V", ctx + ".notify()V", "policy code must not lock or wait"), "(L" + ctx + ";)V", mv -> {
            mv.visitVarInsn(ALOAD, 0);
            mv.visitMethodInsn(INVOKEINTERFACE, ctx, "notify", "()V", true);
            mv.visitInsn(RETURN);
        });
    }

    /** The rest of the runtime is not API, whatever its package: named class by class, not by package. */
    @Test
    void theRestOfTheRuntimeIsRefused() {
        refused(calls("()I", "dev/kvpc/runtime/lane/QuantSpec.toString()Ljava/lang/String;", null), "()I", mv -> {
            mv.visitInsn(ACONST_NULL);
            mv.visitMethodInsn(INVOKEVIRTUAL, "dev/kvpc/runtime/lane/QuantSpec", "toString", "()Ljava/lang/String;", false);
            mv.visitMethodInsn(INVOKEVIRTUAL, "java/lang/String", "length", "()I", false);
            mv.visitInsn(IRETURN);
        });
        refused(calls("()V", "dev/kvpc/runtime/NoSuchApi.go()V", null), "()V", mv -> {
            mv.visitMethodInsn(INVOKESTATIC, "dev/kvpc/runtime/NoSuchApi", "go", "()V", false);
            mv.visitInsn(RETURN);
        });
    }

    @Test
    void runtimeMembersAreJudgedByTheClassThatDeclaresThem() {
        BytecodeVerifier v = new BytecodeVerifier(getClass().getClassLoader(),
                n -> n.equals("dev/kvpc/runtime/load/ApiFixture"));
        String fixture = "dev/kvpc/runtime/load/ApiFixture";
        byte[] ok = TestJars.oneMethod("gen/T", "m", "()I", mv -> {
            mv.visitMethodInsn(INVOKESTATIC, fixture, "answer", "()I", false);
            mv.visitInsn(IRETURN);
        });
        assertEquals(List.of(), v.check(TestJars.classes("gen/T", ok)));
        byte[] bad = TestJars.oneMethod("gen/T", "m", "(L" + fixture + ";)V", mv -> {
            mv.visitVarInsn(ALOAD, 0);
            mv.visitMethodInsn(INVOKEVIRTUAL, fixture, "printStackTrace", "()V", false);
            mv.visitInsn(RETURN);
        });
        assertEquals(List.of("refused: class gen/T, method m(L" + fixture + ";)V calls " + fixture
                + ".printStackTrace()V (declared in java/lang/Throwable), which policy code may not call"),
                v.check(TestJars.classes("gen/T", bad)));
        // A jar class extending the API class inherits the same method: judged the same way.
        byte[] sub = TestJars.cls("gen/Sub").extend(fixture).method(ACC_PUBLIC, "m", "()V", mv -> {
            mv.visitVarInsn(ALOAD, 0);
            mv.visitMethodInsn(INVOKEVIRTUAL, "gen/Sub", "printStackTrace", "()V", false);
            mv.visitInsn(RETURN);
        }).build();
        assertEquals(List.of("refused: class gen/Sub, method m()V calls gen/Sub.printStackTrace()V (declared in java/lang/Throwable), "
                + "which policy code may not call"), v.check(TestJars.classes("gen/Sub", sub)));
    }

    // ---------------------------------------------------------------------------------------------- refused

    @Test
    void whitelistedClassesRefuseTheirDangerousMembers() {
        refused(calls("([F)V", "java/util/Arrays.parallelSort([F)V", "runs on the common fork-join pool (threads)"), "([F)V", mv -> {
            mv.visitVarInsn(ALOAD, 0);
            mv.visitMethodInsn(INVOKESTATIC, "java/util/Arrays", "parallelSort", "([F)V", false);
            mv.visitInsn(RETURN);
        });
        refused(calls("()V", "java/lang/Integer.getInteger(Ljava/lang/String;)Ljava/lang/Integer;", "reads a system property"), "()V", mv -> {
            mv.visitLdcInsn("user.home");
            mv.visitMethodInsn(INVOKESTATIC, "java/lang/Integer", "getInteger", "(Ljava/lang/String;)Ljava/lang/Integer;", false);
            mv.visitInsn(POP);
            mv.visitInsn(RETURN);
        });
        refused(calls("()V", "java/util/Arrays.asList([Ljava/lang/Object;)Ljava/util/List;", "its signature uses java/util/List"), "()V", mv -> {
            mv.visitInsn(ICONST_0);
            mv.visitTypeInsn(ANEWARRAY, "java/lang/Object");
            mv.visitMethodInsn(INVOKESTATIC, "java/util/Arrays", "asList", "([Ljava/lang/Object;)Ljava/util/List;", false);
            mv.visitInsn(POP);
            mv.visitInsn(RETURN);
        });
        refused(calls("()V", "java/lang/String.intern()Ljava/lang/String;",
                "java/lang/String allows only length, charAt, equals, hashCode, concat, valueOf, isEmpty, compareTo, toString"), "()V", mv -> {
                    mv.visitLdcInsn("x");
                    mv.visitMethodInsn(INVOKEVIRTUAL, "java/lang/String", "intern", "()Ljava/lang/String;", false);
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                });
        refused(calls("()V", "java/lang/IllegalStateException.getMessage()Ljava/lang/String;",
                "java/lang/IllegalStateException allows constructors only"), "()V", mv -> {
                    mv.visitTypeInsn(NEW, "java/lang/IllegalStateException");
                    mv.visitInsn(DUP);
                    mv.visitMethodInsn(INVOKESPECIAL, "java/lang/IllegalStateException", "<init>", "()V", false);
                    mv.visitMethodInsn(INVOKEVIRTUAL, "java/lang/IllegalStateException", "getMessage", "()Ljava/lang/String;", false);
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                });
        refused("refused: class gen/T, method m()V writes field java/lang/Integer.MAX_VALUE:I, which policy code may not write "
                + "(policy code never writes fields of JDK classes)", "()V", mv -> {
                    mv.visitInsn(ICONST_0);
                    mv.visitFieldInsn(PUTSTATIC, "java/lang/Integer", "MAX_VALUE", "I");
                    mv.visitInsn(RETURN);
                });
        refused(calls("()V", "java/lang/Object.getClass()Ljava/lang/Class;", "reflection starts at getClass"), "()V", mv -> {
            mv.visitLdcInsn("x");
            mv.visitMethodInsn(INVOKEVIRTUAL, "java/lang/Object", "getClass", "()Ljava/lang/Class;", false);
            mv.visitInsn(POP);
            mv.visitInsn(RETURN);
        });
    }

    @Test
    void arenasAndAddressesAreTheRuntimes() {
        refused(calls("()V", "java/lang/foreign/Arena.ofConfined()Ljava/lang/foreign/Arena;", "java/lang/foreign/Arena allows instance methods only"),
                "()V", mv -> {
                    mv.visitMethodInsn(INVOKESTATIC, "java/lang/foreign/Arena", "ofConfined", "()Ljava/lang/foreign/Arena;", true);
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                });
        refused(calls("(Ljava/lang/foreign/Arena;)V", "java/lang/foreign/Arena.close()V", "java/lang/foreign/Arena allows only allocate, allocateFrom"),
                "(Ljava/lang/foreign/Arena;)V", mv -> {
                    mv.visitVarInsn(ALOAD, 0);
                    mv.visitMethodInsn(INVOKEINTERFACE, "java/lang/foreign/Arena", "close", "()V", true);
                    mv.visitInsn(RETURN);
                });
        refused("refused: class gen/T, method m()V reads field java/lang/foreign/ValueLayout.ADDRESS:Ljava/lang/foreign/AddressLayout;, which "
                + "policy code may not read (its signature uses java/lang/foreign/AddressLayout)", "()V", mv -> {
                    mv.visitFieldInsn(GETSTATIC, "java/lang/foreign/ValueLayout", "ADDRESS", "Ljava/lang/foreign/AddressLayout;");
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                });
        refused(calls("(Ljava/lang/foreign/MemorySegment;)V", "java/lang/foreign/MemorySegment.force()V", "works on mapped files (I/O)"),
                "(Ljava/lang/foreign/MemorySegment;)V", mv -> {
                    mv.visitVarInsn(ALOAD, 0);
                    mv.visitMethodInsn(INVOKEINTERFACE, "java/lang/foreign/MemorySegment", "force", "()V", true);
                    mv.visitInsn(RETURN);
                });
    }

    @Test
    void typeReferencesAreChecked() {
        refused("refused: class gen/T, method m(Ljava/lang/Object;)V casts to java/lang/Thread, which policy code may not use",
                "(Ljava/lang/Object;)V", mv -> {
                    mv.visitVarInsn(ALOAD, 0);
                    mv.visitTypeInsn(CHECKCAST, "java/lang/Thread");
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                });
        refused("refused: class gen/T, method m(Ljava/lang/Object;)Z tests instanceof java/lang/ClassLoader, which policy code may not use",
                "(Ljava/lang/Object;)Z", mv -> {
                    mv.visitVarInsn(ALOAD, 0);
                    mv.visitTypeInsn(INSTANCEOF, "[[Ljava/lang/ClassLoader;");
                    mv.visitInsn(IRETURN);
                });
        refused("refused: class gen/T, method m()V creates the array [[D in one multianewarray instruction, which policy code may not use "
                + "(create each row with newarray)", "()V", mv -> {
            mv.visitInsn(ICONST_1);
            mv.visitInsn(ICONST_1);
            mv.visitMultiANewArrayInsn("[[D", 2);
            mv.visitInsn(POP);
            mv.visitInsn(RETURN);
        });
        refused("refused: class gen/T, method m()V loads the class literal java/lang/Runtime, which policy code may not use", "()V", mv -> {
            mv.visitLdcInsn(Type.getObjectType("java/lang/Runtime"));
            mv.visitInsn(POP);
            mv.visitInsn(RETURN);
        });
        refused("refused: class gen/T, method m()V loads method handle constant java/lang/System.exit(I)V, which policy code may not load",
                "()V", mv -> {
                    mv.visitLdcInsn(new Handle(H_INVOKESTATIC, "java/lang/System", "exit", "(I)V", false));
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                });
        refused("refused: class gen/T, method m()V loads method type constant (I)V, which policy code may not load", "()V", mv -> {
            mv.visitLdcInsn(Type.getMethodType("(I)V"));
            mv.visitInsn(POP);
            mv.visitInsn(RETURN);
        });
        refused("refused: class gen/T, method m(Ljava/lang/Thread;)V has java/lang/Thread in its signature, which policy code may not use",
                "(Ljava/lang/Thread;)V", mv -> mv.visitInsn(RETURN));
        refused("refused: class gen/T, method m()V catches java/lang/Throwable, which policy code may not use", "()V", mv -> {
            Label a = new Label(), b = new Label(), h = new Label();
            mv.visitTryCatchBlock(a, b, h, "java/lang/Throwable");
            mv.visitLabel(a);
            mv.visitInsn(NOP);
            mv.visitLabel(b);
            mv.visitInsn(RETURN);
            mv.visitLabel(h);
            mv.visitInsn(POP);
            mv.visitInsn(RETURN);
        });
        List<String> p = check(TestJars.classes("gen/T", TestJars.cls("gen/T").field(ACC_PRIVATE, "xs", "Ljava/util/List;").build()));
        assertEquals(List.of("refused: class gen/T, field xs has type java/util/List, which policy code may not use"), p);
    }

    @Test
    void invokedynamicSitesAreChecked() {
        refused("refused: class gen/T, method m(Ljava/lang/Thread;)Ljava/lang/String; has java/lang/Thread in its signature, which policy "
                + "code may not use", "(Ljava/lang/Thread;)Ljava/lang/String;", mv -> {
                    mv.visitInsn(ACONST_NULL);
                    mv.visitInsn(ARETURN);
                });
        List<String> p = method("()Ljava/lang/String;", mv -> {
            mv.visitInsn(ACONST_NULL);
            mv.visitInvokeDynamicInsn("makeConcatWithConstants", "(Ljava/lang/Thread;)Ljava/lang/String;", TestJars.CONCAT, "t=\u0001");
            mv.visitInsn(ARETURN);
        });
        assertEquals(1, p.size(), p::toString);
        assertTrue(p.getFirst().startsWith("refused: class gen/T, method m()Ljava/lang/String; uses invokedynamic makeConcatWithConstants("
                + "Ljava/lang/Thread;)Ljava/lang/String; with bootstrap java/lang/invoke/StringConcatFactory.makeConcatWithConstants("), p.getFirst());
        assertTrue(p.getFirst().endsWith("which policy code may not use (its call site uses java/lang/Thread)"), p.getFirst());
        refused("refused: class gen/T, method m()V uses invokedynamic run()Ljava/lang/Runnable; with bootstrap "
                + TestJars.LAMBDA.getOwner() + "." + TestJars.LAMBDA.getName() + TestJars.LAMBDA.getDesc()
                + ", which policy code may not use (its call site uses java/lang/Runnable)", "()V", mv -> {
                    mv.visitInvokeDynamicInsn("run", "()Ljava/lang/Runnable;", TestJars.LAMBDA, Type.getType("()V"),
                            new Handle(H_INVOKESTATIC, "gen/T", "m", "()V", false), Type.getType("()V"));
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                });
    }

    @Test
    void classShapeIsChecked() {
        List<String> p = check(TestJars.classes("gen/E", TestJars.cls("gen/E").extend("java/lang/IllegalStateException").build()));
        assertEquals("refused: class gen/E extends java/lang/IllegalStateException, which policy code may not extend", p.getFirst());
        p = check(TestJars.classes("java/lang/Evil", TestJars.cls("java/lang/Evil").build()));
        assertEquals(List.of("refused: class java/lang/Evil is in package java/lang, where policy code may not define classes"), p);
        Map<String, byte[]> nest = new LinkedHashMap<>();
        nest.put("gen/N", TestJars.cls("gen/N").build());
        byte[] withHost = patchNestHost("gen/N2", "java/lang/Object");
        nest.put("gen/N2", withHost);
        assertEquals(List.of("refused: class gen/N2 names java/lang/Object as its nest host, which is not in the jar"), check(nest));
    }

    private static byte[] patchNestHost(String name, String host) {
        org.objectweb.asm.ClassWriter cw = new org.objectweb.asm.ClassWriter(0);
        cw.visit(V25, ACC_PUBLIC | ACC_SUPER, name, null, "java/lang/Object", null);
        cw.visitNestHost(host);
        cw.visitEnd();
        return cw.toByteArray();
    }

    @Test
    void missingMembersAndLoaderCallsAreRefused() {
        refused(calls("()V", "gen/T.nothing()V", null).replace(", which policy code may not call", ", which does not exist"), "()V", mv -> {
            mv.visitMethodInsn(INVOKESTATIC, "gen/T", "nothing", "()V", false);
            mv.visitInsn(RETURN);
        });
        refused(calls("()V", "dev/kvpc/runtime/load/PolicyManifest.shorten(Ljava/lang/String;)Ljava/lang/String;", null), "()V", mv -> {
            mv.visitLdcInsn("x");
            mv.visitMethodInsn(INVOKESTATIC, "dev/kvpc/runtime/load/PolicyManifest", "shorten", "(Ljava/lang/String;)Ljava/lang/String;", false);
            mv.visitInsn(POP);
            mv.visitInsn(RETURN);
        });
    }

    @Test
    void manyProblemsAreAllListed() {
        Map<String, byte[]> classes = new LinkedHashMap<>();
        for (int i = 0; i < 25; i++) {
            String n = "gen/X" + (char) ('a' + i);
            classes.put(n, TestJars.oneMethod(n, "m", "()V", mv -> {
                mv.visitInsn(ICONST_0);
                mv.visitMethodInsn(INVOKESTATIC, "java/lang/System", "exit", "(I)V", false);
                mv.visitInsn(RETURN);
            }));
        }
        PolicyLoadException e = assertThrows(PolicyLoadException.class, () -> verifier.verify(classes));
        assertEquals(25, e.problems().size());
        String[] lines = e.getMessage().split("\n");
        assertEquals(21, lines.length);
        assertEquals("(and 5 more)", lines[20]);
        assertEquals("refused: class gen/Xa, method m()V calls java/lang/System.exit(I)V, which policy code may not call", lines[0]);
    }

    @Test
    void malformedClassFilesAreProblemsNotCrashes() {
        byte[] good = TestJars.cls("gen/T").build();
        java.util.Random rnd = new java.util.Random(1);
        for (int round = 0; round < 200; round++) {
            byte[] b = good.clone();
            if (round % 2 == 0) b = java.util.Arrays.copyOf(b, rnd.nextInt(b.length));
            else for (int k = 0; k < 4; k++) b[rnd.nextInt(b.length)] = (byte) rnd.nextInt(256);
            verifier.check(TestJars.classes("gen/T", b)); // must not throw
        }
        List<String> p = verifier.check(TestJars.classes("gen/T", new byte[] {(byte) 0xca, (byte) 0xfe, (byte) 0xba, (byte) 0xbe}));
        assertEquals(1, p.size());
        assertTrue(p.getFirst().startsWith("refused: class file gen/T.class is malformed ("), p.getFirst());
    }
}
