package dev.kvpc.runtime.load;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static dev.kvpc.runtime.load.Whitelist.Use.CONSTRUCT;
import static dev.kvpc.runtime.load.Whitelist.Use.EXTEND;
import static dev.kvpc.runtime.load.Whitelist.Use.INSTANCE_CALL;
import static dev.kvpc.runtime.load.Whitelist.Use.STATIC_CALL;
import static dev.kvpc.runtime.load.Whitelist.Use.STATIC_READ;

/**
 * What compiled policy code may reach outside its own jar: the one table {@link BytecodeVerifier} checks every
 * reference against. Three parts:
 *
 * <ol>
 *   <li>{@link #API the runtime's API}: the five classes compiled policies implement or call, named one by one (the
 *       typed lane context, the interfaces of a compiled policy, a lane class and an attention variant, and the
 *       variants' normalisations). Nothing else of the runtime is reachable: not its files, pools, traces, caches,
 *       engine or loader, whatever package they are in;</li>
 *   <li>{@link #TABLE JDK classes} and the policy vocabulary (the IR's enums {@code LaneContext} takes), each row with the uses it permits (construct, call static or instance methods,
 *       read static constants, extend or implement), an optional list of the only member names allowed or of names
 *       refused, and why the row is safe;</li>
 *   <li>{@link #BOOTSTRAPS invokedynamic bootstraps}: string concatenation, lambdas and record methods, each with
 *       the condition under which it is safe.</li>
 * </ol>
 *
 * Anything not listed is refused: reflection, {@code java/lang/Class}, class loaders, method handles, I/O, networking,
 * threads and {@code java/util/concurrent}, {@code System}, {@code Runtime}, {@code ProcessBuilder}, {@code Unsafe},
 * {@code jdk/internal}. Fields of JDK classes are never written. Besides the table, whatever the owner:
 * {@link #OBJECT_METHODS_REFUSED} ({@code getClass}, {@code wait}, {@code notify}, {@code finalize}) are refused, and
 * every type in a referenced member's signature must itself be one policy code may name (so a whitelisted class's
 * method that returns a {@code Class} or takes a {@code Path} is refused).
 */
final class Whitelist {
    private Whitelist() {
    }

    /** Package prefix of the runtime, where policy jars may not define classes. */
    static final String RUNTIME_API = "dev/kvpc/runtime/";

    /**
     * The runtime's API for policy code, class by class, and why each is safe to hand over. Policy code may use every
     * member these classes declare (members they inherit are judged by the class that declares them); any other
     * class of the runtime is refused like any class the table does not list.
     */
    static final Map<String, String> API = Map.of(
            "dev/kvpc/runtime/policy/LaneContext",
            "the typed lane context: each method reads or changes only the lanes of the event it is handed for",
            "dev/kvpc/runtime/policy/CompiledPolicy", "what a policy jar's entry class implements; the host calls it",
            "dev/kvpc/runtime/policy/CompiledLaneClass", "what a lane class implements; the host calls it with a lane context",
            "dev/kvpc/runtime/AttentionVariant", "what a compiled attention variant implements: logits, masks and a normalisation, "
                    + "pure functions of their arguments",
            "dev/kvpc/runtime/AttentionVariant$Normalize", "the normalisations a variant names (softmax, sigmoid...): pure arithmetic");

    /** Whether {@code internalName} is a class of the runtime's API for policy code ({@link #API}). */
    static boolean isRuntimeApi(String internalName) {
        return API.containsKey(internalName);
    }

    /**
     * What decode kernels reach besides {@link #API}: the host generates them at run time (they are never read from a
     * policy jar), and they read a lane's rows in place. Tests hold them to this wider API, so that a kernel stays code
     * the verifier could accept.
     */
    static final Map<String, String> KERNEL_API = Map.of(
            "dev/kvpc/runtime/engine/DecodeKernel", "what a decode kernel implements; the host calls it",
            "dev/kvpc/runtime/lane/KernelRows", "a lane's rows as a kernel reads them: sizes, tables and the pages' segments",
            "dev/kvpc/runtime/lane/Lane$Part", "which part of an entry (keys or values) a page holds");

    /** Whether {@code internalName} is a class of the API for decode kernels ({@link #API} and {@link #KERNEL_API}). */
    static boolean isKernelApi(String internalName) {
        return isRuntimeApi(internalName) || KERNEL_API.containsKey(internalName);
    }

    /** How policy code may use a class. */
    enum Use {
        /** {@code new C} and {@code C.<init>} (including a subclass's super constructor call). */
        CONSTRUCT("constructors"),
        /** {@code invokestatic}. */
        STATIC_CALL("static methods"),
        /** {@code invokevirtual}, {@code invokeinterface}, and {@code invokespecial} of a non-constructor. */
        INSTANCE_CALL("instance methods"),
        /** {@code getstatic} (JDK fields are never written). */
        STATIC_READ("static constants"),
        /** As the superclass or an interface of a policy class. */
        EXTEND("as a supertype");

        final String text;

        Use(String text) {
            this.text = text;
        }
    }

    /**
     * One row: {@code classes} is an internal name, or a prefix ending in {@code *} that covers the classes of one
     * package ({@code jdk/incubator/vector/*}) or the nested classes of one class ({@code ValueLayout$*}). A row also
     * makes the class nameable: fields, casts, array types, class literals and signatures may mention it.
     */
    record Row(String classes, Set<Use> uses, Set<String> only, Map<String, String> refused, String why) {

        boolean covers(String internalName) {
            if (!classes.endsWith("*")) return classes.equals(internalName);
            String prefix = classes.substring(0, classes.length() - 1);
            return internalName.startsWith(prefix) && internalName.indexOf('/', prefix.length()) < 0;
        }

        /** Only these member names (constructors aside) are allowed. */
        Row only(String... names) {
            return new Row(classes, uses, new LinkedHashSet<>(List.of(names)), refused, why);
        }

        /** These member names are refused, for the reason given. */
        Row except(String reason, String... names) {
            Map<String, String> r = new LinkedHashMap<>(refused);
            for (String n : names) r.put(n, reason);
            return new Row(classes, uses, only, r, why);
        }

        /** Null if this row lets policy code use member {@code name} this way, else why not. */
        String refusal(Use use, String name) {
            if (!uses.contains(use)) return classes + " allows " + usesText() + " only";
            if (use == CONSTRUCT || use == EXTEND) return null;
            if (refused.containsKey(name)) return refused.get(name);
            if (!only.isEmpty() && !only.contains(name)) return classes + " allows only " + String.join(", ", only);
            return null;
        }

        String usesText() {
            List<String> t = new ArrayList<>();
            for (Use u : uses) t.add(u.text);
            return t.isEmpty() ? "nothing" : String.join(", ", t);
        }
    }

    private static Row row(String classes, String why, Use... uses) {
        Set<Use> u = uses.length == 0 ? EnumSet.noneOf(Use.class) : EnumSet.copyOf(List.of(uses));
        return new Row(classes, u, Set.of(), Map.of(), why);
    }

    private static final String SYSTEM_PROPERTY = "reads a system property";
    private static final String VOCABULARY = "an enum constant compiled code passes to LaneContext (a signal, a reduction, a format...): "
            + "reading one runs nothing but the enum's own constant table";

    /** The JDK classes policy code may use, and how, and the IR's enums it may name. Order is only for reading. */
    static final List<Row> TABLE = List.of(
            // --- arithmetic and boxes ------------------------------------------------------------------------------
            row("java/lang/Math", "pure functions of their arguments (sqrt, exp, fma, PI...); random() draws from a private generator",
                    STATIC_CALL, STATIC_READ),
            row("java/lang/StrictMath", "as Math, with reproducible results", STATIC_CALL, STATIC_READ),
            row("java/lang/Float", "conversions, bit views, compare and the value methods of a box: pure", STATIC_CALL, INSTANCE_CALL, STATIC_READ),
            row("java/lang/Double", "as Float", STATIC_CALL, INSTANCE_CALL, STATIC_READ),
            row("java/lang/Integer", "parsing, bit twiddling and the value methods of a box: pure", STATIC_CALL, INSTANCE_CALL, STATIC_READ)
                    .except(SYSTEM_PROPERTY, "getInteger"),
            row("java/lang/Long", "as Integer", STATIC_CALL, INSTANCE_CALL, STATIC_READ).except(SYSTEM_PROPERTY, "getLong"),
            row("java/lang/Short", "as Integer", STATIC_CALL, INSTANCE_CALL, STATIC_READ),
            row("java/lang/Byte", "as Integer", STATIC_CALL, INSTANCE_CALL, STATIC_READ),
            row("java/lang/Boolean", "logic and the value methods of a box: pure", STATIC_CALL, INSTANCE_CALL, STATIC_READ)
                    .except(SYSTEM_PROPERTY, "getBoolean"),
            row("java/lang/Character", "character classification and conversion: pure tables", STATIC_CALL, INSTANCE_CALL, STATIC_READ)
                    .except("loads the Unicode name data", "getName", "codePointOf"),

            // --- objects and text ----------------------------------------------------------------------------------
            row("java/lang/Object", "constructing and the three value methods; getClass, wait, notify are refused everywhere",
                    CONSTRUCT, INSTANCE_CALL, EXTEND).only("equals", "hashCode", "toString"),
            row("java/lang/Record", "the superclass of records: its constructor only (record methods come from a bootstrap)",
                    CONSTRUCT, EXTEND),
            row("java/lang/String", "a read-only subset: no format (locales), no intern (global table), no bytes/charsets",
                    STATIC_CALL, INSTANCE_CALL)
                    .only("length", "charAt", "equals", "hashCode", "concat", "valueOf", "isEmpty", "compareTo", "toString"),
            row("java/lang/CharSequence", "the read methods of a String or StringBuilder",
                    INSTANCE_CALL).only("length", "charAt", "isEmpty", "toString"),
            row("java/lang/StringBuilder", "a private character buffer: building messages and names", CONSTRUCT, INSTANCE_CALL),

            // --- exceptions policy code may throw ------------------------------------------------------------------
            row("java/lang/ArithmeticException", "thrown by policy code; no stack-trace or cause methods", CONSTRUCT),
            row("java/lang/IllegalArgumentException", "as ArithmeticException", CONSTRUCT),
            row("java/lang/IllegalStateException", "as ArithmeticException", CONSTRUCT),
            row("java/lang/IndexOutOfBoundsException", "as ArithmeticException", CONSTRUCT),
            row("java/lang/ArrayIndexOutOfBoundsException", "as ArithmeticException", CONSTRUCT),

            // --- collections of numbers ----------------------------------------------------------------------------
            row("java/util/Arrays", "sort, fill, copy, search, compare plain arrays in the calling thread", STATIC_CALL)
                    .except("runs on the common fork-join pool (threads)", "parallelSort", "parallelPrefix", "parallelSetAll"),
            row("java/util/BitSet", "a private set of bits", CONSTRUCT, STATIC_CALL, INSTANCE_CALL),
            row("java/util/function/*", "functional interfaces (for lambdas and Arrays.setAll): composition only",
                    STATIC_CALL, INSTANCE_CALL, EXTEND),
            row("java/util/Comparator", "orderings for Arrays.sort: composition only", STATIC_CALL, INSTANCE_CALL, EXTEND),

            // --- vectors and memory --------------------------------------------------------------------------------
            row("jdk/incubator/vector/*", "the Vector API: arithmetic on lanes of arrays and segments, bounds-checked",
                    STATIC_CALL, INSTANCE_CALL, STATIC_READ),
            row("java/nio/ByteOrder", "byte-order constants for the Vector API and MemorySegment", STATIC_CALL, INSTANCE_CALL, STATIC_READ),
            row("java/lang/foreign/MemorySegment",
                    "bounds-checked reads and writes of segments the runtime hands over, slices, copies, heap segments of arrays",
                    STATIC_CALL, INSTANCE_CALL, STATIC_READ)
                    .except("reaches memory outside the segment's bounds", "reinterpret", "ofAddress")
                    .except("works on mapped files (I/O)", "load", "unload", "isLoaded", "force"),
            row("java/lang/foreign/ValueLayout", "layouts of the values read and written (JAVA_FLOAT...); ADDRESS is refused by type",
                    STATIC_CALL, INSTANCE_CALL, STATIC_READ),
            row("java/lang/foreign/ValueLayout$*", "the layout classes of each carrier (OfFloat, OfInt...)", INSTANCE_CALL, STATIC_READ),
            row("java/lang/foreign/MemoryLayout", "layout descriptions (sizes, alignments) used to allocate and slice",
                    STATIC_CALL, INSTANCE_CALL),
            row("java/lang/foreign/Arena", "allocation in an arena the runtime passes in; creating or closing arenas is refused",
                    INSTANCE_CALL).only("allocate", "allocateFrom"),
            row("java/lang/foreign/SegmentAllocator", "allocation through an allocator the runtime passes in, or inside a given segment",
                    STATIC_CALL, INSTANCE_CALL).only("allocate", "allocateFrom", "slicingAllocator", "prefixAllocator"),

            // --- the policy vocabulary: the IR's enums that LaneContext takes ------------------------------------------
            row("dev/kvpc/ir/Signal", VOCABULARY, STATIC_READ),
            row("dev/kvpc/ir/Axis", VOCABULARY, STATIC_READ),
            row("dev/kvpc/ir/Op$Red", VOCABULARY, STATIC_READ),
            row("dev/kvpc/ir/Op$SetFn", VOCABULARY, STATIC_READ),
            row("dev/kvpc/ir/Op$Algorithm", VOCABULARY, STATIC_READ),
            row("dev/kvpc/ir/Op$PrimFn", VOCABULARY, STATIC_READ),
            row("dev/kvpc/ir/Op$CellStat", VOCABULARY, STATIC_READ),
            row("dev/kvpc/ir/Instr$Assign", VOCABULARY, STATIC_READ),
            row("dev/kvpc/ir/Instr$MergeBy", VOCABULARY, STATIC_READ),
            row("dev/kvpc/ir/Instr$Format", VOCABULARY, STATIC_READ),
            row("dev/kvpc/ir/Instr$QuantAxis", VOCABULARY, STATIC_READ),
            row("dev/kvpc/ir/Instr$Scope", VOCABULARY, STATIC_READ));

    /**
     * Methods of {@code java/lang/Object} refused whatever class they are called on (name and descriptor): every class
     * inherits them, so no row could otherwise keep them out.
     */
    static final Map<String, String> OBJECT_METHODS_REFUSED = Map.of(
            "getClass()Ljava/lang/Class;", "reflection starts at getClass",
            "wait()V", "policy code must not lock or wait",
            "wait(J)V", "policy code must not lock or wait",
            "wait(JI)V", "policy code must not lock or wait",
            "notify()V", "policy code must not lock or wait",
            "notifyAll()V", "policy code must not lock or wait",
            "finalize()V", "finalizers run on another thread");

    /** What an allowed bootstrap builds; each kind has its own check in {@link BytecodeVerifier}. */
    enum BootstrapKind {
        /** The call site's argument types must be nameable; the static arguments only strings and numbers. */
        STRING_CONCAT,
        /** The implementation method handle is checked like a direct call; every type in the site must be nameable. */
        LAMBDA,
        /** The record class must be in the jar and every handle a getter of its own fields. */
        RECORD_METHODS
    }

    /** An allowed {@code invokedynamic} bootstrap: a static method of {@code owner} named one of {@code names}. */
    record Bootstrap(String owner, Set<String> names, BootstrapKind kind, String why) {
    }

    /** The only bootstraps policy code may use. */
    static final List<Bootstrap> BOOTSTRAPS = List.of(
            new Bootstrap("java/lang/invoke/StringConcatFactory", Set.of("makeConcatWithConstants", "makeConcat"),
                    BootstrapKind.STRING_CONCAT, "string concatenation: calls only String.valueOf of arguments whose types are checked"),
            new Bootstrap("java/lang/invoke/LambdaMetafactory", Set.of("metafactory", "altMetafactory"),
                    BootstrapKind.LAMBDA, "a lambda: does what its target method does, and the target is checked like a call"),
            new Bootstrap("java/lang/runtime/ObjectMethods", Set.of("bootstrap"),
                    BootstrapKind.RECORD_METHODS, "equals, hashCode and toString of a record over its own fields"));

    /** The row covering a class, or null if policy code may not use it. */
    static Row rowFor(String internalName) {
        for (Row r : TABLE) if (r.covers(internalName)) return r;
        return null;
    }

    /** The allowed bootstrap that {@code owner.name} is, or null. */
    static Bootstrap bootstrapFor(String owner, String name) {
        for (Bootstrap b : BOOTSTRAPS) if (b.owner.equals(owner) && b.names.contains(name)) return b;
        return null;
    }
}
