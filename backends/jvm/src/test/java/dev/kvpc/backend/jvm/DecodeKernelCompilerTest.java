package dev.kvpc.backend.jvm;

import dev.kvpc.runtime.engine.AttentionKernel;
import dev.kvpc.runtime.engine.DecodeKernel;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.load.BytecodeVerifier;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.objectweb.asm.ClassReader;
import org.objectweb.asm.ClassVisitor;
import org.objectweb.asm.MethodVisitor;
import org.objectweb.asm.util.CheckClassAdapter;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;
import static org.objectweb.asm.Opcodes.ASM9;

/**
 * Compiled decode kernels against the runtime's {@link AttentionKernel} on random lanes: head dims 8, 64, 72 and 128,
 * groups of 1, 4 and 8 query heads (8: the heads in two unrolled blocks), f32 and int4 (per token, several group sizes) keys and values, with evicted entries,
 * with and without an attend subset, causal masking inside the lane; both the Vector API class and the scalar one.
 *
 * <p>Tolerance: an output element may differ from the runtime kernel's by {@value #TOL} times the largest magnitude
 * in that head's output row (sums are taken in another order and with fused multiply-adds); a column sum by
 * {@value #TOL} relative, or 1e-9 absolute for tiny probabilities.
 */
class DecodeKernelCompilerTest {
    static final double TOL = 1e-5;

    /** The formats tried at a head dim: f32, int4 in several per-token groups, and mixed. */
    static List<QuantSpec[]> formats(int d) {
        QuantSpec f32 = QuantSpec.of(Precision.F32);
        List<QuantSpec[]> l = new ArrayList<>();
        l.add(new QuantSpec[] {f32, f32});
        Set<Integer> groups = new java.util.LinkedHashSet<>();
        for (int g : new int[] {32, 24, 16, 8, d}) if (d % g == 0) groups.add(g);
        for (int g : groups) {
            QuantSpec i4 = QuantSpec.resolve(Precision.INT4, QuantSpec.Axis.TOKEN, g, d);
            l.add(new QuantSpec[] {i4, i4});
        }
        QuantSpec i4 = QuantSpec.resolve(Precision.INT4, QuantSpec.Axis.TOKEN, groups.iterator().next(), d);
        l.add(new QuantSpec[] {f32, i4});
        l.add(new QuantSpec[] {i4, f32});
        return l;
    }

    @TestFactory
    List<DynamicTest> matchesTheRuntimeKernel() {
        assertTrue(DecodeKernelCompiler.vectorApiAvailable(), "the tests run with --add-modules jdk.incubator.vector (backends/jvm/pom.xml)");
        List<DynamicTest> tests = new ArrayList<>();
        for (int d : new int[] {8, 64, 72, 128}) {
            for (int group : new int[] {1, 4, 8}) { // 8: two blocks of 4 unrolled heads
                for (QuantSpec[] f : formats(d)) {
                    for (boolean vector : new boolean[] {true, false}) {
                        String name = "d" + d + " group " + group + " keys " + f[0] + " values " + f[1] + (vector ? " vector" : " scalar");
                        tests.add(DynamicTest.dynamicTest(name, () -> compare(d, group, f[0], f[1], vector, (d * 31 + group) * 7 + f.hashCode())));
                    }
                }
            }
        }
        return tests;
    }

    /** A lane of random rows with some entries evicted; the host format is the keys' (values re-stored when they differ). */
    static Lane randomLane(PagePool pool, Random r, int d, QuantSpec keys, QuantSpec values, int n) {
        Lane lane = new Lane(pool, d, keys, 16);
        float[] k = new float[d], v = new float[d];
        for (int j = 0; j < n; j++) {
            for (int c = 0; c < d; c++) {
                k[c] = (float) (r.nextGaussian() * 1.5 + 0.3);
                v[c] = (float) r.nextGaussian();
            }
            lane.append(3 * j + 1, j, k, 0, v, 0);
        }
        if (!values.equals(keys)) for (int j = 0; j < n; j++) lane.restore(j, Lane.Part.VALUES, values);
        BitSet keep = new BitSet();
        for (int j = 0; j < n; j++) if (r.nextInt(5) != 0) keep.set(j);
        lane.retain(keep);
        return lane;
    }

    static void compare(int d, int group, QuantSpec keys, QuantSpec values, boolean vector, long seed) {
        Random r = new Random(seed);
        DecodeKernel kernel = DecodeKernelCompiler.compile(d, group, keys, values, vector).create();
        try (PagePool pool = new PagePool()) {
            for (int trial = 0; trial < 6; trial++) {
                Lane lane = randomLane(pool, r, d, keys, values, 40 + r.nextInt(200));
                assertEquals(keys, lane.rowFormat(Lane.Part.KEYS));
                assertEquals(values, lane.rowFormat(Lane.Part.VALUES));
                int n = lane.size();
                float[] q = new float[group * d];
                for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
                // trials: all entries, a query in the middle of the lane (later entries masked), attend subsets
                int qpos = trial % 3 == 1 ? lane.position(n / 2) : lane.position(n - 1);
                BitSet attend = null;
                if (trial >= 3) {
                    attend = new BitSet();
                    for (int j = 0; j < n; j++) if (r.nextInt(3) != 0) attend.set(j);
                    if (trial == 5) attend.clear(); // nothing visible: outputs 0, no column sums
                }
                float[] col0 = new float[n];
                for (int j = 0; j < n; j++) col0[j] = r.nextFloat();
                assertAgrees(kernel, lane, q, qpos, group, attend, col0, null, "trial " + trial + ", " + n + " entries");
                lane.clear();
            }
        }
    }

    /**
     * Runs {@code kernel} and the runtime's {@link AttentionKernel} on the same lane and query, column sums starting
     * from {@code col0} (keys rotated by slot with {@code keysBySlot}, or not): the outputs agree by
     * {@link #assertClose} (every one written), the column sums within {@value #TOL} relative or 1e-9 absolute.
     * Returns the kernel's output.
     */
    static float[] assertAgrees(DecodeKernel kernel, Lane lane, float[] q, int qpos, int group, BitSet attend, float[] col0,
                                dev.kvpc.runtime.Rope keysBySlot, String where) {
        int d = lane.headDim(), n = lane.size();
        float[] out = new float[group * d], outRef = new float[group * d];
        java.util.Arrays.fill(out, Float.NaN);
        float[] col = col0.clone(), colRef = col0.clone();
        kernel.attend(lane, q, qpos, attend, out, col, keysBySlot);
        new AttentionKernel().attend(lane, q, new int[] {qpos}, group, attend, outRef, colRef, keysBySlot);
        assertClose(outRef, out, d, where);
        for (int j = 0; j < n; j++) assertEquals(colRef[j], col[j], Math.max(TOL * Math.abs(colRef[j]), 1e-9), where + ": column sum of entry " + j);
        return out;
    }

    static void assertClose(float[] expected, float[] actual, int d, String where) {
        for (int row = 0; row < expected.length / d; row++) {
            double scale = 0;
            for (int c = 0; c < d; c++) scale = Math.max(scale, Math.abs(expected[row * d + c]));
            for (int c = 0; c < d; c++) {
                int i = row * d + c;
                assertFalse(Float.isNaN(actual[i]), where + ": output of head " + row + " channel " + c + " not written");
                assertEquals(expected[i], actual[i], TOL * scale, where + ": head " + row + " channel " + c);
            }
        }
    }

    /** A lane whose rows all weigh the same: an exact answer to check the reference comparison is not vacuous. */
    @Test
    void averagesEqualLogitRows() {
        int d = 72;
        for (boolean vector : new boolean[] {true, false}) {
            DecodeKernel k = DecodeKernelCompiler.compile(d, 2, QuantSpec.of(Precision.F32), QuantSpec.of(Precision.F32), vector).create();
            try (PagePool pool = new PagePool()) {
                Lane lane = new Lane(pool, d, QuantSpec.of(Precision.F32), 4);
                float[] key = new float[d], v = new float[d];
                for (int j = 0; j < 10; j++) {
                    for (int c = 0; c < d; c++) v[c] = j * 100 + c;
                    lane.append(j, 0, key, 0, v, 0);
                }
                float[] out = new float[2 * d], q = new float[2 * d], col = new float[10];
                java.util.Arrays.fill(q, 1f);
                BitSet attend = new BitSet();
                attend.set(2);
                attend.set(4);
                attend.set(9); // masked: position 9 > qpos 8
                k.attend(lane, q, 8, attend, out, col);
                for (int c = 0; c < d; c++) {
                    assertEquals(300 + c, out[c], 1e-3, "head 0 averages entries 2 and 4");
                    assertEquals(300 + c, out[d + c], 1e-3, "head 1 averages entries 2 and 4");
                }
                assertArrayEquals(new float[] {0, 0, 1, 0, 1, 0, 0, 0, 0, 0}, col, 1e-6f);
                lane.clear();
            }
        }
    }

    /**
     * The Vector API class gives the same bits on its first calls (interpreted, the Vector API's Java code) as after
     * C2 has compiled it (SIMD instructions): its sums run in a fixed order and its exponentials are Math.exp's, so a
     * run's figures do not depend on when the JIT stepped in. ({@code reduceLanes} may add lanes in any order and
     * {@code lanewise(EXP)} is looser than Math.exp, and both differed before and after compilation.)
     */
    @Test
    void sameBitsBeforeAndAfterTheJit() {
        for (int d : new int[] {64, 128}) {
            for (QuantSpec[] f : formats(d).subList(0, 2)) {
                Random r = new Random(d * 13L + f[0].hashCode());
                DecodeKernel kernel = DecodeKernelCompiler.compile(d, 4, f[0], f[1], true).create();
                try (PagePool pool = new PagePool()) {
                    Lane lane = randomLane(pool, r, d, f[0], f[1], 300);
                    assertSameBitsWhenHot(kernel, lane, r, 4, 40_000, "d" + d + " keys " + f[0] + " values " + f[1]);
                    lane.clear();
                }
            }
        }
    }

    /**
     * A kernel's first call on {@code lane} (interpreted) against its call after {@code calls} more (compiled by C2):
     * outputs and column sums bit for bit, for a random query of {@code group} heads at the lane's last position.
     */
    static void assertSameBitsWhenHot(DecodeKernel kernel, Lane lane, Random r, int group, int calls, String where) {
        int d = lane.headDim();
        float[] q = new float[group * d];
        for (int i = 0; i < q.length; i++) q[i] = (float) (r.nextGaussian() * 2);
        int qpos = lane.position(lane.size() - 1);
        float[] first = new float[group * d], firstCol = new float[lane.size()];
        kernel.attend(lane, q, qpos, null, first, firstCol);
        float[] out = new float[group * d], col = new float[lane.size()];
        for (int i = 0; i < calls; i++) kernel.attend(lane, q, qpos, null, out, col);
        java.util.Arrays.fill(out, 0f);
        java.util.Arrays.fill(col, 0f);
        kernel.attend(lane, q, qpos, null, out, col);
        for (int i = 0; i < out.length; i++) assertEquals(Float.floatToIntBits(first[i]), Float.floatToIntBits(out[i]), where + ": output " + i + " " + first[i] + " then " + out[i]);
        for (int j = 0; j < col.length; j++) assertEquals(Float.floatToIntBits(firstCol[j]), Float.floatToIntBits(col[j]), where + ": column sum " + j);
    }

    /**
     * The vector class's exponentials (a polynomial in lane-wise arithmetic) against a softmax in double: logits
     * spread over [-100, 0] (exact: keys on one channel, the query 8 = sqrt(64)), every probability within 1e-6
     * relative, and those of logits under -87 (under a normal float) 0.
     */
    @Test
    void vectorExponentialsAreAccurate() {
        int d = 64, n = 517;
        DecodeKernel k = DecodeKernelCompiler.compile(d, 1, QuantSpec.of(Precision.F32), QuantSpec.of(Precision.F32), true).create();
        Random r = new Random(5);
        float[] logit = new float[n];
        try (PagePool pool = new PagePool()) {
            Lane lane = new Lane(pool, d, QuantSpec.of(Precision.F32), 16);
            float[] key = new float[d], v = new float[d];
            for (int j = 0; j < n; j++) {
                logit[j] = j == 7 ? 0f : (float) (-100 * r.nextDouble());
                key[0] = logit[j];
                lane.append(j, 0, key, 0, v, 0);
            }
            float[] q = new float[d], out = new float[d], col = new float[n];
            q[0] = 8f;
            k.attend(lane, q, n, null, out, col);
            double z = 0;
            for (float l : logit) z += Math.exp(l);
            for (int j = 0; j < n; j++) {
                double p = Math.exp(logit[j]) / z;
                if (logit[j] < DecodeKernelCompiler.EXP_FLOOR) assertEquals(0f, col[j], "logit " + logit[j]);
                else assertEquals(p, col[j], 1e-6 * p, "entry " + j + ", logit " + logit[j]);
            }
            lane.clear();
        }
    }

    /** Calls into jdk/incubator/vector in a class file: owner.name of each. */
    static Set<String> vectorCalls(byte[] bytes) {
        Set<String> calls = new HashSet<>();
        new ClassReader(bytes).accept(new ClassVisitor(ASM9) {
            @Override
            public MethodVisitor visitMethod(int access, String name, String desc, String sig, String[] ex) {
                return new MethodVisitor(ASM9) {
                    @Override
                    public void visitMethodInsn(int op, String owner, String n, String dsc, boolean itf) {
                        if (owner.startsWith("jdk/incubator/vector/")) calls.add(owner.substring(owner.lastIndexOf('/') + 1) + "." + n);
                    }
                };
            }
        }, 0);
        return calls;
    }

    @Test
    void vectorClassesCallTheVectorApiAndScalarOnesDoNot() {
        int d = 128;
        QuantSpec f32 = QuantSpec.of(Precision.F32), i4 = QuantSpec.resolve(Precision.INT4, QuantSpec.Axis.TOKEN, 32, d);
        Set<String> f = vectorCalls(DecodeKernelCompiler.classFile(d, 4, f32, f32, true));
        for (String c : List.of("FloatVector.fromMemorySegment", "FloatVector.fromArray", "FloatVector.fma", "FloatVector.rearrange", "FloatVector.intoArray")) {
            assertTrue(f.contains(c), "f32 kernel calls " + c + ": " + f);
        }
        for (String c : List.of("FloatVector.reduceLanes", "DoubleVector.reduceLanes", "FloatVector.lanewise")) {
            assertFalse(f.contains(c), "f32 kernel calls " + c + ", whose rounding changes when C2 compiles it: " + f);
        }
        Set<String> q = vectorCalls(DecodeKernelCompiler.classFile(d, 4, i4, i4, true));
        if (DecodeKernelCompiler.preferredVectorBits() >= 256) {
            for (String c : List.of("ByteVector.fromMemorySegment", "ByteVector.and", "ByteVector.lanewise", "Vector.convertShape", "FloatVector.fma")) {
                assertTrue(q.contains(c), "int4 kernel calls " + c + ": " + q);
            }
        } else {
            // int4 vector chunks need 8 float lanes (the smallest byte species has 8); below that the rows are scalar
            assertFalse(q.contains("ByteVector.fromMemorySegment"), "no int4 vector chunks at " + DecodeKernelCompiler.preferredVectorBits() + " bits: " + q);
        }
        assertEquals(Set.of(), vectorCalls(DecodeKernelCompiler.classFile(d, 4, f32, f32, false)), "the forced scalar class");
        assertEquals(Set.of(), vectorCalls(DecodeKernelCompiler.classFile(d, 4, i4, i4, false)), "the forced scalar class");
        assertTrue(DecodeKernelCompiler.className(d, 4, f32, f32, false).endsWith("_scalar"));
    }

    @TestFactory
    List<DynamicTest> classesPassCheckClassAdapterAndTheRuntimeVerifier() {
        List<DynamicTest> tests = new ArrayList<>();
        for (int d : new int[] {8, 72, 128}) {
            for (QuantSpec[] f : formats(d)) {
                for (boolean vector : new boolean[] {true, false}) {
                    tests.add(DynamicTest.dynamicTest("d" + d + " " + f[0] + " / " + f[1] + (vector ? " vector" : " scalar"), () -> {
                        byte[] bytes = DecodeKernelCompiler.classFile(d, 4, f[0], f[1], vector);
                        StringWriter sw = new StringWriter();
                        CheckClassAdapter.verify(new ClassReader(bytes), getClass().getClassLoader(), false, new PrintWriter(sw));
                        assertEquals("", sw.toString(), "CheckClassAdapter");
                        String name = DecodeKernelCompiler.className(d, 4, f[0], f[1], vector);
                        List<String> refusals = BytecodeVerifier.forDecodeKernels(getClass().getClassLoader()).check(Map.of(name, bytes));
                        assertEquals(List.of(), refusals, "runtime bytecode verifier");
                    }));
                }
            }
        }
        return tests;
    }

    /** HotSpot leaves methods over 8000 bytes of bytecode to the interpreter: every kernel must stay under. */
    @Test
    void kernelsStayUnderTheSizeHotSpotCompiles() {
        for (int d : new int[] {64, 128, 256}) {
            for (int group : new int[] {1, 4, 8, 16}) {
                for (int qg : new int[] {0, 32, 8}) {
                    QuantSpec f = qg == 0 ? QuantSpec.of(Precision.F32) : QuantSpec.resolve(Precision.INT4, QuantSpec.Axis.TOKEN, qg, d);
                    for (boolean vector : new boolean[] {true, false}) {
                        int size = DecodeKernelCompiler.attendCodeSize(DecodeKernelCompiler.classFile(d, group, f, f, vector));
                        assertTrue(size > 100 && size < DecodeKernelCompiler.CODE_LIMIT, "d" + d + " group " + group + " " + f + ": " + size + " bytes");
                    }
                }
            }
        }
    }

    /** A JVM started without the module gets scalar classes from the provider, which link and compute the same. */
    @Test
    void withoutTheModuleTheKernelIsScalar() throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        ProcessBuilder pb = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), NoVectorModuleMain.class.getName())
                .redirectErrorStream(true);
        // options from the environment could add the module (and the launcher would print a note about them)
        pb.environment().remove("JDK_JAVA_OPTIONS");
        pb.environment().remove("JAVA_TOOL_OPTIONS");
        Process p = pb.start();
        String output = new String(p.getInputStream().readAllBytes());
        assertEquals(0, p.waitFor(), output);
        List<String> lines = output.lines().toList();
        assertEquals("false", lines.get(0), "the child JVM has no jdk.incubator.vector: " + output);
        assertTrue(lines.get(1).endsWith(", scalar"), "the provider's kernel is the scalar class: " + output);
        assertTrue(Double.parseDouble(lines.get(2)) < 1e-5, "and agrees with the runtime kernel: " + output);
    }

    @Test
    void unsupportedShapesAreRefusedWithAReason() {
        QuantSpec f16 = QuantSpec.of(Precision.F16), f32 = QuantSpec.of(Precision.F32);
        assertFalse(DecodeKernelCompiler.supports(64, 4, f16, f32));
        assertFalse(DecodeKernelCompiler.supports(64, DecodeKernelCompiler.MAX_GROUP + 1, f32, f32));
        // neither kernel: the generated one reads no f16, and the template no head dim that is not a multiple of 4
        assertNull(new JvmDecodeKernels().kernel(66, 4, f16, f32), "the provider declines, the runtime falls back");
        assertNull(new JvmDecodeKernels().kernel(64, DecodeKernelCompiler.MAX_GROUP + 1, f32, f32), "groups over the largest");
        var e = assertThrows(IllegalArgumentException.class, () -> DecodeKernelCompiler.classFile(64, 4, f16, f32));
        assertTrue(e.getMessage().contains("f16") && e.getMessage().contains("supported"), e.getMessage());
    }
}
