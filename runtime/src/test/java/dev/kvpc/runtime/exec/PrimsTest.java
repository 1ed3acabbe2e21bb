package dev.kvpc.runtime.exec;

import org.junit.jupiter.api.Test;

import java.util.BitSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The primitives' rules on small hand-computed cases. */
class PrimsTest {
    private static BitSet bits(int... i) {
        BitSet b = new BitSet();
        for (int x : i) b.set(x);
        return b;
    }

    @Test
    void rankIsTopsOrderWithTiesToTheLaterEntry() {
        // scores 5, 1, 5, NaN, 3: the two 5s tie and the later (index 2) ranks first; NaN has no rank
        double[][] r = Prims.rank(new double[][] {{5, 1, 5, Double.NaN, 3}}, new int[] {-1});
        assertArrayEquals(new double[] {1, 3, 0, Double.NaN, 2}, r[0]);
    }

    @Test
    void rankSkipsTheCompensationEntryAndSpansTheLanesGiven() {
        // lane 0: 2, 9 (its compensation entry at 1, which never ranks); lane 1: 4, 2. Order: 4 (lane 1, entry 0),
        // then the two 2s, the later entry first: (1, 1), (0, 0)
        double[][] r = Prims.rank(new double[][] {{2, 9}, {4, 2}}, new int[] {1, -1});
        assertArrayEquals(new double[] {2, Double.NaN}, r[0]);
        assertArrayEquals(new double[] {0, 1}, r[1]);
    }

    @Test
    void strataKeepTheBestOfEachEqualCut() {
        // 9 candidates, scores 0..8 at indices 0..8: ranks 0..8 are indices 8..0; 3 strata start at ranks 0, 3, 6
        double[] s = {0, 1, 2, 3, 4, 5, 6, 7, 8};
        assertEquals(bits(8, 5, 2), Prims.strata(new double[][] {s}, new int[] {-1}, 3)[0]);
        // 4 strata of 9 start at ranks 0, 2 (9/4), 4 (18/4), 6 (27/4)
        assertEquals(bits(8, 6, 4, 2), Prims.strata(new double[][] {s}, new int[] {-1}, 4)[0]);
        // as many strata as candidates or more: every candidate; none for n <= 0
        assertEquals(bits(0, 1, 2, 3, 4, 5, 6, 7, 8), Prims.strata(new double[][] {s}, new int[] {-1}, 20)[0]);
        assertTrue(Prims.strata(new double[][] {s}, new int[] {-1}, 0)[0].isEmpty());
        // NaN entries are not candidates: 4 candidates (indices 1, 3, 5, 7), 2 strata start at ranks 0 and 2
        double[] half = {Double.NaN, 1, Double.NaN, 3, Double.NaN, 5, Double.NaN, 7};
        assertEquals(bits(7, 3), Prims.strata(new double[][] {half}, new int[] {-1}, 2)[0]);
    }

    @Test
    void countAndMemberReadOnlyTheLanesEntries() {
        BitSet[] set = {bits(0, 2, 7)};
        assertEquals(2, Prims.count(set, new int[] {5}));
        assertEquals(4, Prims.count(set, new int[] {5, 3}), "a set shared by two lanes counts in each");
        assertArrayEquals(new double[] {1, 0, 1, 0, 0}, Prims.member(set, new int[] {5})[0]);
    }

    @Test
    void randomNumbersAreFixedByTheirFiveInputsAndLieInTheOpenInterval() {
        double u = Prims.uniform(1, 2, 3, 4, 5);
        assertEquals(u, Prims.uniform(1, 2, 3, 4, 5));
        assertNotEquals(u, Prims.uniform(2, 2, 3, 4, 5), "seed");
        assertNotEquals(u, Prims.uniform(1, 3, 3, 4, 5), "step");
        assertNotEquals(u, Prims.uniform(1, 2, 4, 4, 5), "layer");
        assertNotEquals(u, Prims.uniform(1, 2, 3, 5, 5), "head");
        assertNotEquals(u, Prims.uniform(1, 2, 3, 4, 6), "position");
        assertEquals(-Math.log(-Math.log(u)), Prims.gumbel(1, 2, 3, 4, 5));
        // 100,000 draws: in (0, 1), mean 1/2 and variance 1/12 within a few standard errors
        double sum = 0, sq = 0;
        int n = 100_000;
        for (int i = 0; i < n; i++) {
            double x = Prims.uniform(7, 0, 0, 0, i);
            assertTrue(x > 0 && x < 1, "draw " + i + " is " + x);
            sum += x;
            sq += x * x;
        }
        double mean = sum / n, var = sq / n - mean * mean;
        assertEquals(0.5, mean, 4 * Math.sqrt(1.0 / 12 / n));
        assertEquals(1.0 / 12, var, 0.002);
        // the Gumbel draws' mean is the Euler-Mascheroni constant
        double g = 0;
        for (int i = 0; i < n; i++) g += Prims.gumbel(7, 0, 0, 0, i);
        assertEquals(0.5772156649, g / n, 4 * Math.sqrt(Math.PI * Math.PI / 6 / n));
    }

    @Test
    void maxSimilarityComparesWithTheOtherEntriesOfTheSet() {
        // rows (1, 0), (2, 0), (0, 3), (1, 1), (0, 0) with two channels
        double[][] x = {{1, 0, 2, 0, 0, 3, 1, 1, 0, 0}};
        BitSet[] set = {bits(0, 2)};
        double r = Math.sqrt(0.5);
        // entry 0 compares with 2 only (not itself): cos 0; entry 2 with 0: 0; 1 with 0: 1; 3: max(r, r); 4: zero row
        assertArrayEquals(new double[] {0, 1, 0, r, 0}, Prims.maxSimilarity(true, x, 2, set, null)[0], 1e-15);
        // dot: 0.(0,3)=0; 1.(1,0)=2 vs 1.(0,3)=0; 2: 0; 3: max(1, 3); 4: 0
        assertArrayEquals(new double[] {0, 2, 0, 3, 0}, Prims.maxSimilarity(false, x, 2, set, null)[0], 1e-15);
        // a set with no other entry: -inf
        assertArrayEquals(new double[] {Double.NEGATIVE_INFINITY, 1, 0, r, 0}, Prims.maxSimilarity(true, x, 2, new BitSet[] {bits(0)}, null)[0], 1e-15);
        // only the rows asked for (entries 1 and 3) are computed; the others are NaN
        assertArrayEquals(new double[] {Double.NaN, 1, Double.NaN, r, Double.NaN}, Prims.maxSimilarity(true, x, 2, set, new BitSet[] {bits(1, 3)})[0], 1e-15);
    }
}
