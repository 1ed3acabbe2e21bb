package dev.kvpc.runtime.lane;

import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;
import org.junit.jupiter.api.Test;

import java.util.BitSet;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** Lanes in pages: survivors keep positions and values (bit-exact at f32), memory falls with eviction. */
class LaneTest {
    static float[] row(Random r, int d) {
        float[] x = new float[d];
        for (int i = 0; i < d; i++) x[i] = (float) r.nextGaussian();
        return x;
    }

    @Test
    void evictionKeepsSurvivorsExactlyAndFreesPages() {
        int d = 64;
        try (PagePool pool = new PagePool()) {
            Lane lane = new Lane(pool, d, QuantSpec.of(Precision.F32), 16);
            Random r = new Random(1);
            float[][] ks = new float[1000][], vs = new float[1000][];
            for (int i = 0; i < 1000; i++) {
                ks[i] = row(r, d);
                vs[i] = row(r, d);
                lane.append(i, 0, ks[i], 0, vs[i], 0);
            }
            long full = pool.bytesInUse();
            assertEquals(1000L * 2 * d * 4, full, "1000 entries of f32 keys and values in full pages");
            BitSet keep = new BitSet();
            for (int i = 0; i < 1000; i++) if (r.nextInt(4) == 0 || i >= 950) keep.set(i);
            int kept = keep.cardinality();
            lane.retain(keep);
            assertEquals(kept, lane.size());
            float[] got = new float[d];
            int e = 0;
            for (int i = keep.nextSetBit(0); i >= 0; i = keep.nextSetBit(i + 1), e++) {
                assertEquals(i, lane.position(e));
                lane.read(e, Lane.Part.KEYS, got, 0);
                assertArrayEquals(ks[i], got);
                lane.read(e, Lane.Part.VALUES, got, 0);
                assertArrayEquals(vs[i], got);
            }
            long pageBytes = 16L * d * 4;
            // keys and values of one format share a chain: 2 x kept rows in whole pages
            long expected = ((2L * kept + 15) / 16) * pageBytes;
            assertEquals(expected, pool.bytesInUse(), "memory falls to whole pages of the survivors");
            assertEquals(expected, lane.bytes().total());
            lane.clear();
            assertEquals(0, pool.bytesInUse());
        }
    }

    @Test
    void restoringAtAnotherPrecisionMovesTheRowAndKeepsTheRest() {
        int d = 32;
        try (PagePool pool = new PagePool()) {
            Lane lane = new Lane(pool, d, QuantSpec.of(Precision.F16), 8);
            Random r = new Random(2);
            for (int i = 0; i < 40; i++) lane.append(i, 0, row(r, d), 0, row(r, d), 0);
            float[] before = new float[d], after = new float[d];
            lane.read(5, Lane.Part.VALUES, before, 0);
            QuantSpec int4 = new QuantSpec(Precision.INT4, QuantSpec.Axis.TOKEN, 16);
            for (int i = 0; i < 30; i++) lane.restore(i, Lane.Part.KEYS, int4);
            lane.read(5, Lane.Part.VALUES, after, 0);
            assertArrayEquals(before, after, "values untouched");
            assertEquals(int4, lane.spec(0, Lane.Part.KEYS));
            assertEquals(QuantSpec.of(Precision.F16), lane.spec(35, Lane.Part.KEYS));
            Lane.LaneBytes b = lane.bytes();
            assertTrue(b.scales() > 0);
            BitSet keep = new BitSet();
            keep.set(0, 40, true);
            keep.clear(3);
            keep.clear(33);
            lane.retain(keep);
            assertEquals(38, lane.size());
            assertEquals(34, lane.position(32));
        }
    }

    /**
     * What attention kernels rely on: in every format, adding w times an entry is adding w times the row read, and a
     * dot product with an entry is {@link Lane#dot4} of the row read.
     */
    @Test
    void axpyIsTheProductWithTheRowReadInEveryFormat() {
        int d = 32;
        try (PagePool pool = new PagePool()) {
            Lane lane = new Lane(pool, d, QuantSpec.of(Precision.F32), 8);
            Random r = new Random(5);
            for (int i = 0; i < 64; i++) lane.append(i, 0, row(r, d), 0, row(r, d), 0);
            QuantSpec[] formats = {QuantSpec.of(Precision.F16), QuantSpec.of(Precision.BF16), new QuantSpec(Precision.INT8, QuantSpec.Axis.TOKEN, 32),
                    new QuantSpec(Precision.INT4, QuantSpec.Axis.TOKEN, 16), new QuantSpec(Precision.INT2, QuantSpec.Axis.TOKEN, 8)};
            for (int f = 0; f < formats.length; f++) {
                for (int i = 0; i < 8; i++) {
                    lane.restore(8 + f * 8 + i, Lane.Part.VALUES, formats[f]);
                    lane.restore(8 + f * 8 + i, Lane.Part.KEYS, formats[f]);
                }
            }
            // a block of 16 entries quantised per channel (KIVI's keys, here the values)
            int[] block = new int[16];
            for (int t = 0; t < 16; t++) block[t] = 48 + t;
            lane.packBlock(block, Lane.Part.VALUES, new QuantSpec(Precision.INT2, QuantSpec.Axis.CHANNEL, 16));
            lane.packBlock(block, Lane.Part.KEYS, new QuantSpec(Precision.INT2, QuantSpec.Axis.CHANNEL, 16));
            java.util.Set<QuantSpec> seen = new java.util.HashSet<>();
            float[] v = new float[d];
            for (int e = 0; e < lane.size(); e++) {
                seen.add(lane.spec(e, Lane.Part.VALUES));
                float w = (float) r.nextGaussian();
                float[] acc = row(r, d), want = acc.clone();
                lane.read(e, Lane.Part.VALUES, v, 0);
                for (int c = 0; c < d; c++) want[c] += w * v[c];
                lane.axpyValue(e, w, acc, 0);
                assertArrayEquals(want, acc, "entry " + e + " at " + lane.spec(e, Lane.Part.VALUES));
                // and a dot product with the key is Lane.dot4 of the key row read (keys in the same formats)
                float[] q = row(r, d);
                float[] k = new float[d];
                lane.read(e, Lane.Part.KEYS, k, 0);
                assertEquals(Lane.dot4(q, 0, k, 0, d), lane.dotKey(e, q, 0), 0f, "entry " + e + " key");
            }
            assertEquals(7, seen.size(), "f32, five per-token formats and one per-channel block: " + seen);
        }
    }

    /**
     * Rows of per-channel blocks (KIVI keys) read the same whichever block was read before (the block chain keeps the
     * last block's decoded scales), and after a dead block is replaced by the last one.
     */
    @Test
    void perChannelBlocksReadTheSameRowsInAnyOrderAndAfterABlockMoves() {
        int d = 16, blocks = 4;
        QuantSpec spec = new QuantSpec(Precision.INT2, QuantSpec.Axis.CHANNEL, 16);
        try (PagePool pool = new PagePool()) {
            Lane lane = new Lane(pool, d, QuantSpec.of(Precision.F32), 8);
            Random r = new Random(11);
            for (int i = 0; i < 16 * blocks; i++) lane.append(i, 0, row(r, d), 0, row(r, d), 0);
            for (int b = 0; b < blocks; b++) {
                int[] block = new int[16];
                for (int t = 0; t < 16; t++) block[t] = b * 16 + t;
                lane.packBlock(block, Lane.Part.KEYS, spec);
            }
            java.util.Map<Integer, float[]> byPosition = new java.util.HashMap<>();
            for (int e = 0; e < lane.size(); e++) {
                float[] k = new float[d];
                lane.read(e, Lane.Part.KEYS, k, 0);
                byPosition.put(lane.position(e), k);
            }
            // entries in an order that changes block at every read
            float[] k = new float[d];
            for (int i = 0; i < lane.size(); i++) {
                int e = (i * 17) % lane.size();
                lane.read(e, Lane.Part.KEYS, k, 0);
                assertArrayEquals(byPosition.get(lane.position(e)), k, "entry " + e + " read out of order");
            }
            // block 1 dies whole: the last block moves into its place
            java.util.BitSet keep = new java.util.BitSet();
            keep.set(0, lane.size());
            keep.clear(16, 32);
            lane.read(16, Lane.Part.KEYS, k, 0); // block 1 read last before it goes
            lane.retain(keep);
            assertEquals(16 * (blocks - 1), lane.size());
            for (int e = lane.size() - 1; e >= 0; e--) {
                lane.read(e, Lane.Part.KEYS, k, 0);
                assertArrayEquals(byPosition.get(lane.position(e)), k, "entry " + e + " (position " + lane.position(e) + ") after the move");
            }
        }
    }

    @Test
    void pagesTakenBackFromThePoolHoldExactlyTheNewRows() {
        // a lane on pages another lane filled with other rows (reused as they are, uncleared)
        // reads back bit for bit what a lane on fresh pages does: f32 rows, int4 rows per token, int2 blocks per channel
        int d = 32;
        QuantSpec token = new QuantSpec(Precision.INT4, QuantSpec.Axis.TOKEN, 16), block = new QuantSpec(Precision.INT2, QuantSpec.Axis.CHANNEL, 8);
        try (PagePool reused = new PagePool(); PagePool fresh = new PagePool()) {
            Lane old = new Lane(reused, d, QuantSpec.of(Precision.F32), 8);
            fill(old, new Random(1), 64, token, block);
            old.clear();
            assertEquals(0, reused.bytesInUse());
            Lane a = new Lane(reused, d, QuantSpec.of(Precision.F32), 8), b = new Lane(fresh, d, QuantSpec.of(Precision.F32), 8);
            fill(a, new Random(2), 40, token, block);
            fill(b, new Random(2), 40, token, block);
            assertTrue(reused.pagesReused() > 0, "the second lane reused pages");
            float[] x = new float[d], y = new float[d];
            for (int i = 0; i < 40; i++) {
                for (Lane.Part part : Lane.Part.values()) {
                    a.read(i, part, x, 0);
                    b.read(i, part, y, 0);
                    assertArrayEquals(y, x, "entry " + i + " " + part);
                }
            }
        }
    }

    /** {@code n} entries of random rows; every third entry's values per token, and keys in blocks of 8 per channel. */
    private static void fill(Lane lane, Random r, int n, QuantSpec token, QuantSpec block) {
        int d = lane.headDim();
        float[] k = new float[d], v = new float[d];
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < d; c++) {
                k[c] = (float) r.nextGaussian();
                v[c] = (float) r.nextGaussian() * 100;
            }
            lane.append(i, i, k, 0, v, 0);
        }
        for (int i = 0; i < n; i += 3) lane.restore(i, Lane.Part.VALUES, token);
        for (int b = 0; (b + 1) * 8 <= n / 2; b++) lane.packBlock(new int[] {8 * b, 8 * b + 1, 8 * b + 2, 8 * b + 3, 8 * b + 4, 8 * b + 5, 8 * b + 6, 8 * b + 7}, Lane.Part.KEYS, block);
    }

    @Test
    void aStandingStoresPrefixFollowsTheWindow() {
        int d = 8, window = 5;
        QuantSpec int2 = new QuantSpec(Precision.INT2, QuantSpec.Axis.TOKEN, d);
        try (PagePool pool = new PagePool()) {
            Lane lane = new Lane(pool, d, QuantSpec.of(Precision.F32), 8);
            float[] row = new float[d];
            for (int step = 0; step < 60; step++) {
                lane.append(step, step, row, 0, row, 0);
                if (lane.size() > window) lane.restore(lane.size() - window - 1, Lane.Part.VALUES, int2);
                // the oldest leaves every third step, a middle entry every seventh
                BitSet keep = new BitSet();
                keep.set(0, lane.size());
                if (step % 3 == 2) keep.clear(0);
                if (step % 7 == 6 && lane.size() > 2) keep.clear(lane.size() / 2);
                lane.retain(keep);
                int leading = 0;
                while (leading < lane.size() && lane.spec(leading, Lane.Part.VALUES).precision() == Precision.INT2) leading++;
                assertTrue(leading >= lane.size() - window - 1, "step " + step);
                assertEquals(leading, lane.prefixAt(Lane.Part.VALUES, Precision.INT2), "step " + step);
                assertEquals(0, lane.prefixAt(Lane.Part.KEYS, Precision.INT2), "step " + step);
            }
            // an entry at another precision cuts the prefix where it is
            lane.restore(3, Lane.Part.VALUES, QuantSpec.of(Precision.F16));
            assertEquals(3, lane.prefixAt(Lane.Part.VALUES, Precision.INT2));
            lane.clear();
            assertEquals(0, lane.prefixAt(Lane.Part.VALUES, Precision.INT2));
        }
    }

    @Test
    void theRowsVersionMovesWhenARowChangesInPlaceAndOnlyThen() {
        int d = 8;
        try (PagePool pool = new PagePool()) {
            Lane lane = new Lane(pool, d, QuantSpec.of(Precision.F32), 8);
            float[] row = new float[d];
            for (int i = 0; i < 8; i++) lane.append(i, i, row, 0, row, 0);
            long v = lane.rowsVersion();
            lane.read(2, Lane.Part.KEYS, row, 0);
            lane.restore(2, Lane.Part.KEYS, QuantSpec.of(Precision.F32));
            BitSet keep = new BitSet();
            keep.set(1, 8);
            lane.retain(keep);
            assertEquals(v, lane.rowsVersion(), "reads, a restore to the same format and an eviction change no row");
            lane.restore(2, Lane.Part.VALUES, QuantSpec.of(Precision.F16));
            assertNotEquals(v, v = lane.rowsVersion(), "restore");
            lane.packBlock(new int[] {0, 1, 2, 3}, Lane.Part.KEYS, new QuantSpec(Precision.INT2, QuantSpec.Axis.CHANNEL, 4));
            assertNotEquals(v, v = lane.rowsVersion(), "packBlock");
            lane.overwrite(5, Lane.Part.VALUES, row, 0);
            assertNotEquals(v, lane.rowsVersion(), "overwrite");
        }
    }

    @Test
    void perFormatCountsFollowEveryChange() {
        int d = 16;
        Random r = new Random(4);
        try (PagePool pool = new PagePool()) {
            Lane lane = new Lane(pool, d, QuantSpec.of(Precision.F32), 8);
            float[] k = new float[d], v = new float[d];
            int next = 0;
            for (int round = 0; round < 400; round++) {
                for (int c = 0; c < d; c++) {
                    k[c] = (float) r.nextGaussian();
                    v[c] = (float) r.nextGaussian();
                }
                int op = r.nextInt(10);
                int n = lane.size();
                if (op < 4 || n < 12) {
                    lane.append(next++, round, k, 0, v, 0);
                } else if (op < 6) {
                    Precision p = r.nextBoolean() ? Precision.F16 : Precision.INT4;
                    lane.restore(r.nextInt(n), r.nextBoolean() ? Lane.Part.KEYS : Lane.Part.VALUES,
                            p.isInteger() ? new QuantSpec(p, QuantSpec.Axis.TOKEN, d) : QuantSpec.of(p));
                } else if (op < 7) {
                    int from = r.nextInt(n - 8);
                    int[] block = new int[8];
                    for (int i = 0; i < 8; i++) block[i] = from + i;
                    lane.packBlock(block, Lane.Part.KEYS, new QuantSpec(Precision.INT2, QuantSpec.Axis.CHANNEL, 8));
                } else if (op < 8 && !lane.isCompensation(n - 1)) {
                    lane.appendCompensation(round, k, v, 1);
                } else if (op < 9) {
                    // a standing store: all but the last few values at int4
                    for (int i = 0; i < n - 4; i++) if (!lane.isCompensation(i)) lane.restore(i, Lane.Part.VALUES, new QuantSpec(Precision.INT4, QuantSpec.Axis.TOKEN, d));
                } else {
                    BitSet keep = new BitSet();
                    keep.set(0, n);
                    for (int i = 0; i < 1 + r.nextInt(3); i++) keep.clear(r.nextInt(n));
                    lane.retain(keep);
                }
                for (Lane.Part part : Lane.Part.values()) {
                    for (Precision p : Precision.values()) {
                        int want = 0;
                        for (int i = 0; i < lane.size(); i++) if (lane.spec(i, part).precision() == p) want++;
                        assertEquals(want, lane.countAt(part, p), "round " + round + ": " + part + " at " + p);
                        int prefix = lane.prefixAt(part, p);
                        for (int i = 0; i < prefix; i++) {
                            assertTrue(!lane.isCompensation(i) && lane.spec(i, part).precision() == p, "round " + round + ": " + part + " prefix " + prefix + " at " + p + ", entry " + i);
                        }
                    }
                }
            }
            lane.clear();
            assertEquals(0, lane.countAt(Lane.Part.KEYS, Precision.F32));
        }
    }
}
