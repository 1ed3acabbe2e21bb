package dev.kvpc.runtime.load;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.IntSupplier;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PolicyJarLoaderTest {
    @TempDir
    Path dir;

    private final ClassLoader host = getClass().getClassLoader();

    private Path benignJar() throws Exception {
        return TestJars.policyJar(dir, "benign.jar", TestJars.benignClasses());
    }

    private String loadError(Path jar) {
        return assertThrows(PolicyLoadException.class, () -> PolicyJarLoader.load(jar, TestJars.HOST, host)).getMessage();
    }

    // ---------------------------------------------------------------------------------------------- a benign policy

    @Test
    void benignJarLoadsAndItsEntryClassRuns() throws Exception {
        LoadedPolicy p = PolicyJarLoader.load(benignJar(), TestJars.HOST, host);
        assertEquals("benign", p.manifest().policyName());
        assertEquals("gen.Benign", p.entryClass().getName());
        assertEquals(List.of("gen.Benign", "gen.Helper"), p.classNames());
        Class<?> c = p.entryClass();
        // score: sorted copy [-5, 1, 3] -> |-5| + 3 * sqrt(4) + Helper(3).twice() = 5 + 6 + 6
        float[] xs = {3, -5, 1};
        assertEquals(17f, (float) c.getMethod("score", float[].class).invoke(null, (Object) xs));
        assertArrayEquals(new float[] {3, -5, 1}, xs, "score sorts a copy");
        assertEquals("n=7", c.getMethod("describe", int.class).invoke(null, 7));
        assertArrayEquals(new int[] {0, 1, 4, 9, 16}, (int[]) c.getMethod("squares", int.class).invoke(null, 5));
        float[] ys = {1, 2};
        assertEquals(7f, (float) c.getMethod("viaSegment", float[].class).invoke(null, (Object) ys));
        assertEquals(5f, ys[0]);
        Method checked = c.getMethod("checked", int.class);
        assertEquals(3, checked.invoke(null, 3));
        InvocationTargetException e = assertThrows(InvocationTargetException.class, () -> checked.invoke(null, -1));
        assertTrue(e.getCause() instanceof IllegalArgumentException && e.getCause().getMessage().equals("negative"));
    }

    @Test
    void eachLoadHasItsOwnLoaderThatDelegatesTheRest() throws Exception {
        Path jar = benignJar();
        LoadedPolicy a = PolicyJarLoader.load(jar, TestJars.HOST, host);
        LoadedPolicy b = PolicyJarLoader.load(jar, TestJars.HOST, host);
        assertNotSame(a.entryClass(), b.entryClass());
        assertNotSame(a.classLoader(), b.classLoader());
        assertSame(host, a.classLoader().getParent());
        assertTrue(a.classLoader().getName().contains("benign"));
        Class<?> helper = a.classLoader().loadClass("gen.Helper");
        assertSame(a.classLoader(), helper.getClassLoader());
        assertSame(PolicyJarLoader.class, a.classLoader().loadClass(PolicyJarLoader.class.getName()), "non-jar names come from the parent");
        assertSame(String.class, a.classLoader().loadClass("java.lang.String"));
        assertThrows(ClassNotFoundException.class, () -> a.classLoader().loadClass("gen.Nope"));
        assertEquals(jar, a.jar());
    }

    @Test
    void entryClassAsChecksTheApiType() throws Exception {
        LoadedPolicy p = PolicyJarLoader.load(benignJar(), TestJars.HOST, host);
        assertSame(p.entryClass(), p.entryClassAs(Object.class));
        PolicyLoadException e = assertThrows(PolicyLoadException.class, () -> p.entryClassAs(IntSupplier.class));
        assertEquals("policy benign: entry class gen.Benign is not a java.util.function.IntSupplier", e.getMessage());
    }

    @Test
    void loadingRunsNoPolicyCode() throws Exception {
        // gen/Boom's static initialiser throws: defining the class must not run it.
        byte[] boom = TestJars.cls("gen/Boom").method(org.objectweb.asm.Opcodes.ACC_STATIC, "<clinit>", "()V", mv -> {
            mv.visitTypeInsn(org.objectweb.asm.Opcodes.NEW, "java/lang/IllegalStateException");
            mv.visitInsn(org.objectweb.asm.Opcodes.DUP);
            mv.visitMethodInsn(org.objectweb.asm.Opcodes.INVOKESPECIAL, "java/lang/IllegalStateException", "<init>", "()V", false);
            mv.visitInsn(org.objectweb.asm.Opcodes.ATHROW);
        }).build();
        LoadedPolicy p = PolicyJarLoader.load(TestJars.policyJar(dir, "boom.jar", TestJars.classes("gen/Boom", boom)), TestJars.HOST, host);
        assertEquals("gen.Boom", p.entryClass().getName());
        assertThrows(ExceptionInInitializerError.class, () -> p.entryClass().getConstructor().newInstance());
    }

    @Test
    void loadsThroughTheRuntimesOwnLoaderByDefault() throws Exception {
        LoadedPolicy p = PolicyJarLoader.load(benignJar(), TestJars.HOST);
        assertSame(PolicyJarLoader.class.getClassLoader(), p.classLoader().getParent());
    }

    @Test
    void jarOnAnotherFileSystemLoads() throws Exception {
        Path jar = benignJar();
        Path outer = dir.resolve("outer.zip");
        try (java.nio.file.FileSystem zfs = java.nio.file.FileSystems.newFileSystem(outer, Map.of("create", "true"))) {
            Path inside = zfs.getPath("/policies/benign.jar");
            Files.createDirectories(inside.getParent());
            Files.copy(jar, inside);
            LoadedPolicy p = PolicyJarLoader.load(inside, TestJars.HOST, host);
            assertEquals("gen.Benign", p.entryClass().getName());
            assertEquals(inside, p.jar());
        }
    }

    // ---------------------------------------------------------------------------------------------- shape

    @Test
    void shapeThatDoesNotFitIsRefused() throws Exception {
        ShapeConstraints needs = new ShapeConstraints(ShapeConstraints.Dim.ANY, ShapeConstraints.Dim.ANY,
                ShapeConstraints.Dim.exactly(8), ShapeConstraints.Dim.exactly(64));
        Path jar = TestJars.writeJar(dir.resolve("h2o.jar"), TestJars.manifest("h2o", TestJars.BENIGN, needs).toBytes(), TestJars.benignClasses());
        assertEquals("policy h2o needs kv-heads=8, this model has 4", loadError(jar)); // HOST has kv-heads=4, head-dim=64
        assertEquals("gen.Benign", PolicyJarLoader.load(jar, new ModelShapeSpec(32, 32, 8, 64), host).entryClass().getName());
    }

    // ---------------------------------------------------------------------------------------------- broken jars

    @Test
    void missingManifestIsRefused() throws Exception {
        Path jar = TestJars.writeJar(dir.resolve("plain.jar"), null, TestJars.benignClasses());
        assertEquals(jar + " is not a compiled kvpc policy: it has no META-INF/kvpc-policy.properties", loadError(jar));
    }

    @Test
    void corruptManifestIsRefused() throws Exception {
        byte[] junk = new byte[200];
        new java.util.Random(7).nextBytes(junk);
        Path jar = TestJars.writeJar(dir.resolve("junk.jar"), junk, TestJars.benignClasses());
        assertEquals(jar + ": META-INF/kvpc-policy.properties: is not UTF-8 text (corrupt?)", loadError(jar));

        String text = TestJars.manifest("bad", TestJars.BENIGN).toText().replace("shape.kv-heads=any", "shape.kv-heads=four");
        Path bad = TestJars.writeJar(dir.resolve("bad.jar"), text.getBytes(StandardCharsets.UTF_8), TestJars.benignClasses());
        assertEquals(bad + ": META-INF/kvpc-policy.properties: key 'shape.kv-heads': expected a positive integer or 'any', got 'four'",
                loadError(bad));

        Path empty = TestJars.writeJar(dir.resolve("empty.jar"), new byte[0], TestJars.benignClasses());
        assertTrue(loadError(empty).endsWith("META-INF/kvpc-policy.properties: missing key 'kvpc.format' (not a kvpc policy manifest?)"));
    }

    @Test
    void missingEntryClassIsRefused() throws Exception {
        Path jar = TestJars.writeJar(dir.resolve("noentry.jar"), TestJars.manifest("noentry", "gen/Elsewhere").toBytes(),
                TestJars.benignClasses());
        assertEquals(jar + ": entry class gen.Elsewhere (key entry.class) is not in the jar (no gen/Elsewhere.class)", loadError(jar));
    }

    @Test
    void truncatedJarIsRefused() throws Exception {
        Path whole = benignJar();
        byte[] bytes = Files.readAllBytes(whole);
        for (int cut : new int[] {bytes.length / 2, bytes.length - 10, 30, 4}) {
            Path t = Files.write(dir.resolve("cut" + cut + ".jar"), Arrays.copyOf(bytes, cut));
            String msg = loadError(t);
            assertTrue(msg.startsWith(t + " is not a readable jar (truncated or corrupt: "), msg);
        }
    }

    @Test
    void damagedEntryIsRefused() throws Exception {
        // Flip bytes inside the compressed data of the first class: the central directory is intact.
        Path whole = benignJar();
        byte[] bytes = Files.readAllBytes(whole);
        int at = indexOf(bytes, "gen/Benign.class".getBytes(StandardCharsets.US_ASCII)) + 40;
        for (int i = at; i < at + 60; i++) bytes[i] ^= (byte) 0x5a;
        Path bad = Files.write(dir.resolve("damaged.jar"), bytes);
        String msg = loadError(bad);
        assertTrue(msg.startsWith(bad + " is corrupt: entry gen/Benign.class cannot be read")
                || msg.contains("gen/Benign.class is malformed") || msg.contains("is not a readable jar"), msg);
    }

    @Test
    void notAJarIsRefused() throws Exception {
        Path text = Files.writeString(dir.resolve("policy.jar"), "just text, not a zip\n");
        assertTrue(loadError(text).startsWith(text + " is not a readable jar (truncated or corrupt: "), loadError(text));
        Path empty = Files.write(dir.resolve("empty.jar"), new byte[0]);
        assertTrue(loadError(empty).startsWith(empty + " is not a readable jar"), loadError(empty));
        Path missing = dir.resolve("missing.jar");
        assertEquals("policy jar " + missing + " does not exist", loadError(missing));
        assertEquals("policy jar " + dir + " is not a file", loadError(dir));
    }

    @Test
    void malformedClassFileIsRefused() throws Exception {
        Map<String, byte[]> classes = TestJars.benignClasses();
        classes.put("gen/Junk", "\u00ca\u00fe not really a class".getBytes(StandardCharsets.ISO_8859_1));
        String msg = loadError(TestJars.policyJar(dir, "junkclass.jar", classes));
        assertTrue(msg.startsWith("refused: class file gen/Junk.class is malformed ("), msg);
    }

    @Test
    void classStoredUnderAnotherNameIsRefused() throws Exception {
        Map<String, byte[]> classes = TestJars.benignClasses();
        classes.put("gen/Alias", classes.get(TestJars.HELPER));
        assertEquals("refused: class file gen/Alias.class holds class gen/Helper, not gen/Alias",
                loadError(TestJars.policyJar(dir, "alias.jar", classes)));
    }

    @Test
    void multiReleaseClassesAreRefused() throws Exception {
        Map<String, byte[]> classes = TestJars.benignClasses();
        classes.put("META-INF/versions/25/gen/Benign", classes.get(TestJars.BENIGN));
        Path jar = TestJars.policyJar(dir, "mr.jar", classes);
        assertEquals(jar + ": META-INF/versions/25/gen/Benign.class: classes under META-INF/ are not loaded"
                + " (multi-release policy jars are not supported)", loadError(jar));
    }

    @Test
    void classesInJdkOrRuntimePackagesAreRefused() throws Exception {
        Map<String, byte[]> classes = TestJars.benignClasses();
        classes.put("dev/kvpc/runtime/Sneaky", TestJars.cls("dev/kvpc/runtime/Sneaky").build());
        String msg = loadError(TestJars.policyJar(dir, "sneaky.jar", classes));
        assertEquals("refused: class dev/kvpc/runtime/Sneaky is in package dev/kvpc/runtime, where policy code may not define classes", msg);
    }

    @Test
    void everyFailureIsAPolicyLoadException() throws Exception {
        // A sweep of random damage over a good jar: whatever happens, it is a message, never another exception.
        byte[] good = Files.readAllBytes(benignJar());
        java.util.Random rnd = new java.util.Random(42);
        for (int round = 0; round < 40; round++) {
            byte[] b = good.clone();
            for (int k = 0; k < 1 + rnd.nextInt(8); k++) b[rnd.nextInt(b.length)] = (byte) rnd.nextInt(256);
            Path p = Files.write(dir.resolve("fuzz" + round + ".jar"), b);
            try {
                PolicyJarLoader.load(p, TestJars.HOST, host);
            } catch (PolicyLoadException expected) {
                assertTrue(!expected.getMessage().isBlank());
            }
        }
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) if (hay[i + j] != needle[j]) continue outer;
            return i;
        }
        throw new AssertionError("not found");
    }
}
