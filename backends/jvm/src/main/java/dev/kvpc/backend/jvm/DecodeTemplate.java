package dev.kvpc.backend.jvm;

import dev.kvpc.runtime.engine.DecodeKernel;
import dev.kvpc.runtime.lane.KernelRows;
import dev.kvpc.runtime.store.Packing;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.constant.ConstantDescs;
import java.lang.invoke.MethodHandles;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.BitSet;

/**
 * The decode kernel's template: plain Java, specialised per shape by {@link DecodeTemplates}, which defines this
 * class's bytes anew as a hidden class whose class data is the shape (head dim, group, lanes, heads per block). The
 * shape lands in static finals, so the JIT sees constants: the channel loops have constant trip counts, the head
 * blocks constant sizes, the species constant, and each specialisation has its own profile. Never initialised as
 * itself (it has no class data then).
 *
 * <p>One step for the group's query heads over a lane whose rows may be in several chains of different formats
 * ({@link KernelRows#chainSpec}): f32 rows, integer rows quantised per token in groups, integer blocks quantised per
 * channel (KIVI's keys), read in place from the pages. Three passes:
 * <ol>
 *   <li><b>scores</b> over the entries read (attend set and causal mask applied first, into an index list): each key
 *       row read once for every head of the group (quantised rows dequantised a vector at a time: codes unpacked
 *       with lane shifts, one FMA with the scale and zero point, the block's per-channel parameters decoded once per
 *       block), one FMA per head per chunk; in blocks of four heads, two entries at a time, so that each chunk of
 *       the query is loaded once for both; at head dim 16, 2-bit per-channel blocks 16 tokens at a time by table
 *       lookup ({@link #scoreLut}), with the same bits;</li>
 *   <li><b>softmax</b> per head, a vector at a time: {@code e^(l - max)} by {@link #exp}, summed in double, then
 *       multiplied by the inverse sum;</li>
 *   <li><b>values</b> in tiles of {@value #TILE} entries: each value row that some head weighs is read once
 *       (dequantised as above) into the tile, and then, a pair of channel chunks at a time, every head's output
 *       accumulates the whole tile in registers (one load and store of the outputs per tile, not per entry).</li>
 * </ol>
 *
 * <p>Only operations whose interpreted and compiled forms give the same bits are used (loads, FMA, lane-wise
 * arithmetic, shifts, blends, conversions, rearranges), so a run's numbers do not depend on when the JIT
 * compiled what: lane sums are a fixed tree of rotations, the exponential a polynomial in lane-wise arithmetic.
 */
final class DecodeTemplate implements DecodeKernel {
    private static final int[] SHAPE = shape();
    static final int D = SHAPE[0], G = SHAPE[1], L = SHAPE[2], GB = SHAPE[3];
    private static final int CHUNKS = D / L, BLOCKS = G / GB;
    static final int TILE = 32;
    private static final VectorSpecies<Float> S = VectorSpecies.of(float.class, VectorShape.forBitSize(L * 32));
    private static final VectorSpecies<Integer> IS = VectorSpecies.of(int.class, VectorShape.forBitSize(L * 32));
    private static final float SCALE = (float) (1.0 / Math.sqrt(D));
    private static final VectorShuffle<Float> R1 = VectorShuffle.iota(S, 1, 1, true), R2 = VectorShuffle.iota(S, Math.min(2, L - 1), 1, true),
            R4 = VectorShuffle.iota(S, Math.min(4, L - 1), 1, true), R8 = VectorShuffle.iota(S, Math.min(8, L - 1), 1, true);
    /** Rotations by half, a quarter and three quarters of the lanes, for {@link #logits4}. */
    private static final VectorShuffle<Float> RH = VectorShuffle.iota(S, L / 2, 1, true), RQ = VectorShuffle.iota(S, L / 4, 1, true),
            RB = VectorShuffle.iota(S, 3 * L / 4, 1, true);
    /**
     * Key rotation by slot ({@link #rotate}): {@code DL} channels at a time in double, {@code DL} the preferred double
     * lanes up to {@code L}; the pairs' lanes swapped, the table's cosines and sines spread over both lanes of a pair.
     */
    private static final int DL = Math.min(L, DoubleVector.SPECIES_PREFERRED.length());
    private static final VectorSpecies<Double> DS = VectorSpecies.of(double.class, VectorShape.forBitSize(DL * 64));
    private static final VectorSpecies<Float> FD = VectorSpecies.of(float.class, VectorShape.forBitSize(DL * 32));
    private static final VectorShuffle<Double> SWAP = VectorShuffle.fromOp(DS, i -> i ^ 1), EVEN = VectorShuffle.fromOp(DS, i -> i & ~1),
            ODD = VectorShuffle.fromOp(DS, i -> i | 1);
    private static final double[] SIGN = signs();
    /**
     * int4 rows per token two chunks at a time ({@link #rowToken4}): the {@code L} bytes of {@code 2L} codes loaded
     * whole and widened, low nibbles (even channels) and high nibbles (odd channels) split, the two planes put back in
     * channel order by two two-source shuffles. Where {@code L >= 8} (a byte species of {@code L} lanes exists).
     */
    private static final VectorSpecies<Byte> BS = VectorSpecies.of(byte.class, VectorShape.forBitSize(Math.max(64, L * 8)));
    private static final VectorShuffle<Float> ZIP_LO = zip(0), ZIP_HI = zip(L / 2);
    private static final float[] LANE = lanes();
    /**
     * 2-bit key blocks scored by table lookup ({@link #scoreLut}): at head dim 16 with vectors of 16 floats, where a
     * key row is one chunk, one vector holds a table of the 16 values of a channel pair's codes, and {@code L} tokens'
     * code words are one vector.
     */
    private static final boolean LUT = L == 16 && D == 16;
    /** A table entry's two codes: the pair's first channel's ({@code i & 3}) and second's ({@code i >> 2}). */
    private static final float[] LUT_LO = lutCodes(0), LUT_HI = lutCodes(2);
    private static final int[] IOTA = iota(), SHIFT2 = shifts(2), SHIFT4 = shifts(4), SHIFT8 = shifts(8);
    private static final ValueLayout.OfInt INT_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final float LOG2E = 1.44269504088896341f, ROUND = 12582912f, LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    private static final float P0 = 1.9875691500e-4f, P1 = 1.3981999507e-3f, P2 = 8.3334519073e-3f, P3 = 4.1665795894e-2f,
            P4 = 1.6666665459e-1f, P5 = 5.0000001201e-1f;
    static final float EXP_FLOOR = -87f;

    /** How a chain stores its rows, as the kernel reads them. */
    static final int F32 = 0, TOKEN = 1, BLOCK = 2, F16 = 3, BF16 = 4, TOKEN4 = 5;

    private static int[] shape() {
        try {
            return MethodHandles.classData(MethodHandles.lookup(), ConstantDescs.DEFAULT_NAME, int[].class);
        } catch (IllegalAccessException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Lane {@code 2i} from lane {@code from + i} of the first vector, lane {@code 2i + 1} from lane {@code from + i} of
     * the second (an index {@code - L} names the second vector's lane).
     */
    private static VectorShuffle<Float> zip(int from) {
        int[] a = new int[L];
        for (int i = 0; i < L / 2; i++) {
            a[2 * i] = from + i;
            a[2 * i + 1] = from + i - L;
        }
        return VectorShuffle.fromValues(S, a);
    }

    /** -1 in the first lane of each pair, 1 in the second: {@code x0 * c + x1 * -s} and {@code x1 * c + x0 * s}. */
    private static double[] signs() {
        double[] a = new double[DL];
        for (int i = 0; i < DL; i++) a[i] = i % 2 == 0 ? -1 : 1;
        return a;
    }

    private static float[] lanes() {
        float[] a = new float[L];
        for (int i = 0; i < L; i++) a[i] = i;
        return a;
    }

    private static float[] lutCodes(int shift) {
        float[] a = new float[L];
        for (int i = 0; i < L; i++) a[i] = i >> shift & 3;
        return a;
    }

    private static int[] iota() {
        int[] a = new int[L];
        for (int i = 0; i < L; i++) a[i] = i;
        return a;
    }

    /** Lane i's code starts at bit {@code (i * bits) mod 32} of its word. */
    private static int[] shifts(int bits) {
        int[] a = new int[L];
        for (int i = 0; i < L; i++) a[i] = i * bits % 32;
        return a;
    }

    // ---- per call: the chains, the entries read, scratch ----
    private int[] kind = new int[4], bits = new int[4], groupOf = new int[4], groupShift = new int[4];
    private long[] groupMagic = new long[4];
    private long[] rowBytes = new long[4], paramBytes = new long[4];
    private MemorySegment[][] pages = new MemorySegment[4][];
    /** Per block chain: the block whose parameters {@link #zeros} / {@link #scales} hold (-1: none). */
    private int[] loaded = new int[4];
    private float[][] zeros = new float[4][D], scales = new float[4][D];
    private int rpp, rppShift;
    /** {@link #buildLut}'s tables, [head][pair][16]. */
    private final float[] lut = new float[LUT ? G * L / 2 * L : 0];
    /** The chain and block the tables are for (-1: none yet this call). */
    private int lutChain = -1, lutBlock = -1;
    /** {@code s / rpp} is {@code (s * rppMagic) >>> rppShift} ({@link DecodeTemplates#divMagic}): no division per row. */
    private long rppMagic;
    private int[] idx = new int[64];
    private float[] lg = new float[64];
    private final float[] row2 = new float[D];
    private final float[] row = new float[D], tile = new float[TILE * D], pt = new float[G * TILE], maxes = new float[G], red = new float[L];

    /** Rotates each key row by its entry's index as it is read (a lane of {@code positions cache}); null: none. */
    private dev.kvpc.runtime.Rope slotRope;
    /** {@link #slotRope}'s cosines and sines by index ({@link dev.kvpc.runtime.Rope#cosSinTable}); null: rotate row by row. */
    private double[] slotCs;

    @Override
    public boolean rotatesKeysBySlot() {
        return true;
    }

    @Override
    public void attend(KernelRows rows, float[] q, int qpos, BitSet attend, float[] out, float[] colSums, dev.kvpc.runtime.Rope keysBySlot) {
        slotRope = keysBySlot;
        slotCs = keysBySlot == null ? null : keysBySlot.cosSinTable(D, rows.size());
        try {
            attend(rows, q, qpos, attend, out, colSums);
        } finally {
            slotRope = null;
            slotCs = null;
        }
    }

    @Override
    public void attend(KernelRows rows, float[] q, int qpos, BitSet attend, float[] out, float[] colSums) {
        Arrays.fill(out, 0, G * D, 0f);
        int m = select(rows, qpos, attend);
        if (m == 0) return;
        chains(rows);
        int stride = (m + L - 1) / L * L;
        if (lg.length < G * stride) lg = new float[G * stride];
        int[] slots = rows.slotTable(), chainOf = rows.chainTable();
        Arrays.fill(maxes, Float.NEGATIVE_INFINITY);
        lutBlock = -1;
        boolean lut = LUT && slotCs == null && slotRope == null;
        if (GB == 4) {
            // two entries at a time (the last alone when m is odd): each chunk of the query is read once for both
            for (int k = 0; k < m; ) {
                if (lut && k + L <= m && lutRun(slots, chainOf, k)) {
                    scoreLut(q, k, stride, chainOf[2 * idx[k]], slots[2 * idx[k]]);
                    k += L;
                    continue;
                }
                int j0 = idx[k], j1 = idx[Math.min(k + 1, m - 1)];
                readKey(chainOf[2 * j0], slots[2 * j0], j0, row);
                if (k + 1 < m) readKey(chainOf[2 * j1], slots[2 * j1], j1, row2);
                scorePair(q, k, stride, k + 1 < m);
                k += 2;
            }
        } else {
            for (int k = 0; k < m; ) {
                if (lut && k + L <= m && lutRun(slots, chainOf, k)) {
                    scoreLut(q, k, stride, chainOf[2 * idx[k]], slots[2 * idx[k]]);
                    k += L;
                    continue;
                }
                int j = idx[k];
                readKey(chainOf[2 * j], slots[2 * j], j, row);
                scoreRow(row, q, k, stride);
                k++;
            }
        }
        for (int g = 0; g < G; g++) softmax(g * stride, m, stride, maxes[g]);
        values(rows, m, stride, out, colSums);
    }

    /** The entries read, into {@link #idx}: in the attend set (null: all), at positions up to {@code qpos}. */
    private int select(KernelRows rows, int qpos, BitSet attend) {
        int n = rows.size();
        int[] pos = rows.positionTable();
        if (idx.length < n) idx = new int[Math.max(n, idx.length * 2)];
        int m = 0;
        if (attend == null) {
            for (int j = 0; j < n; j++) if (pos[j] <= qpos) idx[m++] = j;
        } else {
            for (int j = attend.nextSetBit(0); j >= 0 && j < n; j = attend.nextSetBit(j + 1)) if (pos[j] <= qpos) idx[m++] = j;
        }
        return m;
    }

    private void chains(KernelRows rows) {
        int c = rows.chainCount();
        if (kind.length < c) {
            kind = new int[c];
            bits = new int[c];
            groupOf = new int[c];
            groupShift = new int[c];
            groupMagic = new long[c];
            rowBytes = new long[c];
            paramBytes = new long[c];
            pages = new MemorySegment[c][];
            loaded = new int[c];
            zeros = new float[c][D];
            scales = new float[c][D];
        }
        rpp = rows.rowsPerPage();
        rppShift = DecodeTemplates.divShift(rpp);
        rppMagic = DecodeTemplates.divMagic(rpp);
        for (int i = 0; i < c; i++) {
            QuantSpec s = rows.chainSpec(i);
            pages[i] = rows.chainPages(i);
            loaded[i] = -1;
            if (s.precision() == Precision.F32) {
                kind[i] = F32;
                rowBytes[i] = 4L * D;
            } else if (!s.quantised()) {
                kind[i] = s.precision() == Precision.F16 ? F16 : BF16;
                rowBytes[i] = 2L * D;
            } else {
                int b = s.precision().bits();
                bits[i] = b;
                groupOf[i] = s.group();
                groupShift[i] = DecodeTemplates.divShift(s.group());
                groupMagic[i] = DecodeTemplates.divMagic(s.group());
                kind[i] = s.axis() == QuantSpec.Axis.CHANNEL ? BLOCK : L >= 8 && b == 4 && s.group() % (2 * L) == 0 ? TOKEN4 : TOKEN;
                paramBytes[i] = kind[i] == BLOCK ? 4L * D : 4L * (D / s.group());
                rowBytes[i] = paramBytes[i] + (long) D * b / 8; // a block chain: bytes of one token's codes + params
            }
        }
    }

    // ---- scores ----

    /**
     * The key row of chain {@code c}, slot {@code s} into {@code dst} (rotated by the entry's index {@code j} for a lane
     * of {@code positions cache}).
     */
    private void readKey(int c, int s, int j, float[] dst) {
        readRow(c, s, dst, 0);
        if (slotCs != null) rotate(dst, slotCs, j * D);
        else if (slotRope != null) slotRope.rotate(dst, 0, D, j);
    }

    /**
     * {@link dev.kvpc.runtime.Rope#rotate} of row {@code x} with the cosines and sines at {@code base} of {@code cs},
     * bit for bit: per pair {@code x0 * c - x1 * s} and {@code x0 * s + x1 * c} in double (a negated product added is
     * the difference, and a sum is the same either way round), rounded to float.
     */
    private static void rotate(float[] x, double[] cs, int base) {
        DoubleVector sign = DoubleVector.fromArray(DS, SIGN, 0);
        if (L == 2 * DL) {
            // a chunk of L floats is two double vectors; stored whole, as the scores read it (a chunk stored in halves
            // and loaded whole would stall on the store buffer)
            VectorMask<Float> upper = FloatVector.fromArray(S, LANE, 0).compare(VectorOperators.GE, DL);
            for (int c = 0; c < D; c += L) {
                FloatVector x2 = FloatVector.fromArray(S, x, c);
                DoubleVector v0 = (DoubleVector) x2.convertShape(VectorOperators.F2D, DS, 0), v1 = (DoubleVector) x2.convertShape(VectorOperators.F2D, DS, 1);
                DoubleVector t0 = DoubleVector.fromArray(DS, cs, base + c), t1 = DoubleVector.fromArray(DS, cs, base + c + DL);
                DoubleVector r0 = v0.mul(t0.rearrange(EVEN)).add(v0.rearrange(SWAP).mul(t0.rearrange(ODD).mul(sign)));
                DoubleVector r1 = v1.mul(t1.rearrange(EVEN)).add(v1.rearrange(SWAP).mul(t1.rearrange(ODD).mul(sign)));
                FloatVector f0 = (FloatVector) r0.convertShape(VectorOperators.D2F, S, 0), f1 = (FloatVector) r1.convertShape(VectorOperators.D2F, S, -1);
                f0.blend(f1, upper).intoArray(x, c);
            }
            return;
        }
        for (int c = 0; c < D; c += DL) {
            DoubleVector v = (DoubleVector) FloatVector.fromArray(FD, x, c).convertShape(VectorOperators.F2D, DS, 0);
            DoubleVector t = DoubleVector.fromArray(DS, cs, base + c);
            DoubleVector r = v.mul(t.rearrange(EVEN)).add(v.rearrange(SWAP).mul(t.rearrange(ODD).mul(sign)));
            ((FloatVector) r.convertShape(VectorOperators.D2F, FD, 0)).intoArray(x, c);
        }
    }

    /**
     * Logits of entries {@code k} (key row in {@link #row}) and, when {@code both}, {@code k + 1} (in {@link #row2}),
     * for blocks of four heads: one load of each chunk of the query for both rows, one FMA per head and row. Four
     * heads' lane sums are one fixed tree: each head's halves added, two heads blended into one vector (head 0 low,
     * head 1 high; heads 2 and 3 alike), quarters added, the two vectors blended so that the quarters hold heads 0, 2,
     * 1, 3, then each quarter summed into its first lane: 9 rotations for four heads, not 16. The sums are written
     * here, not in a helper, so that no vector crosses a call the JIT might not inline; the rows are read by the
     * caller, so that this method stays small.
     */
    private void scorePair(float[] q, int k, int stride, boolean both) {
        float[] second = both ? row2 : row;
        for (int b = 0; b < BLOCKS; b++) {
            int h = b * GB;
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0, e0 = a0, e1 = a0, e2 = a0, e3 = a0;
            for (int ch = 0; ch < CHUNKS; ch++) {
                FloatVector x = FloatVector.fromArray(S, row, ch * L), y = FloatVector.fromArray(S, second, ch * L);
                FloatVector q0 = FloatVector.fromArray(S, q, h * D + ch * L), q1 = FloatVector.fromArray(S, q, (h + 1) * D + ch * L);
                a0 = q0.fma(x, a0);
                e0 = q0.fma(y, e0);
                a1 = q1.fma(x, a1);
                e1 = q1.fma(y, e1);
                FloatVector q2 = FloatVector.fromArray(S, q, (h + 2) * D + ch * L), q3 = FloatVector.fromArray(S, q, (h + 3) * D + ch * L);
                a2 = q2.fma(x, a2);
                e2 = q2.fma(y, e2);
                a3 = q3.fma(x, a3);
                e3 = q3.fma(y, e3);
            }
            FloatVector lane = FloatVector.fromArray(S, LANE, 0);
            VectorMask<Float> upper = lane.compare(VectorOperators.GE, L / 2);
            VectorMask<Float> odd = lane.compare(VectorOperators.GE, L / 4).and(lane.compare(VectorOperators.LT, L / 2))
                    .or(lane.compare(VectorOperators.GE, 3 * L / 4));
            for (int r = 0; r < (both ? 2 : 1); r++) {
                FloatVector c0 = r == 0 ? a0 : e0, c1 = r == 0 ? a1 : e1, c2 = r == 0 ? a2 : e2, c3 = r == 0 ? a3 : e3;
                FloatVector y01 = c0.add(c0.rearrange(RH)).blend(c1.add(c1.rearrange(RH)), upper);
                FloatVector y23 = c2.add(c2.rearrange(RH)).blend(c3.add(c3.rearrange(RH)), upper);
                FloatVector z01 = y01.add(y01.rearrange(RQ)), z23 = y23.add(y23.rearrange(RQ));
                FloatVector w = z01.blend(z23.rearrange(RB), odd);
                if (L >= 16) w = w.add(w.rearrange(R2));
                if (L >= 8) w = w.add(w.rearrange(R1));
                w.intoArray(red, 0);
                logits4(h, k + r, stride);
            }
        }
    }

    /** Logits of entry {@code k} from the key row {@code r}, for heads in blocks of fewer than four. */
    private void scoreRow(float[] r, float[] q, int k, int stride) {
        for (int b = 0; b < BLOCKS; b++) {
            int h = b * GB;
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0;
            for (int ch = 0; ch < CHUNKS; ch++) {
                FloatVector x = FloatVector.fromArray(S, r, ch * L);
                a0 = FloatVector.fromArray(S, q, h * D + ch * L).fma(x, a0);
                if (GB > 1) a1 = FloatVector.fromArray(S, q, (h + 1) * D + ch * L).fma(x, a1);
                if (GB > 2) a2 = FloatVector.fromArray(S, q, (h + 2) * D + ch * L).fma(x, a2);
            }
            logit(h, k, stride, sum(a0) * SCALE);
            if (GB > 1) logit(h + 1, k, stride, sum(a1) * SCALE);
            if (GB > 2) logit(h + 2, k, stride, sum(a2) * SCALE);
        }
    }

    /** The four heads' sums {@link #scorePair} left in {@link #red}. */
    private void logits4(int h, int k, int stride) {
        logit(h, k, stride, red[0] * SCALE);
        logit(h + 1, k, stride, red[L / 2] * SCALE);
        logit(h + 2, k, stride, red[L / 4] * SCALE);
        logit(h + 3, k, stride, red[3 * L / 4] * SCALE);
    }

    private void logit(int h, int k, int stride, float l) {
        lg[h * stride + k] = l;
        if (l > maxes[h]) maxes[h] = l;
    }

    /** The lanes of {@code v} added in a fixed tree of rotations (the same bits interpreted and compiled). */
    private static float sum(FloatVector v) {
        if (L >= 16) v = v.add(v.rearrange(R8));
        if (L >= 8) v = v.add(v.rearrange(R4));
        if (L >= 4) v = v.add(v.rearrange(R2));
        if (L >= 2) v = v.add(v.rearrange(R1));
        return v.lane(0);
    }

    // ---- reading rows of each format ----

    /** The codes of one chunk of {@code L} channels at {@code off} ({@code bits} each, lowest bits first), as floats. */
    private static FloatVector codes(MemorySegment seg, long off, int bits) {
        return switch (bits) {
            case 2 -> codes2(seg, off);
            case 4 -> codes4(seg, off);
            default -> codes8(seg, off);
        };
    }

    /** The {@code bytes} (4, 2 or 1) little-endian bytes at {@code off} as an unsigned int. */
    private static int word(MemorySegment seg, long off, int bytes) {
        return switch (bytes) {
            case 4 -> seg.get(INT_LE, off);
            case 2 -> seg.get(SHORT_LE, off) & 0xFFFF;
            default -> seg.get(ValueLayout.JAVA_BYTE, off) & 0xFF;
        };
    }

    /** 2-bit codes: {@code L} of them are {@code L / 4} bytes, read as one word. */
    private static FloatVector codes2(MemorySegment seg, long off) {
        IntVector v = IntVector.broadcast(IS, word(seg, off, L / 4));
        return (FloatVector) v.lanewise(VectorOperators.LSHR, IntVector.fromArray(IS, SHIFT2, 0)).and(3).convert(VectorOperators.I2F, 0);
    }

    private static FloatVector codes4(MemorySegment seg, long off) {
        IntVector v = IntVector.broadcast(IS, word(seg, off, Math.min(4, L / 2)));
        if (L > 8) v = v.blend(seg.get(INT_LE, off + 4), IntVector.fromArray(IS, IOTA, 0).compare(VectorOperators.GE, 8));
        return (FloatVector) v.lanewise(VectorOperators.LSHR, IntVector.fromArray(IS, SHIFT4, 0)).and(15).convert(VectorOperators.I2F, 0);
    }

    private static FloatVector codes8(MemorySegment seg, long off) {
        IntVector lane = IntVector.fromArray(IS, IOTA, 0);
        IntVector v = IntVector.broadcast(IS, seg.get(INT_LE, off));
        if (L > 4) v = v.blend(seg.get(INT_LE, off + 4), lane.compare(VectorOperators.GE, 4));
        if (L > 8) {
            v = v.blend(seg.get(INT_LE, off + 8), lane.compare(VectorOperators.GE, 8));
            v = v.blend(seg.get(INT_LE, off + 12), lane.compare(VectorOperators.GE, 12));
        }
        return (FloatVector) v.lanewise(VectorOperators.LSHR, IntVector.fromArray(IS, SHIFT8, 0)).and(255).convert(VectorOperators.I2F, 0);
    }

    /** Row {@code s} of token-quantised chain {@code c}, dequantised ({@code zero + code * scale}) into {@code dst}. */
    private void rowToken(int c, int s, float[] dst, int dOff) {
        int p = page(s);
        MemorySegment seg = pages[c][p];
        long off = (long) (s - p * rpp) * rowBytes[c], codes = off + paramBytes[c];
        int b = bits[c], grp = groupOf[c];
        for (int g = 0, c0 = 0; c0 < D; g++) {
            // the group's zero point and scale, two f16 side by side, in one read
            int zs = seg.get(INT_LE, off + 4L * g);
            float zero = Float.float16ToFloat((short) zs), scale = Packing.readScale(Float.float16ToFloat((short) (zs >>> 16)));
            for (int end = c0 + grp; c0 < end; c0 += L) {
                codes(seg, codes + (long) c0 * b / 8, b).fma(scale, zero).intoArray(dst, dOff + c0);
            }
        }
    }

    /** {@link #rowToken} of an int4 chain whose groups are whole pairs of chunks, a pair at a time. */
    private void rowToken4(int c, int s, float[] dst, int dOff) {
        int p = page(s);
        MemorySegment seg = pages[c][p];
        long off = (long) (s - p * rpp) * rowBytes[c], codes = off + paramBytes[c];
        int grp = groupOf[c];
        for (int g = 0, c0 = 0; c0 < D; g++) {
            float zero = Packing.getF16(seg, off + 4L * g), scale = Packing.readScale(Packing.getF16(seg, off + 4L * g + 2));
            for (int end = c0 + grp; c0 < end; c0 += 2 * L) {
                IntVector w = (IntVector) ByteVector.fromMemorySegment(BS, seg, codes + c0 / 2, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, IS, 0);
                FloatVector even = (FloatVector) w.and(15).convert(VectorOperators.I2F, 0);
                FloatVector odd = (FloatVector) w.lanewise(VectorOperators.LSHR, 4).and(15).convert(VectorOperators.I2F, 0);
                even.rearrange(ZIP_LO, odd).fma(scale, zero).intoArray(dst, dOff + c0);
                even.rearrange(ZIP_HI, odd).fma(scale, zero).intoArray(dst, dOff + c0 + L);
            }
        }
    }

    /** The page of slot {@code s}: {@code s / rpp} without a division. */
    private int page(int s) {
        return (int) ((s * rppMagic) >>> rppShift);
    }

    /** Slot {@code s} of block chain {@code c} (token {@code s % group} of block {@code s / group}), dequantised. */
    private void rowBlock(int c, int s, float[] dst, int dOff) {
        int grp = groupOf[c], blk = (int) ((s * groupMagic[c]) >>> groupShift[c]), b = bits[c];
        MemorySegment seg = pages[c][blk];
        blockParams(c, blk);
        float[] z = zeros[c], sc = scales[c];
        long codes = paramBytes[c] + (long) (s - blk * grp) * D * b / 8;
        for (int ch = 0; ch < CHUNKS; ch++) {
            int c0 = ch * L;
            codes(seg, codes + (long) c0 * b / 8, b).fma(FloatVector.fromArray(S, sc, c0), FloatVector.fromArray(S, z, c0)).intoArray(dst, dOff + c0);
        }
    }

    /** Block {@code blk} of block chain {@code c}: its per-channel zero points and scales into {@link #zeros} / {@link #scales}. */
    private void blockParams(int c, int blk) {
        if (loaded[c] == blk) return;
        MemorySegment seg = pages[c][blk];
        float[] z = zeros[c], sc = scales[c];
        for (int i = 0; i < D; i++) {
            z[i] = Packing.getF16(seg, 4L * i);
            sc[i] = Packing.readScale(Packing.getF16(seg, 4L * i + 2));
        }
        loaded[c] = blk;
    }

    // ---- 2-bit key blocks by table lookup ----

    /**
     * Whether entries {@code idx[k .. k + L)} are {@code L} consecutive tokens of one 2-bit per-channel block (KIVI's
     * keys), read in order: then {@link #scoreLut} scores them together.
     */
    private boolean lutRun(int[] slots, int[] chainOf, int k) {
        int j = idx[k], c = chainOf[2 * j];
        if (kind[c] != BLOCK || bits[c] != 2) return false;
        int s = slots[2 * j], grp = groupOf[c], blk = (int) ((s * groupMagic[c]) >>> groupShift[c]);
        if (s - blk * grp + L > grp) return false;
        for (int i = 1; i < L; i++) {
            int e = j + i;
            if (idx[k + i] != e || chainOf[2 * e] != c || slots[2 * e] != s + i) return false;
        }
        return true;
    }

    /**
     * Logits of the {@code L} tokens from slot {@code s} of 2-bit block chain {@code c} (entries {@code idx[k..]}),
     * every head at once, by table lookup rather than row by row, with the same bits. Read row by row, a key's score
     * is a sum over the 16 lanes of {@code c_i = q_i * (code_i * scale_i + zero_i)} (each rounded as the FMAs round
     * it) in a fixed tree whose first level adds lanes {@code i} and {@code i + 8}. That first sum takes one of 16
     * values for the two lanes' four code bits, so per block and head there is a table of 16 floats for each of the 8
     * pairs {@code (i, i + 8)} ({@link #buildLut}); for {@code L} tokens the pairs' bits index their tables, all tokens
     * in one rearrange, and the rest of the tree adds the 8 lookups in its own order.
     */
    private void scoreLut(float[] q, int k, int stride, int c, int s) {
        int grp = groupOf[c], blk = (int) ((s * groupMagic[c]) >>> groupShift[c]);
        if (lutBlock != blk || lutChain != c) buildLut(q, c, blk);
        IntVector words = IntVector.fromMemorySegment(IS, pages[c][blk], paramBytes[c] + 4L * (s - blk * grp), ByteOrder.LITTLE_ENDIAN);
        // each pair's index vector once for every head: lanes i and i + 8's codes, the first in the low bits
        VectorShuffle<Float> i0 = pairIndex(words, 0), i1 = pairIndex(words, 1), i2 = pairIndex(words, 2), i3 = pairIndex(words, 3);
        VectorShuffle<Float> i4 = pairIndex(words, 4), i5 = pairIndex(words, 5), i6 = pairIndex(words, 6), i7 = pairIndex(words, 7);
        for (int h = 0; h < G; h++) {
            int t = h * (L / 2) * L;
            FloatVector p0 = FloatVector.fromArray(S, lut, t).rearrange(i0), p1 = FloatVector.fromArray(S, lut, t + L).rearrange(i1);
            FloatVector p2 = FloatVector.fromArray(S, lut, t + 2 * L).rearrange(i2), p3 = FloatVector.fromArray(S, lut, t + 3 * L).rearrange(i3);
            FloatVector p4 = FloatVector.fromArray(S, lut, t + 4 * L).rearrange(i4), p5 = FloatVector.fromArray(S, lut, t + 5 * L).rearrange(i5);
            FloatVector p6 = FloatVector.fromArray(S, lut, t + 6 * L).rearrange(i6), p7 = FloatVector.fromArray(S, lut, t + 7 * L).rearrange(i7);
            // added as sum()'s tree adds lanes: (0 + 4) + (2 + 6), then (1 + 5) + (3 + 7), then the two
            FloatVector l = p0.add(p4).add(p2.add(p6)).add(p1.add(p5).add(p3.add(p7))).mul(SCALE);
            l.intoArray(lg, h * stride + k);
            float max = l.reduceLanes(VectorOperators.MAX);
            if (max > maxes[h]) maxes[h] = max;
        }
    }

    /**
     * Pair {@code i}'s table index for each token of {@code words}: its codes of lanes {@code i} (low bits) and
     * {@code i + 8} (small: the JIT inlines it, so its vectors stay in registers).
     */
    private static VectorShuffle<Float> pairIndex(IntVector words, int i) {
        return words.lanewise(VectorOperators.LSHR, 2 * i).and(3).or(words.lanewise(VectorOperators.LSHR, 2 * i + 14).and(12)).toShuffle().cast(S);
    }

    /**
     * The tables of block {@code blk} of chain {@code c} for this call's query: per head and pair {@code (i, i + 8)},
     * entry {@code e} is {@code c_i + c_(i+8)} for codes {@code e & 3} and {@code e >> 2}, each {@code c} computed as
     * the row's path computes it (the code times the scale plus the zero point in one FMA, then times the query in
     * another).
     */
    private void buildLut(float[] q, int c, int blk) {
        blockParams(c, blk);
        float[] z = zeros[c], sc = scales[c];
        FloatVector lo = FloatVector.fromArray(S, LUT_LO, 0), hi = FloatVector.fromArray(S, LUT_HI, 0), zero = FloatVector.zero(S);
        for (int h = 0; h < G; h++) {
            for (int i = 0; i < L / 2; i++) {
                int a = i, b = i + L / 2;
                FloatVector ca = FloatVector.broadcast(S, q[h * D + a]).fma(lo.fma(sc[a], z[a]), zero);
                FloatVector cb = FloatVector.broadcast(S, q[h * D + b]).fma(hi.fma(sc[b], z[b]), zero);
                ca.add(cb).intoArray(lut, (h * (L / 2) + i) * L);
            }
        }
        lutChain = c;
        lutBlock = blk;
    }

    /** Row {@code s} of f16 or bf16 chain {@code c}, widened as the runtime's codecs widen it, into {@code dst}. */
    private void rowHalf(int c, int s, float[] dst, int dOff) {
        int p = page(s);
        MemorySegment seg = pages[c][p];
        long off = (long) (s - p * rpp) * rowBytes[c];
        if (kind[c] == F16) {
            for (int i = 0; i < D; i++) dst[dOff + i] = Packing.getF16(seg, off + 2L * i);
        } else {
            for (int i = 0; i < D; i++) dst[dOff + i] = Packing.bf16ToFloat(seg.get(SHORT_LE, off + 2L * i));
        }
    }

    /** Row {@code s} of f32 chain {@code c} into {@code dst}. */
    private void rowF32(int c, int s, float[] dst, int dOff) {
        int p = page(s);
        MemorySegment seg = pages[c][p];
        long off = (long) (s - p * rpp) * rowBytes[c];
        for (int ch = 0; ch < CHUNKS; ch++) {
            FloatVector.fromMemorySegment(S, seg, off + 4L * ch * L, ByteOrder.LITTLE_ENDIAN).intoArray(dst, dOff + ch * L);
        }
    }

    /** Row {@code s} of chain {@code c}, as f32 (widened or dequantised as its format says), into {@code dst}. */
    private void readRow(int c, int s, float[] dst, int dOff) {
        switch (kind[c]) {
            case F32 -> rowF32(c, s, dst, dOff);
            case F16, BF16 -> rowHalf(c, s, dst, dOff);
            case TOKEN -> rowToken(c, s, dst, dOff);
            case TOKEN4 -> rowToken4(c, s, dst, dOff);
            default -> rowBlock(c, s, dst, dOff);
        }
    }

    // ---- softmax ----

    /** Head logits at {@code off}, {@code m} of them, the largest {@code max}: replaced by their probabilities. */
    private void softmax(int off, int m, int stride, float max) {
        for (int k = m; k < stride; k++) lg[off + k] = Float.NEGATIVE_INFINITY;
        double total = 0;
        for (int k = 0; k < stride; k += L) total += exp(lg, off + k, max);
        float inv = (float) (1.0 / total);
        for (int k = 0; k < stride; k += L) FloatVector.fromArray(S, lg, off + k).mul(inv).intoArray(lg, off + k);
    }

    /**
     * {@code e^(x - max)} for the vector {@code x} at {@code a[at]}, stored in its place; returns the lanes' sum (the
     * fixed tree of {@link #sum}, written out). Arrays in, a float out: no vector crosses this call, so it costs no
     * allocation when the JIT does not inline it (a vector returned from a call it does not inline is boxed).
     *
     * <p>The exponential, for {@code y = x - max <= 0} in lane-wise arithmetic: below {@value #EXP_FLOOR} (masked
     * entries are {@code -inf}) gives 0; else {@code y = n ln2 + r}, {@code n} rounded by adding {@code 1.5 * 2^23}
     * (in one rounding, with the FMA), {@code r} in two parts (the first has 9 significant bits, so {@code n} times it
     * is exact), {@code e^r} from a degree-5 polynomial on {@code |r| <= ln2/2}, times {@code 2^n} made from the
     * rounded float's low bits.
     */
    private static float exp(float[] a, int at, float max) {
        FloatVector x = FloatVector.fromArray(S, a, at).sub(max);
        VectorMask<Float> under = x.compare(VectorOperators.LT, EXP_FLOOR);
        FloatVector xs = x.blend(0f, under);
        FloatVector t = xs.fma(LOG2E, ROUND);
        FloatVector n = t.sub(ROUND);
        FloatVector r = n.fma(FloatVector.broadcast(S, -LN2_HI), xs);
        r = n.fma(FloatVector.broadcast(S, -LN2_LO), r);
        FloatVector p = r.fma(P0, P1).fma(r, FloatVector.broadcast(S, P2)).fma(r, FloatVector.broadcast(S, P3))
                .fma(r, FloatVector.broadcast(S, P4)).fma(r, FloatVector.broadcast(S, P5));
        FloatVector r2 = r.mul(r);
        FloatVector er = p.fma(r2, r.add(1f));
        IntVector bitsOf2n = ((IntVector) t.reinterpretAsInts()).lanewise(VectorOperators.LSHL, 23).add(127 << 23);
        FloatVector e = er.mul(bitsOf2n.reinterpretAsFloats()).blend(0f, under);
        e.intoArray(a, at);
        if (L >= 16) e = e.add(e.rearrange(R8));
        if (L >= 8) e = e.add(e.rearrange(R4));
        if (L >= 4) e = e.add(e.rearrange(R2));
        if (L >= 2) e = e.add(e.rearrange(R1));
        return e.lane(0);
    }

    // ---- values ----

    private void values(KernelRows rows, int m, int stride, float[] out, float[] colSums) {
        int[] slots = rows.slotTable(), chainOf = rows.chainTable();
        int t = 0;
        for (int k = 0; k < m; k++) {
            boolean any = false;
            for (int g = 0; g < G; g++) any |= lg[g * stride + k] != 0f;
            if (!any) continue;
            int j = idx[k];
            if (colSums != null) for (int g = 0; g < G; g++) colSums[j] += lg[g * stride + k];
            for (int g = 0; g < G; g++) pt[g * TILE + t] = lg[g * stride + k];
            readRow(chainOf[2 * j + 1], slots[2 * j + 1], tile, t * D);
            if (++t == TILE) {
                accumulate(t, out);
                t = 0;
            }
        }
        if (t > 0) accumulate(t, out);
    }

    /** Every head's output += the tile's {@code n} rows weighed by their probabilities, two chunks at a time. */
    private void accumulate(int n, float[] out) {
        for (int b = 0; b < BLOCKS; b++) {
            int h = b * GB, ch = 0;
            for (; ch + 1 < CHUNKS; ch += 2) pair(n, out, h, ch * L);
            if (ch < CHUNKS) single(n, out, h, ch * L);
        }
    }

    private void pair(int n, float[] out, int h, int c0) {
        FloatVector o00 = FloatVector.fromArray(S, out, h * D + c0), o01 = FloatVector.fromArray(S, out, h * D + c0 + L);
        FloatVector o10 = o00, o11 = o00, o20 = o00, o21 = o00, o30 = o00, o31 = o00;
        if (GB > 1) {
            o10 = FloatVector.fromArray(S, out, (h + 1) * D + c0);
            o11 = FloatVector.fromArray(S, out, (h + 1) * D + c0 + L);
        }
        if (GB > 2) {
            o20 = FloatVector.fromArray(S, out, (h + 2) * D + c0);
            o21 = FloatVector.fromArray(S, out, (h + 2) * D + c0 + L);
        }
        if (GB > 3) {
            o30 = FloatVector.fromArray(S, out, (h + 3) * D + c0);
            o31 = FloatVector.fromArray(S, out, (h + 3) * D + c0 + L);
        }
        for (int t = 0; t < n; t++) {
            FloatVector v0 = FloatVector.fromArray(S, tile, t * D + c0), v1 = FloatVector.fromArray(S, tile, t * D + c0 + L);
            FloatVector w = FloatVector.broadcast(S, pt[h * TILE + t]);
            o00 = v0.fma(w, o00);
            o01 = v1.fma(w, o01);
            if (GB > 1) {
                w = FloatVector.broadcast(S, pt[(h + 1) * TILE + t]);
                o10 = v0.fma(w, o10);
                o11 = v1.fma(w, o11);
            }
            if (GB > 2) {
                w = FloatVector.broadcast(S, pt[(h + 2) * TILE + t]);
                o20 = v0.fma(w, o20);
                o21 = v1.fma(w, o21);
            }
            if (GB > 3) {
                w = FloatVector.broadcast(S, pt[(h + 3) * TILE + t]);
                o30 = v0.fma(w, o30);
                o31 = v1.fma(w, o31);
            }
        }
        o00.intoArray(out, h * D + c0);
        o01.intoArray(out, h * D + c0 + L);
        if (GB > 1) {
            o10.intoArray(out, (h + 1) * D + c0);
            o11.intoArray(out, (h + 1) * D + c0 + L);
        }
        if (GB > 2) {
            o20.intoArray(out, (h + 2) * D + c0);
            o21.intoArray(out, (h + 2) * D + c0 + L);
        }
        if (GB > 3) {
            o30.intoArray(out, (h + 3) * D + c0);
            o31.intoArray(out, (h + 3) * D + c0 + L);
        }
    }

    private void single(int n, float[] out, int h, int c0) {
        FloatVector o0 = FloatVector.fromArray(S, out, h * D + c0), o1 = o0, o2 = o0, o3 = o0;
        if (GB > 1) o1 = FloatVector.fromArray(S, out, (h + 1) * D + c0);
        if (GB > 2) o2 = FloatVector.fromArray(S, out, (h + 2) * D + c0);
        if (GB > 3) o3 = FloatVector.fromArray(S, out, (h + 3) * D + c0);
        for (int t = 0; t < n; t++) {
            FloatVector v = FloatVector.fromArray(S, tile, t * D + c0);
            o0 = v.fma(FloatVector.broadcast(S, pt[h * TILE + t]), o0);
            if (GB > 1) o1 = v.fma(FloatVector.broadcast(S, pt[(h + 1) * TILE + t]), o1);
            if (GB > 2) o2 = v.fma(FloatVector.broadcast(S, pt[(h + 2) * TILE + t]), o2);
            if (GB > 3) o3 = v.fma(FloatVector.broadcast(S, pt[(h + 3) * TILE + t]), o3);
        }
        o0.intoArray(out, h * D + c0);
        if (GB > 1) o1.intoArray(out, (h + 1) * D + c0);
        if (GB > 2) o2.intoArray(out, (h + 2) * D + c0);
        if (GB > 3) o3.intoArray(out, (h + 3) * D + c0);
    }
}
