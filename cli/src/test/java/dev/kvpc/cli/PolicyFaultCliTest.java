package dev.kvpc.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.objectweb.asm.ClassReader;
import org.objectweb.asm.ClassVisitor;
import org.objectweb.asm.ClassWriter;
import org.objectweb.asm.MethodVisitor;
import org.objectweb.asm.Opcodes;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.function.Consumer;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A policy jar whose code fails at run time, though it passes the verifier: the fault is the policy's (exit 65, a
 * message naming the policy, its lane class and kernel, and what was thrown), not "a bug in kvpc" (exit 70), and no
 * stack trace without {@code --debug}. The jars are kvpc's own output for {@code window.kvp} with one instruction
 * sequence put in front of the lane class's {@code run}.
 */
class PolicyFaultCliTest implements Opcodes {
    private static final String LANE_CLASS = "kvpc/gen/window/L0.class";
    private static final String CONTEXT = "dev/kvpc/runtime/policy/LaneContext";

    @TempDir
    Path dir;

    /** {@code window.kvp} compiled for kvpc-tiny, then {@code prefix} run at the start of every kernel. */
    private Path doctored(String name, Consumer<MethodVisitor> prefix) throws IOException {
        return rewritten(name, "--model", LANE_CLASS, bytes -> withPrefix(bytes, prefix));
    }

    /**
     * {@code window.kvp} compiled for kvpc-tiny ({@code shape} "--model") or the reference shape (any other), with
     * entry {@code entry} rewritten by {@code change}.
     */
    private Path rewritten(String name, String shape, String entry, java.util.function.UnaryOperator<byte[]> change) throws IOException {
        Path model = CliRunner.root().resolve("models/kvpc-tiny/kvpc-tiny.gguf");
        Path clean = dir.resolve(name + ".clean.jar");
        CliRunner c = shape.equals("--model")
                ? CliRunner.run("compile", CliRunner.root().resolve("stdlib-policies/window.kvp").toString(), "--model", model.toString(),
                        "--param", "size=2", "-o", clean.toString())
                : CliRunner.run("compile", CliRunner.root().resolve("stdlib-policies/window.kvp").toString(), "--param", "size=2", "-o", clean.toString());
        assertEquals(0, c.code(), c.err());
        return copyRewriting(clean, dir.resolve(name + ".jar"), entry, change);
    }

    /** A copy {@code out} of the jar {@code clean} with entry {@code entry} rewritten by {@code change}. */
    private static Path copyRewriting(Path clean, Path out, String entry, java.util.function.UnaryOperator<byte[]> change) throws IOException {
        try (ZipFile in = new ZipFile(clean.toFile()); OutputStream os = Files.newOutputStream(out); ZipOutputStream zip = new ZipOutputStream(os)) {
            boolean found = false;
            for (ZipEntry e : Collections.list(in.entries())) {
                byte[] bytes = in.getInputStream(e).readAllBytes();
                if (e.getName().equals(entry)) {
                    bytes = change.apply(bytes);
                    found = true;
                }
                zip.putNextEntry(new ZipEntry(e.getName()));
                zip.write(bytes);
                zip.closeEntry();
            }
            assertTrue(found, "no " + entry + " in the jar");
        }
        return out;
    }

    /** {@link #run} of {@code jar} under a time limit of 300 ms for each call into its code; it must end, not hang. */
    private CliRunner runWithin300Ms(Path jar) {
        String old = System.setProperty("kvpc.policy.time-limit-ms", "300");
        try {
            long t0 = System.nanoTime();
            CliRunner r = run(jar);
            assertTrue(System.nanoTime() - t0 < 30_000_000_000L, "stopped, not hung");
            return r;
        } finally {
            if (old == null) System.clearProperty("kvpc.policy.time-limit-ms");
            else System.setProperty("kvpc.policy.time-limit-ms", old);
        }
    }

    /**
     * A manifest that lets any shape in ({@code shape.*=any}) does not make the program fit: a jar specialised for the
     * reference shape, run on kvpc-tiny, is refused naming both shapes (it used to fail with an
     * ArrayIndexOutOfBoundsException, exit 70).
     */
    @Test
    void aManifestOfAnyShapeIsHeldToItsProgram() throws IOException {
        Path jar = rewritten("anyshape", "reference", "META-INF/kvpc-policy.properties", bytes -> new String(bytes, java.nio.charset.StandardCharsets.UTF_8)
                .replaceAll("(?m)^(shape\\.[a-z-]+)=.*$", "$1=any").getBytes(java.nio.charset.StandardCharsets.UTF_8));
        CliRunner r = run(jar);
        assertEquals(Main.INVALID, r.code(), r.err());
        assertTrue(r.err().contains("its program is specialised for layers=32, heads=32, kv-heads=8, head-dim=128; this model has layers=4"), r.err());
    }

    /** The jar for kvpc-tiny with one manifest line replaced ({@code key=value}). */
    private Path manifestWith(String name, String line) throws IOException {
        String key = line.substring(0, line.indexOf('='));
        return rewritten(name, "--model", "META-INF/kvpc-policy.properties", bytes -> new String(bytes, java.nio.charset.StandardCharsets.UTF_8)
                .replaceAll("(?m)^" + java.util.regex.Pattern.quote(key) + "=.*$", java.util.regex.Matcher.quoteReplacement(line))
                .getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }

    /**
     * What a manifest says of its program is derived again from the program at load: evidence, memory figures and the
     * compiler version that wrote them must agree, or the jar is refused (exit 65) saying what differs.
     */
    @Test
    void aManifestThatMisstatesItsProgramIsRefused() throws IOException {
        CliRunner ok = run(rewritten("same", "--model", "META-INF/kvpc-policy.properties", b -> b));
        assertEquals(Main.OK, ok.code(), ok.err());

        CliRunner evidence = run(manifestWith("evidence", "evidence=logits"));
        assertEquals(Main.INVALID, evidence.code(), evidence.err());
        assertTrue(evidence.err().contains("its manifest says the policy reads logits, but its program reads "), evidence.err());

        CliRunner memory = run(manifestWith("memory", "memory.kv=1"));
        assertEquals(Main.INVALID, memory.code(), memory.err());
        assertTrue(memory.err().contains("its manifest predicts {kv=1, scales=0, state=0} bytes per lane at context 4096 (f16), but its program takes {kv="),
                memory.err());

        CliRunner version = run(manifestWith("version", "compiler.version=0.0.1"));
        assertEquals(Main.INVALID, version.code(), version.err());
        assertTrue(version.err().contains("policy window was compiled by kvpc 0.0.1; this is kvpc " + dev.kvpc.runtime.load.KvpcVersion.current()), version.err());
    }

    private static byte[] withPrefix(byte[] cls, Consumer<MethodVisitor> prefix) {
        return withPrefix(cls, null, prefix);
    }

    /** {@code prefix} put in front of the lane class's {@code run}, or of every method whose name {@code which} accepts. */
    private static byte[] withPrefix(byte[] cls, java.util.function.Predicate<String> which, Consumer<MethodVisitor> prefix) {
        ClassReader r = new ClassReader(cls);
        ClassWriter w = new ClassWriter(r, ClassWriter.COMPUTE_MAXS | ClassWriter.COMPUTE_FRAMES);
        r.accept(new ClassVisitor(ASM9, w) {
            @Override
            public MethodVisitor visitMethod(int access, String name, String desc, String sig, String[] ex) {
                MethodVisitor mv = super.visitMethod(access, name, desc, sig, ex);
                boolean chosen = which == null ? name.equals("run") && desc.equals("(IL" + CONTEXT + ";)[D") : which.test(name);
                if (!chosen) return mv;
                return new MethodVisitor(ASM9, mv) {
                    @Override
                    public void visitCode() {
                        super.visitCode();
                        prefix.accept(this);
                    }
                };
            }
        }, 0);
        return w.toByteArray();
    }

    private CliRunner run(Path jar, String... more) {
        String[] args = {"run", "--model", CliRunner.root().resolve("models/kvpc-tiny/kvpc-tiny.gguf").toString(), "--policy", jar.toString(),
                "--prompt", "Once upon a time", "-n", "4"};
        String[] all = java.util.Arrays.copyOf(args, args.length + more.length);
        System.arraycopy(more, 0, all, args.length, more.length);
        return CliRunner.run(all);
    }

    /** {@code keep(null)}: the lane context's own NullPointerException, the policy's fault. */
    @Test
    void aKeepOfNullIsThePolicysFault() throws IOException {
        Path jar = doctored("keepnull", mv -> {
            mv.visitVarInsn(ALOAD, 2);
            mv.visitInsn(ACONST_NULL);
            mv.visitMethodInsn(INVOKEINTERFACE, CONTEXT, "keep", "(Ljava/lang/Object;)V", true);
        });
        CliRunner r = run(jar);
        assertEquals(Main.INVALID, r.code(), r.err());
        assertTrue(r.err().contains("kvpc: policy window failed: lane class 0, kernel "), r.err());
        assertTrue(r.err().contains("NullPointerException"), r.err());
        assertFalse(r.err().contains("bug in kvpc") || r.err().contains("\tat "), r.err());
        CliRunner debug = run(jar, "--debug");
        assertEquals(Main.INVALID, debug.code(), debug.err());
        assertTrue(debug.err().contains("\tat "), "--debug shows the trace: " + debug.err());
    }

    /** A set the lane context never made ({@code keep} of a BitSet): the policy's fault. */
    @Test
    void aForeignSetIsThePolicysFault() throws IOException {
        Path jar = doctored("foreign", mv -> {
            mv.visitVarInsn(ALOAD, 2);
            mv.visitTypeInsn(NEW, "java/util/BitSet");
            mv.visitInsn(DUP);
            mv.visitMethodInsn(INVOKESPECIAL, "java/util/BitSet", "<init>", "()V", false);
            mv.visitMethodInsn(INVOKEINTERFACE, CONTEXT, "keep", "(Ljava/lang/Object;)V", true);
        });
        CliRunner r = run(jar);
        assertEquals(Main.INVALID, r.code(), r.err());
        assertTrue(r.err().contains("kvpc: policy window failed: lane class 0, kernel ") && r.err().contains("ClassCastException"), r.err());
    }

    /**
     * An endless loop at the start of the lane class's code (a jump to itself): the loader's watchdog ticks on the
     * loop's back edge, and the call is stopped at its time limit (here 300 ms) as the policy's fault. It used to
     * hang kvpc run for ever.
     */
    @Test
    @org.junit.jupiter.api.Timeout(value = 60, threadMode = org.junit.jupiter.api.Timeout.ThreadMode.SEPARATE_THREAD)
    void anEndlessLoopIsStoppedAtItsTimeLimit() throws IOException {
        Path jar = doctored("spin", mv -> {
            org.objectweb.asm.Label top = new org.objectweb.asm.Label();
            mv.visitLabel(top);
            mv.visitJumpInsn(GOTO, top);
        });
        CliRunner r = runWithin300Ms(jar);
        assertEquals(Main.INVALID, r.code(), r.err());
        assertTrue(r.err().contains("kvpc: policy window failed: lane class 0, kernel ") && r.err().contains("ran past its time limit of 300 ms"), r.err());
    }

    /** Code that throws on its own (an integer division by zero). */
    @Test
    void anExceptionOfItsOwnIsThePolicysFault() throws IOException {
        Path jar = doctored("divide", mv -> {
            mv.visitInsn(ICONST_1);
            mv.visitInsn(ICONST_0);
            mv.visitInsn(IDIV);
            mv.visitInsn(POP);
        });
        CliRunner r = run(jar);
        assertEquals(Main.INVALID, r.code(), r.err());
        assertTrue(r.err().contains("kvpc: policy window failed: lane class 0, kernel ") && r.err().contains("ArithmeticException (/ by zero)"), r.err());
    }

    /**
     * Code the JVM refuses to link though the verifier's checks pass (the lane context handed where a StringBuilder is
     * wanted: ASM's analysis takes every reference alike, the JVM's verifier does not): the VerifyError comes when the
     * lane class is first made, inside the host, and is the policy's fault (exit 65), not a raw trace (found by the
     * reliability run in mutated jars).
     */
    @Test
    void aClassTheJvmWillNotLinkIsThePolicysFault() throws IOException {
        Path jar = doctored("unlinkable", mv -> {
            mv.visitVarInsn(ALOAD, 2);
            mv.visitMethodInsn(INVOKEVIRTUAL, "java/lang/StringBuilder", "toString", "()Ljava/lang/String;", false);
            mv.visitInsn(POP);
        });
        CliRunner r = run(jar);
        assertEquals(Main.INVALID, r.code(), r.err());
        assertTrue(r.err().contains("kvpc: policy window failed: ") && r.err().contains("VerifyError"), r.err());
        assertFalse(r.err().contains("\tat "), r.err());
    }

    /**
     * Arrays of 64 MiB made and dropped in a loop: the garbage collector would keep up for ever, but the bytes one call
     * allocates are counted, and past the limit (1 GiB) the call is stopped as the policy's fault.
     */
    @Test
    @org.junit.jupiter.api.Timeout(value = 60, threadMode = org.junit.jupiter.api.Timeout.ThreadMode.SEPARATE_THREAD)
    void allocationsAddUpToTheLimit() throws IOException {
        Path jar = doctored("churn", mv -> {
            org.objectweb.asm.Label top = new org.objectweb.asm.Label();
            mv.visitLabel(top);
            mv.visitLdcInsn(8 << 20);
            mv.visitIntInsn(NEWARRAY, T_DOUBLE);
            mv.visitInsn(POP);
            mv.visitJumpInsn(GOTO, top);
        });
        CliRunner r = run(jar);
        assertEquals(Main.INVALID, r.code(), r.err());
        assertTrue(r.err().contains("kvpc: policy window failed: lane class 0, kernel ") && r.err().contains("past its allocation limit of 1024 MiB per call"), r.err());
        assertFalse(r.err().contains("ran past its time limit"), "stopped by its allocations, not by the clock: " + r.err());
    }

    /** One JDK call sized by the policy ({@code Arrays.copyOf} to 2^31 - 16 floats): refused before the JDK allocates it. */
    @Test
    void aJdkCallSizedPastTheLimitIsStopped() throws IOException {
        Path jar = doctored("copyof", mv -> {
            mv.visitInsn(ICONST_1);
            mv.visitIntInsn(NEWARRAY, T_FLOAT);
            mv.visitLdcInsn(Integer.MAX_VALUE - 15);
            mv.visitMethodInsn(INVOKESTATIC, "java/util/Arrays", "copyOf", "([FI)[F", false);
            mv.visitInsn(POP);
        });
        CliRunner r = run(jar);
        assertEquals(Main.INVALID, r.code(), r.err());
        assertTrue(r.err().contains("asked for 8589934528 bytes, past its allocation limit"), r.err());
    }

    /**
     * An endless loop in the attention variant's logit, which the host calls for every entry without a deadline of
     * its own: the watchdog sees that no call has begun for longer than the time limit and stops it. It used to hang.
     */
    @Test
    @org.junit.jupiter.api.Timeout(value = 60, threadMode = org.junit.jupiter.api.Timeout.ThreadMode.SEPARATE_THREAD)
    void anEndlessLoopInTheVariantIsStoppedToo() throws IOException {
        Path src = dir.resolve("capped.kvp");
        Files.writeString(src, """
                import "variants.kvp"
                import "window.kvp"

                config capped {
                    attention softcap(cap = 30.0)
                    layers 0.. use window(size = 2)
                }
                """);
        Path model = CliRunner.root().resolve("models/kvpc-tiny/kvpc-tiny.gguf");
        Path clean = dir.resolve("capped.clean.jar");
        CliRunner c = CliRunner.run("compile", src.toString(), "--model", model.toString(), "-o", clean.toString());
        assertEquals(0, c.code(), c.err());
        Path jar = copyRewriting(clean, dir.resolve("capped.jar"), "kvpc/gen/capped/Variant.class", bytes -> withPrefix(bytes, m -> m.equals("logit"), mv -> {
            org.objectweb.asm.Label top = new org.objectweb.asm.Label();
            mv.visitLabel(top);
            mv.visitJumpInsn(GOTO, top);
        }));
        CliRunner r = runWithin300Ms(jar);
        assertEquals(Main.INVALID, r.code(), r.err());
        assertTrue(r.err().contains("kvpc: policy capped failed: attention variant, logit") && r.err().contains("ran past its time limit of 300 ms"), r.err());
    }
}
