package dev.kvpc.runtime.exec;

import dev.kvpc.ir.Runs;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;
import org.junit.jupiter.api.Test;

import java.util.BitSet;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * A store's targets (the covered entries not yet at its precision) are the same whether the covered entries are given
 * as a run or as bits: lanes with entries at mixed precisions (per token and per-channel blocks), with and without a
 * compensation entry, every run; and, for sets of several runs, the same as a plain scan. The count those scans make
 * of a chain table answers the same with the Vector API as without.
 */
class NotAtTest {
    @Test
    void runAndBitsGiveTheSameTargets() {
        int d = 8;
        Random r = new Random(5);
        Precision int2 = Precision.ofIntBits(2);
        for (int trial = 0; trial < 60; trial++) {
            try (PagePool pool = new PagePool()) {
                Lane lane = new Lane(pool, d, QuantSpec.of(Precision.F32), 16);
                // the later trials: longer lanes, mostly stored as a standing store leaves them (a long prefix at
                // int2, then a window), so that both the direct reading above the prefix and the count are taken
                boolean standing = trial >= 40;
                int n = 1 + r.nextInt(standing ? 200 : 60);
                float[] row = new float[d];
                for (int i = 0; i < n; i++) {
                    for (int c = 0; c < d; c++) row[c] = (float) r.nextGaussian();
                    lane.append(i, 0, row, 0, row, 0);
                }
                int window = r.nextInt(100);
                for (int i = 0; i < n; i++) {
                    if (standing ? i < n - window && r.nextInt(50) > 0 : r.nextInt(3) == 0) lane.restore(i, Lane.Part.VALUES, new QuantSpec(int2, QuantSpec.Axis.TOKEN, d));
                }
                if (standing) lane.prefixAt(Lane.Part.VALUES, int2);
                if (n >= 4 && r.nextBoolean()) {
                    int start = r.nextInt(n - 3);
                    lane.packBlock(new int[] {start, start + 1, start + 2, start + 3}, Lane.Part.KEYS, new QuantSpec(int2, QuantSpec.Axis.CHANNEL, 4));
                }
                if (r.nextBoolean()) lane.appendCompensation(0, row, row, 1);
                int size = lane.size();
                for (int from = 0; from <= size; from++) {
                    for (int to = from; to <= size + 1; to++) {
                        BitSet bits = new BitSet();
                        bits.set(from, to);
                        for (Lane.Part part : Lane.Part.values()) {
                            assertArrayEquals(LaneView.notAt(lane, bits, part, int2), LaneView.notAt(lane, Runs.of(from, to), part, int2),
                                    "trial " + trial + " [" + from + "," + to + ") " + part);
                        }
                    }
                }
                // any set of entries, in several runs, against a plain scan
                for (int k = 0; k < 20; k++) {
                    BitSet bits = new BitSet();
                    for (int i = 0; i <= size; i++) if (r.nextInt(3) > 0) bits.set(i);
                    for (Lane.Part part : Lane.Part.values()) {
                        assertArrayEquals(scan(lane, bits, part, int2), LaneView.notAt(lane, bits, part, int2), "trial " + trial + " " + bits + " " + part);
                    }
                }
            }
        }
    }

    @Test
    void chainCountsAgreeWithAndWithoutTheVectorApi() {
        org.junit.jupiter.api.Assertions.assertInstanceOf(VectorScreens.class, Screens.BEST, "the tests run with the Vector API");
        Random r = new Random(9);
        for (int trial = 0; trial < 2000; trial++) {
            int chains = 1 + r.nextInt(5), entries = r.nextInt(100);
            int[] table = new int[2 * entries + r.nextInt(8)];
            for (int i = 0; i < table.length; i++) table[i] = r.nextInt(chains);
            boolean[] at = new boolean[chains];
            for (int c = 0; c < chains; c++) at[c] = r.nextInt(3) == 0;
            int from = r.nextInt(entries + 1), to = from + r.nextInt(entries - from + 1), part = r.nextInt(2);
            int plain = 0;
            for (int i = from; i < to; i++) if (at[table[2 * i + part]]) plain++;
            org.junit.jupiter.api.Assertions.assertEquals(plain, Screens.Scalar.INSTANCE.countIn(table, from, to, part, at), "trial " + trial);
            org.junit.jupiter.api.Assertions.assertEquals(plain, VectorScreens.INSTANCE.countIn(table, from, to, part, at), "trial " + trial);
        }
    }

    /** The covered regular entries whose part is not at {@code p}, entry by entry. */
    private static int[] scan(Lane lane, BitSet cov, Lane.Part part, Precision p) {
        int size = lane.size();
        return cov.stream().filter(i -> i < size && !lane.isCompensation(i) && lane.spec(i, part).precision() != p).toArray();
    }
}
