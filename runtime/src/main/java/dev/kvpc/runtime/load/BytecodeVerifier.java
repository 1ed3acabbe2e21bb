package dev.kvpc.runtime.load;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Predicate;

import org.objectweb.asm.ClassReader;
import org.objectweb.asm.ConstantDynamic;
import org.objectweb.asm.Handle;
import org.objectweb.asm.Opcodes;
import org.objectweb.asm.Type;
import org.objectweb.asm.tree.AbstractInsnNode;
import org.objectweb.asm.tree.ClassNode;
import org.objectweb.asm.tree.FieldInsnNode;
import org.objectweb.asm.tree.FieldNode;
import org.objectweb.asm.tree.InvokeDynamicInsnNode;
import org.objectweb.asm.tree.LdcInsnNode;
import org.objectweb.asm.tree.MethodInsnNode;
import org.objectweb.asm.tree.MethodNode;
import org.objectweb.asm.tree.MultiANewArrayInsnNode;
import org.objectweb.asm.tree.TryCatchBlockNode;
import org.objectweb.asm.tree.TypeInsnNode;

/**
 * Checks the classes of a policy jar before any is defined: every reference they make must be to a class of the jar,
 * to the runtime API, or to what {@link Whitelist} allows. Checked: method calls, field reads and writes,
 * {@code invokedynamic} (bootstrap and arguments), {@code ldc} of class literals, method types, method handles and
 * dynamic constants, {@code new}, casts, {@code instanceof}, array creation, catch types, superclasses and
 * interfaces, nest hosts and members, permitted subclasses, field types and the types in every declared and referenced
 * signature. Also refused: native and synchronized methods, {@code monitorenter}/{@code monitorexit}, declaring
 * {@code finalize()}, and classes in JDK or runtime packages. Static initialisers obey the same rules as other code.
 *
 * <p>A member referenced through a jar or runtime class is resolved the way the JVM resolves it (superclasses, then
 * interfaces) and judged by the class that declares it: {@code gen/MyLoader.defineClass(...)} inherited from
 * {@code java/lang/ClassLoader} is a call to {@code ClassLoader}. Runtime and JDK class files are read as resources of
 * the API class loader; nothing is loaded or initialised to check a jar.
 *
 * <p>Not checked, because the JVM never resolves them: {@code throws} clauses, annotations, generic signatures,
 * debug information and stack-map frames. The JVM's own verifier still runs on every class when it is linked, so code
 * cannot pass one type off as another to get around these checks.
 */
public final class BytecodeVerifier {
    private static final String OBJECT = "java/lang/Object";
    /** Packages a policy jar may not define classes in. */
    private static final List<String> RESERVED_PACKAGES = List.of("java/", "javax/", "jdk/", "sun/", "com/sun/", Whitelist.RUNTIME_API);

    private final ClassLoader api;
    private final Predicate<String> runtimeApi;

    /** A verifier that reads runtime and JDK class files through {@code api} (the loader policy classes will delegate to). */
    public BytecodeVerifier(ClassLoader api) {
        this(api, Whitelist::isRuntimeApi);
    }

    /**
     * A verifier for the decode kernels the host generates, which read a lane's rows in place: the policy API and the
     * kernel's own ({@link Whitelist#KERNEL_API}).
     */
    public static BytecodeVerifier forDecodeKernels(ClassLoader api) {
        return new BytecodeVerifier(api, Whitelist::isKernelApi);
    }

    /** As {@link #BytecodeVerifier(ClassLoader)}, with another notion of which classes form the runtime API (tests). */
    BytecodeVerifier(ClassLoader api, Predicate<String> runtimeApi) {
        this.api = api == null ? BytecodeVerifier.class.getClassLoader() : api;
        this.runtimeApi = Objects.requireNonNull(runtimeApi);
    }

    /**
     * Checks class files given by internal name ({@code gen/H2o}); returns every refusal, each a sentence such as
     * {@code "refused: class gen/H2o, method onOverflow(I)V calls java/lang/System.exit(I)V, which policy code may not
     * call"}, in class-name order. Empty when the classes may be loaded. A malformed class file is a refusal too.
     */
    public List<String> check(Map<String, byte[]> classFiles) {
        return new Run(classFiles).run();
    }

    /** Throws a {@link PolicyLoadException} listing every refusal unless {@link #check} finds none. */
    public void verify(Map<String, byte[]> classFiles) throws PolicyLoadException {
        List<String> problems = check(classFiles);
        if (!problems.isEmpty()) throw PolicyLoadException.of(problems);
    }

    // ---------------------------------------------------------------------------------------------- one check

    /** What a member reference does, for the whitelist and for messages. */
    private enum Kind {
        STATIC_CALL("calls", "call", Whitelist.Use.STATIC_CALL),
        INSTANCE_CALL("calls", "call", Whitelist.Use.INSTANCE_CALL),
        CONSTRUCT("calls", "call", Whitelist.Use.CONSTRUCT),
        LAMBDA("makes a lambda of", "call", null), // use taken from the handle kind
        STATIC_READ("reads field", "read", Whitelist.Use.STATIC_READ),
        INSTANCE_READ("reads field", "read", null),
        STATIC_WRITE("writes field", "write", null),
        INSTANCE_WRITE("writes field", "write", null);

        final String verb, base;
        final Whitelist.Use use;

        Kind(String verb, String base, Whitelist.Use use) {
            this.verb = verb;
            this.base = base;
            this.use = use;
        }

        boolean field() {
            return this == STATIC_READ || this == INSTANCE_READ || this == STATIC_WRITE || this == INSTANCE_WRITE;
        }
    }

    /** The members and supertypes of a class, from the jar or from a class file of the API loader. */
    private record Info(String superName, List<String> interfaces, Set<String> methods, Set<String> fields) {
        static Info of(ClassNode c) {
            Set<String> m = new HashSet<>(), f = new HashSet<>();
            for (MethodNode mn : c.methods) m.add(mn.name + mn.desc);
            for (FieldNode fn : c.fields) f.add(fn.name + ":" + fn.desc);
            return new Info(c.superName, c.interfaces == null ? List.of() : c.interfaces, m, f);
        }
    }

    /** Where a member is declared: a class name, or {@link #missing} naming a supertype that could not be read. */
    private record Resolution(String declaring, String missing) {
        static final Resolution NOT_FOUND = new Resolution(null, null);
    }

    private final class Run {
        private final Map<String, byte[]> files;
        private final Map<String, ClassNode> jar = new TreeMap<>();
        private final Map<String, Info> infos = new HashMap<>();
        private final Set<String> unreadable = new HashSet<>();
        private final List<String> problems = new ArrayList<>();
        private final Set<String> seen = new HashSet<>();

        Run(Map<String, byte[]> files) {
            this.files = files;
        }

        List<String> run() {
            for (Map.Entry<String, byte[]> e : new TreeMap<>(files).entrySet()) {
                String path = e.getKey() + ".class";
                ClassNode node = new ClassNode();
                try {
                    new ClassReader(e.getValue()).accept(node, ClassReader.SKIP_DEBUG | ClassReader.SKIP_FRAMES);
                } catch (RuntimeException ex) {
                    report("refused: class file " + path + " is malformed (" + describe(ex) + ")");
                    continue;
                }
                if (!e.getKey().equals(node.name)) {
                    report("refused: class file " + path + " holds class " + node.name + ", not " + e.getKey());
                    continue;
                }
                jar.put(node.name, node);
            }
            for (ClassNode c : jar.values()) {
                try {
                    checkClass(c);
                } catch (RuntimeException ex) { // a descriptor ASM cannot take apart, say
                    report("refused: class " + c.name + " is malformed (" + describe(ex) + ")");
                }
            }
            return List.copyOf(problems);
        }

        private void report(String problem) {
            if (seen.add(problem)) problems.add(problem);
        }

        // ------------------------------------------------------------------------------------------ classes

        private void checkClass(ClassNode c) {
            String cls = "refused: class " + c.name;
            for (String p : RESERVED_PACKAGES) {
                if (c.name.startsWith(p)) {
                    int slash = c.name.lastIndexOf('/');
                    report(cls + " is in package " + c.name.substring(0, slash) + ", where policy code may not define classes");
                }
            }
            if ((c.access & Opcodes.ACC_MODULE) != 0) report(cls + " is a module descriptor, which policy jars may not hold");
            if (c.superName == null) {
                report(cls + " has no superclass");
            } else if (!mayExtend(c.superName)) {
                report(cls + " extends " + c.superName + ", which policy code may not extend");
            }
            for (String i : c.interfaces) {
                if (!mayExtend(i)) report(cls + " implements " + i + ", which policy code may not implement");
            }
            if (c.nestHostClass != null && !jar.containsKey(c.nestHostClass)) {
                report(cls + " names " + c.nestHostClass + " as its nest host, which is not in the jar");
            }
            for (String n : nullToEmpty(c.nestMembers)) {
                if (!jar.containsKey(n)) report(cls + " names " + n + " as a nest member, which is not in the jar");
            }
            for (String n : nullToEmpty(c.permittedSubclasses)) {
                if (!jar.containsKey(n)) report(cls + " permits subclass " + n + ", which is not in the jar");
            }
            for (FieldNode f : c.fields) {
                String bad = badType(Type.getType(f.desc));
                if (bad != null) report(cls + ", field " + f.name + " has type " + bad + ", which policy code may not use");
            }
            for (MethodNode m : c.methods) checkMethod(c, m);
        }

        private boolean mayExtend(String type) {
            if (jar.containsKey(type) || runtimeApi.test(type)) return true;
            Whitelist.Row row = Whitelist.rowFor(type);
            return row != null && row.uses().contains(Whitelist.Use.EXTEND);
        }

        // ------------------------------------------------------------------------------------------ methods

        private void checkMethod(ClassNode c, MethodNode m) {
            String at = "refused: class " + c.name + ", method " + m.name + m.desc;
            if ((m.access & Opcodes.ACC_NATIVE) != 0) report(at + " is native, which policy code may not be (no native methods)");
            if ((m.access & Opcodes.ACC_SYNCHRONIZED) != 0) report(at + " is synchronized, which policy code may not be (no locks)");
            if ((m.access & Opcodes.ACC_STATIC) == 0 && Whitelist.OBJECT_METHODS_REFUSED.containsKey(m.name + m.desc)) {
                report(at + " overrides java/lang/Object." + m.name + m.desc + ", which policy code may not ("
                        + Whitelist.OBJECT_METHODS_REFUSED.get(m.name + m.desc) + ")");
            }
            String badSig = badInMethodDesc(m.desc);
            if (badSig != null) report(at + " has " + badSig + " in its signature, which policy code may not use");
            for (TryCatchBlockNode t : m.tryCatchBlocks) {
                if (t.type != null) typeUse(at, "catches", t.type);
            }
            // the code's own consistency (stack depths, operand kinds, maximums, jump targets), so that a class the
            // checks below accept cannot fail the JVM's verifier later, inside the host, when it is first linked
            if (m.instructions.size() > 0) {
                try {
                    new org.objectweb.asm.tree.analysis.Analyzer<>(new org.objectweb.asm.tree.analysis.BasicVerifier()).analyze(c.name, m);
                } catch (org.objectweb.asm.tree.analysis.AnalyzerException ex) {
                    report(at + " does not verify: " + ex.getMessage());
                } catch (RuntimeException | AssertionError ex) {
                    // ASM's interpreter asserts on some malformed code (a constant of no known kind), found by fuzzing
                    report(at + " does not verify (" + describe(ex) + ")");
                }
            }
            for (AbstractInsnNode insn = m.instructions.getFirst(); insn != null; insn = insn.getNext()) {
                switch (insn) {
                    case MethodInsnNode mi -> {
                        Kind k = switch (mi.getOpcode()) {
                            case Opcodes.INVOKESTATIC -> Kind.STATIC_CALL;
                            case Opcodes.INVOKESPECIAL -> mi.name.equals("<init>") ? Kind.CONSTRUCT : Kind.INSTANCE_CALL;
                            default -> Kind.INSTANCE_CALL;
                        };
                        member(at, k, mi.owner, mi.name, mi.desc);
                    }
                    case FieldInsnNode fi -> {
                        Kind k = switch (fi.getOpcode()) {
                            case Opcodes.GETSTATIC -> Kind.STATIC_READ;
                            case Opcodes.PUTSTATIC -> Kind.STATIC_WRITE;
                            case Opcodes.GETFIELD -> Kind.INSTANCE_READ;
                            default -> Kind.INSTANCE_WRITE;
                        };
                        member(at, k, fi.owner, fi.name, fi.desc);
                    }
                    case TypeInsnNode ti -> {
                        switch (ti.getOpcode()) {
                            case Opcodes.NEW -> {
                                if (!mayConstruct(ti.desc)) report(at + " creates " + ti.desc + ", which policy code may not create");
                            }
                            case Opcodes.ANEWARRAY -> typeUse(at, "creates an array of", ti.desc);
                            case Opcodes.CHECKCAST -> typeUse(at, "casts to", ti.desc);
                            default -> typeUse(at, "tests instanceof", ti.desc);
                        }
                    }
                    // each row is created on its own, so that the allocation limit (PolicyClock.allocate) counts it
                    case MultiANewArrayInsnNode ma -> report(at + " creates the array " + ma.desc + " in one multianewarray instruction, which policy code "
                            + "may not use (create each row with newarray)");
                    case LdcInsnNode ldc -> constant(at, ldc.cst);
                    case InvokeDynamicInsnNode indy -> invokedynamic(at, indy);
                    default -> {
                        if (insn.getOpcode() == Opcodes.MONITORENTER || insn.getOpcode() == Opcodes.MONITOREXIT) {
                            report(at + " uses " + (insn.getOpcode() == Opcodes.MONITORENTER ? "monitorenter" : "monitorexit")
                                    + ", which policy code may not use (no locks)");
                        }
                    }
                }
            }
        }

        private void typeUse(String at, String verb, String internalOrArray) {
            String bad = badType(objectOrArray(internalOrArray));
            if (bad != null) report(at + " " + verb + " " + bad + ", which policy code may not use");
        }

        private boolean mayConstruct(String type) {
            if (type.startsWith("[")) return false; // NEW never names an array; the JVM would refuse it anyway
            if (jar.containsKey(type) || runtimeApi.test(type)) return true;
            Whitelist.Row row = Whitelist.rowFor(type);
            return row != null && row.uses().contains(Whitelist.Use.CONSTRUCT);
        }

        private void constant(String at, Object cst) {
            switch (cst) {
                case Type t when t.getSort() == Type.METHOD -> report(at + " loads method type constant " + t.getDescriptor()
                        + ", which policy code may not load");
                case Type t -> {
                    String bad = badType(t);
                    if (bad != null) report(at + " loads the class literal " + bad + ", which policy code may not use");
                }
                case Handle h -> report(at + " loads method handle constant " + handle(h) + ", which policy code may not load");
                case ConstantDynamic d -> report(at + " loads dynamic constant " + d.getName() + " with bootstrap "
                        + handle(d.getBootstrapMethod()) + ", which policy code may not load");
                default -> {
                }
            }
        }

        // ------------------------------------------------------------------------------------------ invokedynamic

        private void invokedynamic(String at, InvokeDynamicInsnNode indy) {
            Handle bsm = indy.bsm;
            Whitelist.Bootstrap b = bsm.getTag() == Opcodes.H_INVOKESTATIC ? Whitelist.bootstrapFor(bsm.getOwner(), bsm.getName()) : null;
            String site = "invokedynamic " + indy.name + indy.desc + " with bootstrap " + handle(bsm);
            if (b == null) {
                report(at + " uses " + site + ", which policy code may not use");
                return;
            }
            String badSig = badInMethodDesc(indy.desc);
            if (badSig != null) {
                report(at + " uses " + site + ", which policy code may not use (its call site uses " + badSig + ")");
                return;
            }
            switch (b.kind()) {
                case STRING_CONCAT -> {
                    for (Object a : indy.bsmArgs) {
                        if (!(a instanceof String || a instanceof Integer || a instanceof Long || a instanceof Float || a instanceof Double)) {
                            report(at + " uses " + site + ", which policy code may not use (a concatenation constant that is "
                                    + "not a string or number)");
                        }
                    }
                }
                case LAMBDA -> {
                    for (Object a : indy.bsmArgs) {
                        switch (a) {
                            case Handle h -> {
                                Kind k = handleKind(h.getTag());
                                if (k == null) {
                                    report(at + " makes a lambda of " + handle(h) + ", which policy code may not call");
                                } else {
                                    member(at, Kind.LAMBDA, k, h.getOwner(), h.getName(), h.getDesc());
                                }
                            }
                            case Type t when t.getSort() == Type.METHOD -> {
                                String bad = badInMethodDesc(t.getDescriptor());
                                if (bad != null) report(at + " uses " + site + ", which policy code may not use (its lambda type uses " + bad + ")");
                            }
                            case Type t -> {
                                String bad = badType(t);
                                if (bad != null) report(at + " uses " + site + ", which policy code may not use (it names " + bad + ")");
                            }
                            case Integer i -> {
                            }
                            default -> report(at + " uses " + site + ", which policy code may not use (an unexpected lambda argument)");
                        }
                    }
                }
                case RECORD_METHODS -> {
                    List<Object> args = indy.bsmArgs == null ? List.of() : List.of(indy.bsmArgs);
                    boolean ok = args.size() >= 2 && args.get(0) instanceof Type t && t.getSort() == Type.OBJECT
                            && jar.containsKey(t.getInternalName()) && args.get(1) instanceof String;
                    if (ok) {
                        String record = ((Type) args.get(0)).getInternalName();
                        for (Object a : args.subList(2, args.size())) {
                            ok &= a instanceof Handle h && h.getTag() == Opcodes.H_GETFIELD && h.getOwner().equals(record);
                        }
                    }
                    if (!ok) {
                        report(at + " uses " + site + ", which policy code may not use (record methods must read the "
                                + "record's own fields)");
                    }
                }
            }
        }

        private static Kind handleKind(int tag) {
            return switch (tag) {
                case Opcodes.H_INVOKESTATIC -> Kind.STATIC_CALL;
                case Opcodes.H_INVOKEVIRTUAL, Opcodes.H_INVOKEINTERFACE, Opcodes.H_INVOKESPECIAL -> Kind.INSTANCE_CALL;
                case Opcodes.H_NEWINVOKESPECIAL -> Kind.CONSTRUCT;
                case Opcodes.H_GETSTATIC -> Kind.STATIC_READ;
                case Opcodes.H_GETFIELD -> Kind.INSTANCE_READ;
                case Opcodes.H_PUTSTATIC -> Kind.STATIC_WRITE;
                case Opcodes.H_PUTFIELD -> Kind.INSTANCE_WRITE;
                default -> null;
            };
        }

        // ------------------------------------------------------------------------------------------ members

        private void member(String at, Kind kind, String owner, String name, String desc) {
            member(at, kind, kind, owner, name, desc);
        }

        /**
         * Checks one member reference; {@code shown} picks the wording, {@code kind} what the reference does. Reports
         * at most one refusal per reference.
         */
        private void member(String at, Kind shown, Kind kind, String owner, String name, String desc) {
            String ref = owner + "." + name + (kind.field() ? ":" + desc : desc);
            String refused = ", which policy code may not " + shown.base;
            if (!kind.field()) {
                String why = Whitelist.OBJECT_METHODS_REFUSED.get(name + desc);
                if (why != null) {
                    report(at + " " + shown.verb + " " + ref + refused + " (" + why + ")");
                    return;
                }
            }
            String badSig = kind.field() ? badType(Type.getType(desc)) : badInMethodDesc(desc);
            if (badSig != null) {
                report(at + " " + shown.verb + " " + ref + refused + " (its signature uses " + badSig + ")");
                return;
            }
            if (owner.startsWith("[")) { // clone(), equals... of an array
                String bad = badType(Type.getType(owner));
                boolean ok = bad == null && !kind.field() && kind == Kind.INSTANCE_CALL
                        && (name.equals("clone") || name.equals("equals") || name.equals("hashCode") || name.equals("toString"));
                if (!ok) report(at + " " + shown.verb + " " + ref + refused);
                return;
            }
            String judged = owner; // the class whose rules apply
            if (jar.containsKey(owner) || runtimeApi.test(owner)) {
                Resolution r = name.equals("<init>") ? resolveConstructor(owner, desc)
                        : kind.field() ? resolveField(owner, name + ":" + desc, new HashSet<>())
                        : resolveMethod(owner, name + desc);
                if (r.missing() != null) {
                    report(at + " " + shown.verb + " " + ref + (r.missing().equals(owner)
                            ? ", which the host does not have (no class " + owner + ")"
                            : ", which cannot be checked (the host has no class " + r.missing() + ")"));
                    return;
                }
                if (r.declaring() == null) {
                    report(at + " " + shown.verb + " " + ref + ", which does not exist");
                    return;
                }
                if (jar.containsKey(r.declaring()) || runtimeApi.test(r.declaring())) return;
                judged = r.declaring();
                ref = ref + " (declared in " + judged + ")";
            }
            Whitelist.Row row = Whitelist.rowFor(judged);
            if (row == null) {
                report(at + " " + shown.verb + " " + ref + refused);
                return;
            }
            String why = switch (kind) {
                case STATIC_WRITE, INSTANCE_WRITE -> "policy code never writes fields of JDK classes";
                case INSTANCE_READ -> "policy code reads only static constants of JDK classes";
                default -> row.refusal(kind.use, name);
            };
            if (why != null) report(at + " " + shown.verb + " " + ref + refused + " (" + why + ")");
        }

        // ------------------------------------------------------------------------------------------ resolution

        private Resolution resolveConstructor(String owner, String desc) {
            Info i = info(owner);
            if (i == null) return new Resolution(null, owner);
            return i.methods().contains("<init>" + desc) ? new Resolution(owner, null) : Resolution.NOT_FOUND;
        }

        /** JVMS 5.4.3.3: the class and its superclasses, then the superinterfaces. */
        private Resolution resolveMethod(String owner, String nameDesc) {
            List<String> interfaces = new ArrayList<>();
            Set<String> supers = new HashSet<>();
            // a class that is its own superclass, directly or not (a malformed jar; found by fuzzing, it ran out of heap)
            for (String c = owner; c != null && supers.add(c); ) {
                Info i = info(c);
                if (i == null) return new Resolution(null, c);
                if (i.methods().contains(nameDesc)) return new Resolution(c, null);
                interfaces.addAll(i.interfaces());
                c = i.superName();
            }
            Set<String> visited = new HashSet<>();
            while (!interfaces.isEmpty()) {
                String c = interfaces.removeFirst();
                if (!visited.add(c)) continue;
                Info i = info(c);
                if (i == null) return new Resolution(null, c);
                if (i.methods().contains(nameDesc)) return new Resolution(c, null);
                interfaces.addAll(i.interfaces());
            }
            return Resolution.NOT_FOUND;
        }

        /** JVMS 5.4.3.2: the class, its superinterfaces, then its superclass. */
        private Resolution resolveField(String c, String nameDesc, Set<String> visited) {
            if (!visited.add(c)) return Resolution.NOT_FOUND;
            Info i = info(c);
            if (i == null) return new Resolution(null, c);
            if (i.fields().contains(nameDesc)) return new Resolution(c, null);
            for (String s : i.interfaces()) {
                Resolution r = resolveField(s, nameDesc, visited);
                if (r != Resolution.NOT_FOUND) return r;
            }
            return i.superName() == null ? Resolution.NOT_FOUND : resolveField(i.superName(), nameDesc, visited);
        }

        /** The class from the jar, or its class file read through the API loader; null if neither has it. */
        private Info info(String name) {
            ClassNode n = jar.get(name);
            if (n != null) return infos.computeIfAbsent(name, k -> Info.of(n));
            if (unreadable.contains(name)) return null;
            Info i = infos.get(name);
            if (i != null) return i;
            ClassNode node = readApiClass(name);
            if (node == null) {
                unreadable.add(name);
                return null;
            }
            i = Info.of(node);
            infos.put(name, i);
            return i;
        }

        private ClassNode readApiClass(String name) {
            String resource = name + ".class";
            for (ClassLoader l : new ClassLoader[] {api, ClassLoader.getPlatformClassLoader()}) {
                try (InputStream in = l.getResourceAsStream(resource)) {
                    if (in == null) continue;
                    ClassNode node = new ClassNode();
                    new ClassReader(in.readAllBytes()).accept(node, ClassReader.SKIP_CODE | ClassReader.SKIP_DEBUG | ClassReader.SKIP_FRAMES);
                    return name.equals(node.name) ? node : null;
                } catch (IOException | RuntimeException e) {
                    return null;
                }
            }
            return null;
        }

        // ------------------------------------------------------------------------------------------ types

        /** Null if policy code may name {@code t} (after stripping array dimensions), else the offending class. */
        private String badType(Type t) {
            if (t.getSort() == Type.ARRAY) t = t.getElementType();
            if (t.getSort() != Type.OBJECT) return null;
            String n = t.getInternalName();
            return jar.containsKey(n) || runtimeApi.test(n) || Whitelist.rowFor(n) != null ? null : n;
        }

        private String badInMethodDesc(String desc) {
            String bad = badType(Type.getReturnType(desc));
            if (bad != null) return bad;
            for (Type a : Type.getArgumentTypes(desc)) {
                bad = badType(a);
                if (bad != null) return bad;
            }
            return null;
        }
    }

    private static Type objectOrArray(String internalOrArray) {
        return internalOrArray.startsWith("[") ? Type.getType(internalOrArray) : Type.getObjectType(internalOrArray);
    }

    private static String handle(Handle h) {
        return h.getOwner() + "." + h.getName() + h.getDesc();
    }

    private static List<String> nullToEmpty(List<String> l) {
        return l == null ? List.of() : l;
    }

    private static String describe(Throwable e) {
        String m = e.getMessage();
        return e.getClass().getSimpleName() + (m == null ? "" : ": " + PolicyManifest.shorten(m));
    }
}
