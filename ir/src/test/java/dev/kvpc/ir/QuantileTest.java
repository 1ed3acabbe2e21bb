package dev.kvpc.ir;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link Op.Quantile#of}: linear interpolation between order statistics, over the values that are not NaN. */
class QuantileTest {
    @Test
    void interpolatesBetweenOrderStatistics() {
        assertEquals(2.5, Op.Quantile.of(new double[] {4, 1, 3, 2}, 0.5));
        assertEquals(1.0, Op.Quantile.of(new double[] {4, 1, 3, 2}, 0.0));
        assertEquals(4.0, Op.Quantile.of(new double[] {4, 1, 3, 2}, 1.0));
        assertEquals(4.0, Op.Quantile.of(new double[] {4, 1, 3, 2}, 7.0), "p is clamped to [0, 1]");
        assertEquals(1.75, Op.Quantile.of(new double[] {4, 1, 3, 2}, 0.25));
    }

    /** What {@code x within S} leaves out reads as NaN: those entries do not count. */
    @Test
    void leavesOutNaN() {
        double nan = Double.NaN;
        assertEquals(2.5, Op.Quantile.of(new double[] {nan, 4, nan, 1, 3, nan, 2}, 0.5));
        assertEquals(4.0, Op.Quantile.of(new double[] {nan, 4, nan, 1, 3, nan, 2}, 1.0));
        assertEquals(7.0, Op.Quantile.of(new double[] {nan, nan, 7}, 0.3));
        assertTrue(Double.isNaN(Op.Quantile.of(new double[] {nan, nan}, 0.5)), "no values");
        assertTrue(Double.isNaN(Op.Quantile.of(new double[0], 0.5)), "no values");
    }
}
