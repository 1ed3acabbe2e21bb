package dev.kvpc.runtime.load;

import java.net.MalformedURLException;
import java.net.URL;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Loads a compiled policy jar: reads it ({@link PolicyJar#read}), checks the manifest's model-shape constraints against
 * the host's model, verifies every class ({@link BytecodeVerifier}), then defines all of them in a fresh
 * {@link ClassLoader} that holds the jar's classes and delegates everything else to {@code parent}. Classes are
 * defined but not initialised: no policy code has run when {@link #load} returns.
 *
 * <p>Each step fails with a {@link PolicyLoadException} whose message is meant for the user, for instance
 * {@code "policy h2o needs kv-heads=8, this model has 4"} or {@code "refused: class gen/H2o, method onOverflow(I)V
 * calls java/lang/System.exit(I)V, which policy code may not call"}.
 */
public final class PolicyJarLoader {
    private PolicyJarLoader() {
    }

    /**
     * A policy jar ready to run on a host's lanes: {@link #load loaded} for {@code host}, its entry class made, every
     * call into its code guarded ({@link GuardedPolicy}: what it throws arrives as a {@link PolicyFault} naming the
     * policy), and run by {@link dev.kvpc.runtime.exec.NativeRunner}. What a host that links the runtime alone does.
     */
    public static dev.kvpc.runtime.PolicyRunner runner(Path jar, ModelShapeSpec host) throws PolicyLoadException {
        LoadedPolicy loaded = load(jar, host);
        dev.kvpc.runtime.policy.CompiledPolicy policy;
        try {
            policy = new GuardedPolicy(loaded.manifest().policyName(),
                    loaded.entryClassAs(dev.kvpc.runtime.policy.CompiledPolicy.class).getDeclaredConstructor().newInstance());
        } catch (ReflectiveOperationException e) {
            throw new PolicyLoadException(jar + ": its entry class cannot be instantiated: " + e, e);
        }
        return dev.kvpc.runtime.exec.NativeRunner.of(policy);
    }

    /** {@link #load(Path, ModelShapeSpec, ClassLoader)} with the loader of the runtime itself as parent. */
    public static LoadedPolicy load(Path jar, ModelShapeSpec host) throws PolicyLoadException {
        return load(jar, host, PolicyJarLoader.class.getClassLoader());
    }

    /**
     * Loads a policy jar for a model of shape {@code host}; {@code parent} must see the runtime API (and is where the
     * verifier reads runtime and JDK class files from).
     */
    public static LoadedPolicy load(Path jar, ModelShapeSpec host, ClassLoader parent) throws PolicyLoadException {
        Objects.requireNonNull(jar, "jar");
        Objects.requireNonNull(host, "host");
        Objects.requireNonNull(parent, "parent");
        PolicyJar contents = PolicyJar.read(jar);
        PolicyManifest m = contents.manifest();
        if (!m.compilerVersion().equals(KvpcVersion.current())) {
            throw new PolicyLoadException(jar + ": policy " + m.policyName() + " was compiled by kvpc " + m.compilerVersion() + "; this is kvpc "
                    + KvpcVersion.current() + ", which loads only the jars it compiles (the program a jar carries has no stable form across "
                    + "versions yet): compile its source again");
        }
        m.checkFits(host);
        new BytecodeVerifier(parent).verify(contents.classFiles());
        return define(contents, parent);
    }

    /**
     * A class with a call to {@link PolicyClock#tick} before every backward jump (a loop's back edge, a backward
     * switch target), so that a loop cannot outrun its call's deadline, and a call to {@link PolicyClock#allocate}
     * before every array it creates ({@code newarray}, {@code anewarray}) and every JDK call that sizes an array from its
     * last argument ({@code Arrays.copyOf}, {@code Arrays.copyOfRange}, {@code new BitSet(n)}, {@code new
     * StringBuilder(n)}), so that it cannot allocate past its budget. The calls leave the stack as they find it and fall in
     * the middle of a basic block, so stack-map frames stand; the maximum stack is computed again.
     */
    static byte[] withTicks(byte[] cls) {
        org.objectweb.asm.ClassReader r = new org.objectweb.asm.ClassReader(cls);
        org.objectweb.asm.ClassWriter w = new org.objectweb.asm.ClassWriter(r, org.objectweb.asm.ClassWriter.COMPUTE_MAXS);
        String clock = org.objectweb.asm.Type.getInternalName(PolicyClock.class);
        r.accept(new org.objectweb.asm.ClassVisitor(org.objectweb.asm.Opcodes.ASM9, w) {
            @Override
            public org.objectweb.asm.MethodVisitor visitMethod(int access, String name, String desc, String sig, String[] ex) {
                return new org.objectweb.asm.MethodVisitor(org.objectweb.asm.Opcodes.ASM9, super.visitMethod(access, name, desc, sig, ex)) {
                    private final java.util.Set<org.objectweb.asm.Label> seen = new java.util.HashSet<>();

                    /** One tick before a jump any of whose {@code targets} is behind it. */
                    private void tickIfBack(org.objectweb.asm.Label... targets) {
                        for (org.objectweb.asm.Label l : targets) {
                            if (seen.contains(l)) {
                                super.visitMethodInsn(org.objectweb.asm.Opcodes.INVOKESTATIC, clock, "tick", "()V", false);
                                return;
                            }
                        }
                    }

                    /** The count on top of the stack is charged {@code elementBytes} each: {@code count -> count}. */
                    private void charge(int elementBytes) {
                        super.visitIntInsn(org.objectweb.asm.Opcodes.BIPUSH, elementBytes);
                        super.visitMethodInsn(org.objectweb.asm.Opcodes.INVOKESTATIC, clock, "allocate", "(II)I", false);
                    }

                    @Override
                    public void visitIntInsn(int opcode, int operand) {
                        if (opcode == org.objectweb.asm.Opcodes.NEWARRAY) charge(switch (operand) {
                            case org.objectweb.asm.Opcodes.T_BOOLEAN, org.objectweb.asm.Opcodes.T_BYTE -> 1;
                            case org.objectweb.asm.Opcodes.T_CHAR, org.objectweb.asm.Opcodes.T_SHORT -> 2;
                            case org.objectweb.asm.Opcodes.T_INT, org.objectweb.asm.Opcodes.T_FLOAT -> 4;
                            default -> 8;
                        });
                        super.visitIntInsn(opcode, operand);
                    }

                    @Override
                    public void visitTypeInsn(int opcode, String type) {
                        if (opcode == org.objectweb.asm.Opcodes.ANEWARRAY) charge(8);
                        super.visitTypeInsn(opcode, type);
                    }

                    @Override
                    public void visitMethodInsn(int opcode, String owner, String name, String desc, boolean itf) {
                        int bytes = sizingCall(owner, name, desc);
                        if (bytes > 0) charge(bytes);
                        super.visitMethodInsn(opcode, owner, name, desc, itf);
                    }

                    @Override
                    public void visitLabel(org.objectweb.asm.Label label) {
                        seen.add(label);
                        super.visitLabel(label);
                    }

                    @Override
                    public void visitJumpInsn(int opcode, org.objectweb.asm.Label label) {
                        tickIfBack(label);
                        super.visitJumpInsn(opcode, label);
                    }

                    @Override
                    public void visitTableSwitchInsn(int min, int max, org.objectweb.asm.Label dflt, org.objectweb.asm.Label... labels) {
                        tickIfBack(withDefault(dflt, labels));
                        super.visitTableSwitchInsn(min, max, dflt, labels);
                    }

                    @Override
                    public void visitLookupSwitchInsn(org.objectweb.asm.Label dflt, int[] keys, org.objectweb.asm.Label[] labels) {
                        tickIfBack(withDefault(dflt, labels));
                        super.visitLookupSwitchInsn(dflt, keys, labels);
                    }
                };
            }
        }, 0);
        return w.toByteArray();
    }

    /**
     * Bytes per element of the array a JDK call sizes from its last argument, an int; 0 when the call is not one
     * ({@link #withTicks}).
     */
    static int sizingCall(String owner, String name, String desc) {
        org.objectweb.asm.Type[] args = org.objectweb.asm.Type.getArgumentTypes(desc);
        if (args.length == 0 || args[args.length - 1].getSort() != org.objectweb.asm.Type.INT) return 0;
        if (owner.equals("java/util/Arrays") && (name.equals("copyOf") || name.equals("copyOfRange"))) {
            return switch (org.objectweb.asm.Type.getReturnType(desc).getElementType().getSort()) {
                case org.objectweb.asm.Type.BOOLEAN, org.objectweb.asm.Type.BYTE -> 1;
                case org.objectweb.asm.Type.CHAR, org.objectweb.asm.Type.SHORT -> 2;
                case org.objectweb.asm.Type.INT, org.objectweb.asm.Type.FLOAT -> 4;
                default -> 8;
            };
        }
        // a bit set of n bits is charged a byte a bit: an over-count, on the safe side
        if (owner.equals("java/util/BitSet") && name.equals("<init>") && desc.equals("(I)V")) return 1;
        if (owner.equals("java/lang/StringBuilder") && name.equals("<init>") && desc.equals("(I)V")) return 2;
        return 0;
    }

    private static org.objectweb.asm.Label[] withDefault(org.objectweb.asm.Label dflt, org.objectweb.asm.Label[] labels) {
        org.objectweb.asm.Label[] all = java.util.Arrays.copyOf(labels, labels.length + 1);
        all[labels.length] = dflt;
        return all;
    }

    /** Defines every class of an already verified jar in a fresh loader under {@code parent}. */
    static LoadedPolicy define(PolicyJar contents, ClassLoader parent) throws PolicyLoadException {
        PolicyManifest manifest = contents.manifest();
        Map<String, byte[]> byBinaryName = new LinkedHashMap<>();
        // verified as written; defined with a watchdog tick at every loop's back edge
        contents.classFiles().forEach((internal, bytes) -> byBinaryName.put(internal.replace('/', '.'), withTicks(bytes)));
        URL location;
        try {
            location = contents.source().toUri().toURL();
        } catch (MalformedURLException | IllegalArgumentException | UnsupportedOperationException e) {
            location = null;
        }
        PolicyClassLoader loader = new PolicyClassLoader(manifest.policyName(), byBinaryName, parent, location);
        List<String> names = new ArrayList<>(byBinaryName.keySet());
        for (String name : names) {
            try {
                Class<?> c = Class.forName(name, false, loader);
                if (c.getClassLoader() != loader) {
                    throw new PolicyLoadException("policy " + manifest.policyName() + ": class " + name + " of the jar is shadowed by "
                            + "a class of the host");
                }
            } catch (ClassNotFoundException | LinkageError | SecurityException e) {
                throw new PolicyLoadException("policy " + manifest.policyName() + ": class " + name.replace('.', '/')
                        + " cannot be defined: " + e, e);
            }
        }
        Class<?> entry;
        try {
            entry = Class.forName(manifest.entryClass(), false, loader);
        } catch (ClassNotFoundException | LinkageError e) {
            throw new PolicyLoadException("policy " + manifest.policyName() + ": entry class " + manifest.entryClass() + " cannot be loaded: " + e, e);
        }
        return new LoadedPolicy(contents.source(), manifest, entry, names);
    }
}
