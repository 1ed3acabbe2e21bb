package dev.kvpc.runtime.load;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.objectweb.asm.Handle;
import org.objectweb.asm.MethodVisitor;
import org.objectweb.asm.Opcodes;
import org.objectweb.asm.Type;

/**
 * Jars that each try one forbidden thing, loaded through {@link PolicyJarLoader#load}: every one is refused with a
 * message naming the class, the method and the forbidden call (or field, type, flag).
 */
class HostileJarTest implements Opcodes {
    @TempDir
    Path dir;

    /** One hostile jar: its classes (the first is the entry) and lines its refusal must contain. */
    record Case(String label, Map<String, byte[]> classes, List<String> expected) {
        @Override
        public String toString() {
            return label;
        }
    }

    private static Case run(String label, String cls, Consumer<MethodVisitor> body, String... expected) {
        return new Case(label, TestJars.classes(cls, TestJars.oneMethod(cls, "run", "()V", body)), List.of(expected));
    }

    private static String calls(String cls, String method, String call) {
        return "refused: class " + cls + ", method " + method + " calls " + call + ", which policy code may not call";
    }

    static Stream<Case> cases() {
        String lookup = "Ljava/lang/invoke/MethodHandles$Lookup;";
        return Stream.of(
                run("System.exit", "gen/Exit", mv -> {
                    mv.visitInsn(ICONST_0);
                    mv.visitMethodInsn(INVOKESTATIC, "java/lang/System", "exit", "(I)V", false);
                    mv.visitInsn(RETURN);
                }, calls("gen/Exit", "run()V", "java/lang/System.exit(I)V")),

                run("the IR beyond its vocabulary constants", "gen/Parse", mv -> {
                    mv.visitFieldInsn(GETSTATIC, "dev/kvpc/ir/Op$Red", "SUM", "Ldev/kvpc/ir/Op$Red;");
                    mv.visitInsn(POP);
                    mv.visitLdcInsn("sum");
                    mv.visitMethodInsn(INVOKESTATIC, "dev/kvpc/ir/Op$Red", "of", "(Ljava/lang/String;)Ldev/kvpc/ir/Op$Red;", false);
                    mv.visitInsn(POP);
                    mv.visitLdcInsn("policy p");
                    mv.visitMethodInsn(INVOKESTATIC, "dev/kvpc/ir/IrParser", "parse", "(Ljava/lang/String;)Ldev/kvpc/ir/Specialized;", false);
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                }, calls("gen/Parse", "run()V", "dev/kvpc/ir/Op$Red.of(Ljava/lang/String;)Ldev/kvpc/ir/Op$Red;") + " (dev/kvpc/ir/Op$Red allows static constants only)",
                        calls("gen/Parse", "run()V", "dev/kvpc/ir/IrParser.parse(Ljava/lang/String;)Ldev/kvpc/ir/Specialized;")
                                + " (its signature uses dev/kvpc/ir/Specialized)"),

                run("Class.forName", "gen/ForName", mv -> {
                    mv.visitLdcInsn("java.lang.Runtime");
                    mv.visitMethodInsn(INVOKESTATIC, "java/lang/Class", "forName", "(Ljava/lang/String;)Ljava/lang/Class;", false);
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                }, calls("gen/ForName", "run()V", "java/lang/Class.forName(Ljava/lang/String;)Ljava/lang/Class;")
                        + " (its signature uses java/lang/Class)"),

                run("getDeclaredMethod", "gen/Reflect", mv -> {
                    mv.visitLdcInsn(Type.getObjectType("gen/Reflect"));
                    mv.visitLdcInsn("run");
                    mv.visitInsn(ICONST_0);
                    mv.visitTypeInsn(ANEWARRAY, "java/lang/Class");
                    mv.visitMethodInsn(INVOKEVIRTUAL, "java/lang/Class", "getDeclaredMethod",
                            "(Ljava/lang/String;[Ljava/lang/Class;)Ljava/lang/reflect/Method;", false);
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                }, "refused: class gen/Reflect, method run()V calls java/lang/Class.getDeclaredMethod(Ljava/lang/String;[Ljava/lang/Class;)"
                        + "Ljava/lang/reflect/Method;, which policy code may not call",
                        "refused: class gen/Reflect, method run()V creates an array of java/lang/Class, which policy code may not use"),

                run("FileInputStream", "gen/ReadFile", mv -> {
                    mv.visitTypeInsn(NEW, "java/io/FileInputStream");
                    mv.visitInsn(DUP);
                    mv.visitLdcInsn("/etc/passwd");
                    mv.visitMethodInsn(INVOKESPECIAL, "java/io/FileInputStream", "<init>", "(Ljava/lang/String;)V", false);
                    mv.visitMethodInsn(INVOKEVIRTUAL, "java/io/FileInputStream", "read", "()I", false);
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                }, "refused: class gen/ReadFile, method run()V creates java/io/FileInputStream, which policy code may not create",
                        calls("gen/ReadFile", "run()V", "java/io/FileInputStream.<init>(Ljava/lang/String;)V"),
                        calls("gen/ReadFile", "run()V", "java/io/FileInputStream.read()I")),

                run("Files.readString", "gen/ReadString", mv -> {
                    mv.visitLdcInsn("/etc/passwd");
                    mv.visitInsn(ICONST_0);
                    mv.visitTypeInsn(ANEWARRAY, "java/lang/String");
                    mv.visitMethodInsn(INVOKESTATIC, "java/nio/file/Path", "of", "(Ljava/lang/String;[Ljava/lang/String;)Ljava/nio/file/Path;", true);
                    mv.visitMethodInsn(INVOKESTATIC, "java/nio/file/Files", "readString", "(Ljava/nio/file/Path;)Ljava/lang/String;", false);
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                }, calls("gen/ReadString", "run()V", "java/nio/file/Files.readString(Ljava/nio/file/Path;)Ljava/lang/String;")),

                run("Thread.start", "gen/Spawn", mv -> {
                    mv.visitTypeInsn(NEW, "java/lang/Thread");
                    mv.visitInsn(DUP);
                    mv.visitMethodInsn(INVOKESPECIAL, "java/lang/Thread", "<init>", "()V", false);
                    mv.visitMethodInsn(INVOKEVIRTUAL, "java/lang/Thread", "start", "()V", false);
                    mv.visitInsn(RETURN);
                }, "refused: class gen/Spawn, method run()V creates java/lang/Thread, which policy code may not create",
                        calls("gen/Spawn", "run()V", "java/lang/Thread.start()V")),

                run("ExecutorService", "gen/Pool", mv -> {
                    mv.visitInsn(ICONST_4);
                    mv.visitMethodInsn(INVOKESTATIC, "java/util/concurrent/Executors", "newFixedThreadPool",
                            "(I)Ljava/util/concurrent/ExecutorService;", false);
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                }, calls("gen/Pool", "run()V", "java/util/concurrent/Executors.newFixedThreadPool(I)Ljava/util/concurrent/ExecutorService;")),

                new Case("ClassLoader.defineClass", TestJars.classes("gen/EvilLoader", TestJars.cls("gen/EvilLoader")
                        .extend("java/lang/ClassLoader")
                        .method(ACC_PUBLIC, "run", "([B)Ljava/lang/Object;", mv -> {
                            mv.visitVarInsn(ALOAD, 0);
                            mv.visitLdcInsn("gen.Payload");
                            mv.visitVarInsn(ALOAD, 1);
                            mv.visitInsn(ICONST_0);
                            mv.visitVarInsn(ALOAD, 1);
                            mv.visitInsn(ARRAYLENGTH);
                            mv.visitMethodInsn(INVOKEVIRTUAL, "gen/EvilLoader", "defineClass", "(Ljava/lang/String;[BII)Ljava/lang/Class;", false);
                            mv.visitInsn(ARETURN);
                        }).build()),
                        List.of("refused: class gen/EvilLoader extends java/lang/ClassLoader, which policy code may not extend",
                                "refused: class gen/EvilLoader, method run([B)Ljava/lang/Object; calls gen/EvilLoader.defineClass("
                                        + "Ljava/lang/String;[BII)Ljava/lang/Class;, which policy code may not call")),

                run("URLClassLoader", "gen/UrlLoader", mv -> {
                    mv.visitTypeInsn(NEW, "java/net/URLClassLoader");
                    mv.visitInsn(DUP);
                    mv.visitInsn(ICONST_0);
                    mv.visitTypeInsn(ANEWARRAY, "java/net/URL");
                    mv.visitMethodInsn(INVOKESPECIAL, "java/net/URLClassLoader", "<init>", "([Ljava/net/URL;)V", false);
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                }, calls("gen/UrlLoader", "run()V", "java/net/URLClassLoader.<init>([Ljava/net/URL;)V") + " (its signature uses java/net/URL)"),

                run("Unsafe field", "gen/Peek", mv -> {
                    mv.visitFieldInsn(GETSTATIC, "sun/misc/Unsafe", "theUnsafe", "Lsun/misc/Unsafe;");
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                }, "refused: class gen/Peek, method run()V reads field sun/misc/Unsafe.theUnsafe:Lsun/misc/Unsafe;, which policy code may "
                        + "not read (its signature uses sun/misc/Unsafe)"),

                new Case("Unsafe-typed field", TestJars.classes("gen/HoldsUnsafe", TestJars.cls("gen/HoldsUnsafe")
                        .field(ACC_STATIC, "U", "Lsun/misc/Unsafe;").build()),
                        List.of("refused: class gen/HoldsUnsafe, field U has type sun/misc/Unsafe, which policy code may not use")),

                run("Runtime.exec", "gen/Exec", mv -> {
                    mv.visitMethodInsn(INVOKESTATIC, "java/lang/Runtime", "getRuntime", "()Ljava/lang/Runtime;", false);
                    mv.visitLdcInsn("sh");
                    mv.visitMethodInsn(INVOKEVIRTUAL, "java/lang/Runtime", "exec", "(Ljava/lang/String;)Ljava/lang/Process;", false);
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                }, calls("gen/Exec", "run()V", "java/lang/Runtime.getRuntime()Ljava/lang/Runtime;"),
                        calls("gen/Exec", "run()V", "java/lang/Runtime.exec(Ljava/lang/String;)Ljava/lang/Process;")),

                run("ProcessBuilder", "gen/Spawner", mv -> {
                    mv.visitTypeInsn(NEW, "java/lang/ProcessBuilder");
                    mv.visitInsn(DUP);
                    mv.visitInsn(ICONST_0);
                    mv.visitTypeInsn(ANEWARRAY, "java/lang/String");
                    mv.visitMethodInsn(INVOKESPECIAL, "java/lang/ProcessBuilder", "<init>", "([Ljava/lang/String;)V", false);
                    mv.visitMethodInsn(INVOKEVIRTUAL, "java/lang/ProcessBuilder", "start", "()Ljava/lang/Process;", false);
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                }, calls("gen/Spawner", "run()V", "java/lang/ProcessBuilder.<init>([Ljava/lang/String;)V"),
                        calls("gen/Spawner", "run()V", "java/lang/ProcessBuilder.start()Ljava/lang/Process;")),

                new Case("MemorySegment.reinterpret", TestJars.classes("gen/Widen", TestJars.oneMethod("gen/Widen", "widen",
                        "(Ljava/lang/foreign/MemorySegment;)J", mv -> {
                            mv.visitVarInsn(ALOAD, 0);
                            mv.visitLdcInsn(1L << 40);
                            mv.visitMethodInsn(INVOKEINTERFACE, "java/lang/foreign/MemorySegment", "reinterpret",
                                    "(J)Ljava/lang/foreign/MemorySegment;", true);
                            mv.visitMethodInsn(INVOKEINTERFACE, "java/lang/foreign/MemorySegment", "byteSize", "()J", true);
                            mv.visitInsn(LRETURN);
                        })),
                        List.of(calls("gen/Widen", "widen(Ljava/lang/foreign/MemorySegment;)J",
                                "java/lang/foreign/MemorySegment.reinterpret(J)Ljava/lang/foreign/MemorySegment;")
                                + " (reaches memory outside the segment's bounds)")),

                run("MemorySegment.ofAddress", "gen/Address", mv -> {
                    mv.visitLdcInsn(0x1000L);
                    mv.visitMethodInsn(INVOKESTATIC, "java/lang/foreign/MemorySegment", "ofAddress", "(J)Ljava/lang/foreign/MemorySegment;", true);
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                }, calls("gen/Address", "run()V", "java/lang/foreign/MemorySegment.ofAddress(J)Ljava/lang/foreign/MemorySegment;")),

                new Case("native method", TestJars.classes("gen/NativePeek", TestJars.cls("gen/NativePeek")
                        .method(ACC_PUBLIC | ACC_STATIC | ACC_NATIVE, "peek", "(J)I", null).build()),
                        List.of("refused: class gen/NativePeek, method peek(J)I is native, which policy code may not be (no native methods)")),

                new Case("own indy bootstrap", TestJars.classes("gen/EvilIndy", TestJars.cls("gen/EvilIndy")
                        .staticMethod("bsm", "(" + lookup + "Ljava/lang/String;Ljava/lang/invoke/MethodType;)Ljava/lang/invoke/CallSite;", mv -> {
                            mv.visitInsn(ACONST_NULL);
                            mv.visitInsn(ARETURN);
                        })
                        .staticMethod("run", "()V", mv -> {
                            mv.visitInvokeDynamicInsn("boom", "()V", new Handle(H_INVOKESTATIC, "gen/EvilIndy", "bsm",
                                    "(" + lookup + "Ljava/lang/String;Ljava/lang/invoke/MethodType;)Ljava/lang/invoke/CallSite;", false));
                            mv.visitInsn(RETURN);
                        }).build()),
                        List.of("refused: class gen/EvilIndy, method run()V uses invokedynamic boom()V with bootstrap gen/EvilIndy.bsm("
                                + lookup + "Ljava/lang/String;Ljava/lang/invoke/MethodType;)Ljava/lang/invoke/CallSite;, which policy code may not use")),

                run("MethodHandles.lookup", "gen/Lookup", mv -> {
                    mv.visitMethodInsn(INVOKESTATIC, "java/lang/invoke/MethodHandles", "lookup", "()" + lookup, false);
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                }, calls("gen/Lookup", "run()V", "java/lang/invoke/MethodHandles.lookup()" + lookup)),

                run("lambda of System.exit", "gen/ExitLambda", mv -> {
                    mv.visitInvokeDynamicInsn("accept", "()Ljava/util/function/IntConsumer;", TestJars.LAMBDA, Type.getType("(I)V"),
                            new Handle(H_INVOKESTATIC, "java/lang/System", "exit", "(I)V", false), Type.getType("(I)V"));
                    mv.visitInsn(ICONST_1);
                    mv.visitMethodInsn(INVOKEINTERFACE, "java/util/function/IntConsumer", "accept", "(I)V", true);
                    mv.visitInsn(RETURN);
                }, "refused: class gen/ExitLambda, method run()V makes a lambda of java/lang/System.exit(I)V, which policy code may not call"),

                new Case("static initialiser", TestJars.classes("gen/Env", TestJars.cls("gen/Env")
                        .method(ACC_STATIC, "<clinit>", "()V", mv -> {
                            mv.visitLdcInsn("HOME");
                            mv.visitMethodInsn(INVOKESTATIC, "java/lang/System", "getenv", "(Ljava/lang/String;)Ljava/lang/String;", false);
                            mv.visitInsn(POP);
                            mv.visitInsn(RETURN);
                        }).build()),
                        List.of(calls("gen/Env", "<clinit>()V", "java/lang/System.getenv(Ljava/lang/String;)Ljava/lang/String;"))),

                new Case("synchronized method", TestJars.classes("gen/Locked", TestJars.cls("gen/Locked")
                        .method(ACC_PUBLIC | ACC_SYNCHRONIZED, "step", "()V", mv -> mv.visitInsn(RETURN)).build()),
                        List.of("refused: class gen/Locked, method step()V is synchronized, which policy code may not be (no locks)")),

                new Case("monitorenter", TestJars.classes("gen/Monitor", TestJars.oneMethod("gen/Monitor", "hold", "(Ljava/lang/Object;)V", mv -> {
                    mv.visitVarInsn(ALOAD, 0);
                    mv.visitInsn(MONITORENTER);
                    mv.visitVarInsn(ALOAD, 0);
                    mv.visitInsn(MONITOREXIT);
                    mv.visitInsn(RETURN);
                })), List.of("refused: class gen/Monitor, method hold(Ljava/lang/Object;)V uses monitorenter, which policy code may not use (no locks)")),

                run("jdk.internal Unsafe", "gen/Internal", mv -> {
                    mv.visitMethodInsn(INVOKESTATIC, "jdk/internal/misc/Unsafe", "getUnsafe", "()Ljdk/internal/misc/Unsafe;", false);
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                }, calls("gen/Internal", "run()V", "jdk/internal/misc/Unsafe.getUnsafe()Ljdk/internal/misc/Unsafe;")
                        + " (its signature uses jdk/internal/misc/Unsafe)"),

                run("the loader itself", "gen/Nested", mv -> {
                    mv.visitInsn(ACONST_NULL);
                    mv.visitInsn(ACONST_NULL);
                    mv.visitMethodInsn(INVOKESTATIC, "dev/kvpc/runtime/load/PolicyJarLoader", "load",
                            "(Ljava/nio/file/Path;Ldev/kvpc/runtime/load/ModelShapeSpec;)Ldev/kvpc/runtime/load/LoadedPolicy;", false);
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                }, "refused: class gen/Nested, method run()V calls dev/kvpc/runtime/load/PolicyJarLoader.load("),

                run("a host file through the trace reader", "gen/ReadFile", mv -> {
                    mv.visitLdcInsn("/etc/passwd");
                    mv.visitInsn(ACONST_NULL);
                    mv.visitMethodInsn(INVOKESTATIC, "dev/kvpc/runtime/trace/TraceSpec", "open",
                            "(Ljava/lang/String;Ldev/kvpc/runtime/trace/TraceShape;)Ldev/kvpc/runtime/trace/Trace;", false);
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                }, "refused: class gen/ReadFile, method run()V calls dev/kvpc/runtime/trace/TraceSpec.open("),

                run("off-heap memory through a page pool", "gen/Pool", mv -> {
                    mv.visitTypeInsn(NEW, "dev/kvpc/runtime/pool/PagePool");
                    mv.visitInsn(DUP);
                    mv.visitMethodInsn(INVOKESPECIAL, "dev/kvpc/runtime/pool/PagePool", "<init>", "()V", false);
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                }, "refused: class gen/Pool, method run()V creates dev/kvpc/runtime/pool/PagePool, which policy code may not create",
                        calls("gen/Pool", "run()V", "dev/kvpc/runtime/pool/PagePool.<init>()V")),

                run("the runner of compiled policies", "gen/Runner", mv -> {
                    mv.visitInsn(ACONST_NULL);
                    mv.visitMethodInsn(INVOKESTATIC, "dev/kvpc/runtime/exec/NativeRunner", "of",
                            "(Ldev/kvpc/runtime/policy/CompiledPolicy;)Ldev/kvpc/runtime/exec/NativeRunner;", false);
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                }, "refused: class gen/Runner, method run()V calls dev/kvpc/runtime/exec/NativeRunner.of("),

                new Case("extends Thread", TestJars.classes("gen/Worker", TestJars.cls("gen/Worker").extend("java/lang/Thread").build()),
                        List.of("refused: class gen/Worker extends java/lang/Thread, which policy code may not extend",
                                "refused: class gen/Worker, method <init>()V calls java/lang/Thread.<init>()V, which policy code may not call")),

                new Case("implements Runnable", TestJars.classes("gen/Task", TestJars.cls("gen/Task").implement("java/lang/Runnable")
                        .method(ACC_PUBLIC, "run", "()V", mv -> mv.visitInsn(RETURN)).build()),
                        List.of("refused: class gen/Task implements java/lang/Runnable, which policy code may not implement")),

                new Case("Object.wait through the class", TestJars.classes("gen/Waiter", TestJars.cls("gen/Waiter")
                        .method(ACC_PUBLIC, "pause", "()V", mv -> {
                            mv.visitVarInsn(ALOAD, 0);
                            mv.visitMethodInsn(INVOKEVIRTUAL, "gen/Waiter", "wait", "()V", false);
                            mv.visitInsn(RETURN);
                        }).build()),
                        List.of(calls("gen/Waiter", "pause()V", "gen/Waiter.wait()V") + " (policy code must not lock or wait)")),

                new Case("finalizer", TestJars.classes("gen/Finalizer", TestJars.cls("gen/Finalizer")
                        .method(ACC_PROTECTED, "finalize", "()V", mv -> mv.visitInsn(RETURN)).build()),
                        List.of("refused: class gen/Finalizer, method finalize()V overrides java/lang/Object.finalize()V, which policy code may not"
                                + " (finalizers run on another thread)")),

                run("Socket", "gen/Net", mv -> {
                    mv.visitTypeInsn(NEW, "java/net/Socket");
                    mv.visitInsn(DUP);
                    mv.visitLdcInsn("example.com");
                    mv.visitIntInsn(SIPUSH, 80);
                    mv.visitMethodInsn(INVOKESPECIAL, "java/net/Socket", "<init>", "(Ljava/lang/String;I)V", false);
                    mv.visitInsn(POP);
                    mv.visitInsn(RETURN);
                }, "refused: class gen/Net, method run()V creates java/net/Socket, which policy code may not create"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void hostileJarIsRefusedNamingClassMethodAndCall(Case c) throws Exception {
        Path jar = TestJars.policyJar(dir, "hostile.jar", c.classes());
        PolicyLoadException e = assertThrows(PolicyLoadException.class,
                () -> PolicyJarLoader.load(jar, TestJars.HOST, getClass().getClassLoader()));
        for (String line : c.expected()) {
            assertTrue(e.getMessage().contains(line), () -> "expected\n  " + line + "\nin\n  " + e.getMessage().replace("\n", "\n  "));
        }
        for (String line : e.getMessage().split("\n")) {
            assertTrue(line.startsWith("refused: class "), () -> "every line names the class: " + line);
        }
    }

    @Test
    void hostileHelperBehindABenignEntryIsRefusedToo() throws Exception {
        Map<String, byte[]> classes = new LinkedHashMap<>(TestJars.benignClasses());
        classes.put("gen/Quiet", TestJars.oneMethod("gen/Quiet", "later", "()V", mv -> {
            mv.visitInsn(ICONST_1);
            mv.visitMethodInsn(INVOKESTATIC, "java/lang/System", "exit", "(I)V", false);
            mv.visitInsn(RETURN);
        }));
        Path jar = TestJars.policyJar(dir, "mixed.jar", classes);
        PolicyLoadException e = assertThrows(PolicyLoadException.class,
                () -> PolicyJarLoader.load(jar, TestJars.HOST, getClass().getClassLoader()));
        assertTrue(e.getMessage().equals(calls("gen/Quiet", "later()V", "java/lang/System.exit(I)V")), e.getMessage());
        assertTrue(e.problems().size() == 1);
    }

    @Test
    void atLeastTenHostileJars() {
        assertTrue(cases().count() >= 10);
    }
}
