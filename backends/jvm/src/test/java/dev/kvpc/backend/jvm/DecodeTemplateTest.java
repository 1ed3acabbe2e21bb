package dev.kvpc.backend.jvm;

import dev.kvpc.runtime.engine.DecodeKernel;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

import static dev.kvpc.backend.jvm.DecodeKernelCompilerTest.assertAgrees;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The template kernel ({@link DecodeTemplate}, specialised by {@link DecodeTemplates}) gives the runtime kernel's
 * outputs and column sums within {@link DecodeKernelCompilerTest#TOL} on lanes of every format it reads, alone and
 * mixed as KIVI mixes them (per-channel blocks and f32 rows of keys, per-token rows and f32 rows of values), at head
 * dims 8 to 128 (chunks of 4, 8 and 16 lanes: 2-bit codes from one byte to one word), over
 * attend subsets and causal masks; gives the same bits interpreted and compiled; and is made in well under 20 ms.
 */
class DecodeTemplateTest {
    static final QuantSpec F32 = QuantSpec.of(Precision.F32);

    static QuantSpec token(Precision p, int group, int d) {
        return QuantSpec.resolve(p, QuantSpec.Axis.TOKEN, group, d);
    }

    static QuantSpec channel(Precision p, int group, int d) {
        return QuantSpec.resolve(p, QuantSpec.Axis.CHANNEL, group, d);
    }

    /**
     * A lane of {@code n} random entries: keys of the oldest whole blocks of {@code blockKeys} tokens packed per
     * channel (null: none), the rest at {@code keys}; values of every entry but the last {@code recent} at
     * {@code values}.
     */
    static Lane lane(PagePool pool, Random r, int d, int n, QuantSpec keys, QuantSpec blockKeys, QuantSpec values, int recent) {
        return lane(pool, r, d, n, keys, blockKeys, values, recent, 8);
    }

    /** As above, {@code rowsPerPage} rows to a page. */
    static Lane lane(PagePool pool, Random r, int d, int n, QuantSpec keys, QuantSpec blockKeys, QuantSpec values, int recent, int rowsPerPage) {
        Lane lane = new Lane(pool, d, F32, rowsPerPage);
        float[] k = new float[d], v = new float[d];
        for (int j = 0; j < n; j++) {
            for (int c = 0; c < d; c++) {
                k[c] = (float) (r.nextGaussian() * (1 + c % 3));
                v[c] = (float) r.nextGaussian();
            }
            lane.append(j * 2, j, k, 0, v, 0);
        }
        int packed = 0;
        if (blockKeys != null) {
            int g = blockKeys.group();
            for (; packed + g <= n - recent; packed += g) {
                int[] e = new int[g];
                for (int t = 0; t < g; t++) e[t] = packed + t;
                lane.packBlock(e, Lane.Part.KEYS, blockKeys);
            }
        }
        for (int j = packed; j < n; j++) if (!keys.equals(F32)) lane.restore(j, Lane.Part.KEYS, keys);
        for (int j = 0; j < n - recent; j++) if (!values.equals(F32)) lane.restore(j, Lane.Part.VALUES, values);
        return lane;
    }

    /** Lane formats: keys, per-channel key blocks (or null), values, entries kept at f32. */
    record Case(QuantSpec keys, QuantSpec blocks, QuantSpec values, int recent) {}

    static List<Case> cases(int d) {
        List<Case> cs = new ArrayList<>();
        cs.add(new Case(F32, null, F32, 0));
        for (Precision p : new Precision[] {Precision.INT8, Precision.INT4, Precision.INT2}) {
            int g = Math.min(32, d);
            cs.add(new Case(token(p, g, d), null, token(p, g, d), 0));
            cs.add(new Case(F32, channel(p, 8, d), token(p, g, d), 12)); // KIVI: blocks, then f32 residual
        }
        // KIVI's own blocks of 32 and blocks of 16: runs of 16 tokens of a block, which small heads score by table lookup
        cs.add(new Case(F32, channel(Precision.INT2, 32, d), token(Precision.INT2, Math.min(32, d), d), 12));
        cs.add(new Case(F32, channel(Precision.INT2, 16, d), token(Precision.INT2, Math.min(32, d), d), 7));
        cs.add(new Case(token(Precision.INT4, Math.min(32, d), d), null, F32, 5)); // mixed rows of both parts
        cs.add(new Case(token(Precision.INT4, Math.min(64, d), d), null, token(Precision.INT2, Math.min(64, d), d), 3)); // groups of several chunks
        cs.add(new Case(QuantSpec.of(Precision.F16), null, QuantSpec.of(Precision.BF16), 6)); // half rows beside f32
        return cs;
    }

    @Test
    void agreesWithTheRuntimeKernelOnEveryFormatAndMix() {
        int checked = 0;
        for (int d : new int[] {8, 12, 16, 32, 64, 128}) {
            for (int group : new int[] {1, 4, 8}) {
                DecodeKernel kernel = DecodeTemplates.kernel(d, group);
                for (Case c : cases(d)) {
                    Random r = new Random(d * 131L + group * 7L + c.hashCode());
                    try (PagePool pool = new PagePool()) {
                        for (int trial = 0; trial < 5; trial++) {
                            int rowsPerPage = new int[] {8, 5, 3, 16, 7}[trial]; // pages of any size, not only powers of two
                            Lane lane = lane(pool, r, d, 30 + r.nextInt(120), c.keys(), c.blocks(), c.values(), c.recent(), rowsPerPage);
                            Set<QuantSpec> formats = lane.formatsInUse();
                            assertTrue(DecodeTemplates.supports(d, group, formats), formats + " read at d " + d);
                            int n = lane.size();
                            float[] q = new float[group * d];
                            for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
                            int qpos = trial == 1 ? lane.position(n / 2) : lane.position(n - 1);
                            BitSet attend = null;
                            if (trial >= 2) {
                                attend = new BitSet();
                                for (int j = 0; j < n; j++) if (r.nextInt(trial == 4 ? 9 : 3) == 0) attend.set(j);
                            }
                            float[] col0 = new float[n];
                            for (int j = 0; j < n; j++) col0[j] = r.nextFloat();
                            assertAgrees(kernel, lane, q, qpos, group, attend, col0, null, "d " + d + " group " + group + " " + formats + " trial " + trial);
                            checked++;
                            lane.clear();
                        }
                    }
                }
            }
        }
        assertEquals(6 * 3 * 12 * 5, checked);
    }

    /**
     * For a lane of {@code positions cache}, keys rotated by their slot as they are read give the runtime kernel's
     * result with the same rotation; the kernel says it can, and without the rotation the outputs differ.
     */
    @Test
    void rotatesKeysBySlotAsTheyAreRead() {
        dev.kvpc.runtime.Rope rope = new dev.kvpc.runtime.Rope(10000);
        for (int d : new int[] {16, 64}) {
            DecodeKernel kernel = DecodeTemplates.kernel(d, 4);
            assertTrue(kernel.rotatesKeysBySlot());
            for (Case c : List.of(new Case(F32, null, F32, 0), new Case(F32, channel(Precision.INT2, 8, d), token(Precision.INT2, Math.min(32, d), d), 12))) {
                Random r = new Random(d + c.hashCode());
                try (PagePool pool = new PagePool()) {
                    Lane lane = lane(pool, r, d, 70, c.keys(), c.blocks(), c.values(), c.recent());
                    int n = lane.size();
                    float[] q = new float[4 * d];
                    for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
                    int qpos = lane.position(n - 1);
                    String where = "d " + d + " " + lane.formatsInUse();
                    float[] out = assertAgrees(kernel, lane, q, qpos, 4, null, new float[n], rope, where), plain = new float[4 * d];
                    kernel.attend(lane, q, qpos, null, plain, null);
                    assertTrue(!java.util.Arrays.equals(plain, out), where + ": the rotation changes the result");
                    lane.clear();
                }
            }
        }
    }

    /**
     * The kernel's rotation by slot (vectors of doubles over the RoPE's table) is {@link dev.kvpc.runtime.Rope#rotate}'s
     * bit for bit: over a {@code positions cache} lane it gives exactly what it gives over a lane whose keys were
     * rotated by {@code Rope.rotate} before they were stored. Head dims whose chunks are one and two double vectors,
     * and a lane past the RoPE's kept table (16,384 positions at head dim 128), which the kernel rotates row by row.
     */
    @Test
    void rotatesBySlotBitForBitAsTheRopeDoes() {
        dev.kvpc.runtime.Rope rope = new dev.kvpc.runtime.Rope(10000, 2.0, null);
        int[][] shapes = {{8, 300}, {16, 300}, {64, 300}, {128, 300}, {128, 16_500}};
        for (int[] shape : shapes) {
            int d = shape[0], n = shape[1];
            DecodeKernel kernel = DecodeTemplates.kernel(d, 4);
            Random r = new Random(d + n);
            try (PagePool pool = new PagePool()) {
                Lane bySlot = new Lane(pool, d, F32, 16), rotated = new Lane(pool, d, F32, 16);
                float[] k = new float[d], v = new float[d];
                for (int j = 0; j < n; j++) {
                    for (int c = 0; c < d; c++) {
                        k[c] = (float) (r.nextGaussian() * 3);
                        v[c] = (float) r.nextGaussian();
                    }
                    bySlot.append(j, j, k, 0, v, 0);
                    rope.rotate(k, 0, d, j);
                    rotated.append(j, j, k, 0, v, 0);
                }
                float[] q = new float[4 * d];
                for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
                float[] want = new float[4 * d], got = new float[4 * d], wantSums = new float[n], gotSums = new float[n];
                kernel.attend(rotated, q, n, null, want, wantSums);
                kernel.attend(bySlot, q, n, null, got, gotSums, rope);
                assertArrayEquals(want, got, "d " + d + ", " + n + " entries: outputs");
                assertArrayEquals(wantSums, gotSums, "d " + d + ", " + n + " entries: column sums");
                bySlot.clear();
                rotated.clear();
            }
        }
    }

    /** Interpreted (the Vector API's Java code) and compiled (SIMD), the kernel gives the same bits. */
    @Test
    void sameBitsBeforeAndAfterTheJit() {
        // head dim 16: KIVI's key blocks scored by table lookup
        for (int d : new int[] {128, 16}) {
            for (Case c : List.of(new Case(F32, null, F32, 0), new Case(F32, channel(Precision.INT2, 32, d), token(Precision.INT2, Math.min(32, d), d), 40))) {
                sameBitsWhenHot(d, c);
            }
        }
    }

    private static void sameBitsWhenHot(int d, Case c) {
        DecodeKernel kernel = DecodeTemplates.kernel(d, 4);
        Random r = new Random(5);
        try (PagePool pool = new PagePool()) {
            Lane lane = lane(pool, r, d, 300, c.keys(), c.blocks(), c.values(), c.recent());
            DecodeKernelCompilerTest.assertSameBitsWhenHot(kernel, lane, r, 4, 20_000, "d " + d + " " + lane.formatsInUse());
            lane.clear();
        }
    }

    /** The provider gives the template wherever it reads the lane's formats, and the generated class elsewhere. */
    @Test
    void theProviderPicksTheTemplateWhereItReads() {
        JvmDecodeKernels provider = new JvmDecodeKernels();
        int d = 64;
        String template = DecodeTemplates.kernel(d, 4).getClass().getName();
        assertEquals(template, provider.kernel(d, 4, Set.of(F32, channel(Precision.INT2, 32, d), token(Precision.INT2, 32, d))).getClass().getName());
        assertEquals(template, provider.kernel(d, 4, Set.of(token(Precision.INT2, 32, d))).getClass().getName());
        assertEquals(template, provider.kernel(d, 4, F32, F32).getClass().getName());
        assertEquals(template, provider.kernel(d, 4, Set.of(F32, QuantSpec.of(Precision.F16), QuantSpec.of(Precision.BF16))).getClass().getName());
        // int4 in groups of half a vector's channels (8 at 512 bits, 4 at 256, 2 at 128): the template reads groups
        // of whole vectors only, so the generated class reads these
        int lanes = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.length();
        QuantSpec narrow = token(Precision.INT4, Math.max(2, lanes / 2), d);
        assertNotNull(provider.kernel(d, 4, narrow, narrow));
        assertTrue(!provider.kernel(d, 4, narrow, narrow).getClass().getName().equals(template), "the generated class");
    }

    /** A shape's first kernel is a class defined from the template's bytes: no code generation. */
    @Test
    void aNewShapeIsMadeQuickly() {
        long t0 = System.nanoTime();
        DecodeKernel k = DecodeTemplates.kernel(96, 3);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertNotNull(k);
        assertTrue(ms < 20, "made in " + ms + " ms");
    }
}
