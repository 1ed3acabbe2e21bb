package dev.kvpc.runtime.load;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.Set;

import org.junit.jupiter.api.Test;

class WhitelistTest {

    @Test
    void everyRowSaysWhyItIsSafe() {
        Set<String> seen = new HashSet<>();
        for (Whitelist.Row r : Whitelist.TABLE) {
            assertFalse(r.why().isBlank(), r.classes());
            assertTrue(seen.add(r.classes()), "listed twice: " + r.classes());
            assertFalse(r.classes().startsWith("java/lang/reflect") || r.classes().startsWith("java/io") || r.classes().startsWith("java/net"));
        }
        for (Whitelist.Bootstrap b : Whitelist.BOOTSTRAPS) assertFalse(b.why().isBlank(), b.owner());
    }

    @Test
    void rowsCoverWhatTheySay() {
        assertNotNull(Whitelist.rowFor("jdk/incubator/vector/FloatVector"));
        assertNotNull(Whitelist.rowFor("jdk/incubator/vector/VectorOperators$Associative"));
        assertNull(Whitelist.rowFor("jdk/incubator/vector/sub/Thing"));
        assertNotNull(Whitelist.rowFor("java/lang/foreign/ValueLayout$OfFloat"));
        assertNull(Whitelist.rowFor("java/lang/foreign/AddressLayout"));
        assertNotNull(Whitelist.rowFor("java/util/function/IntUnaryOperator"));
        for (String no : new String[] {"java/lang/System", "java/lang/Runtime", "java/lang/Class", "java/lang/ClassLoader", "java/lang/Thread",
                "java/lang/reflect/Method", "java/lang/invoke/MethodHandles", "java/lang/invoke/MethodHandle", "java/io/File",
                "java/nio/file/Files", "java/nio/channels/FileChannel", "java/net/Socket", "java/util/concurrent/ExecutorService",
                "java/lang/ProcessBuilder", "sun/misc/Unsafe", "jdk/internal/misc/Unsafe", "java/lang/Runnable", "java/lang/Throwable"}) {
            assertNull(Whitelist.rowFor(no), no);
        }
    }

    /** The runtime's API is five classes named one by one; the rest of the runtime is not API, whatever its package. */
    @Test
    void runtimeApiIsNamedClassByClass() {
        for (String api : new String[] {"dev/kvpc/runtime/policy/LaneContext", "dev/kvpc/runtime/policy/CompiledPolicy",
                "dev/kvpc/runtime/policy/CompiledLaneClass", "dev/kvpc/runtime/AttentionVariant", "dev/kvpc/runtime/AttentionVariant$Normalize"}) {
            assertTrue(Whitelist.isRuntimeApi(api), api);
            assertNotNull(getClass().getClassLoader().getResource(api + ".class"), "no such class " + api);
        }
        for (String no : new String[] {"dev/kvpc/runtime/trace/TraceSpec", "dev/kvpc/runtime/trace/TraceShape", "dev/kvpc/runtime/pool/PagePool",
                "dev/kvpc/runtime/Sequence", "dev/kvpc/runtime/KvRuntime", "dev/kvpc/runtime/load/PolicyJarLoader", "dev/kvpc/runtime/exec/NativeRunner",
                "dev/kvpc/runtime/policy/Nothing", "dev/kvpc/runtimex/Foo", "dev/kvpc/compiler/Foo"}) {
            assertFalse(Whitelist.isRuntimeApi(no), no);
        }
    }

    @Test
    void refusalsExplainThemselves() {
        Whitelist.Row math = Whitelist.rowFor("java/lang/Math");
        assertNull(math.refusal(Whitelist.Use.STATIC_CALL, "sqrt"));
        assertEquals("java/lang/Math allows static methods, static constants only", math.refusal(Whitelist.Use.CONSTRUCT, "<init>"));
        Whitelist.Row object = Whitelist.rowFor("java/lang/Object");
        assertNull(object.refusal(Whitelist.Use.CONSTRUCT, "<init>"));
        assertNull(object.refusal(Whitelist.Use.INSTANCE_CALL, "hashCode"));
        assertEquals("java/lang/Object allows only equals, hashCode, toString", object.refusal(Whitelist.Use.INSTANCE_CALL, "clone"));
        assertEquals("reaches memory outside the segment's bounds",
                Whitelist.rowFor("java/lang/foreign/MemorySegment").refusal(Whitelist.Use.INSTANCE_CALL, "reinterpret"));
        assertEquals("reads a system property", Whitelist.rowFor("java/lang/Boolean").refusal(Whitelist.Use.STATIC_CALL, "getBoolean"));
        assertNotNull(Whitelist.bootstrapFor("java/lang/invoke/StringConcatFactory", "makeConcatWithConstants"));
        assertNull(Whitelist.bootstrapFor("java/lang/invoke/ConstantBootstraps", "invoke"));
    }
}
