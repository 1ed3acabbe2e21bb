package dev.kvpc.backend.jvm;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The template's division by a multiply and a shift agrees with {@code /} over the whole non-negative int range. */
class DivMagicTest {
    private static void check(int n, int d) {
        assertEquals(n / d, (int) ((n * DecodeTemplates.divMagic(d)) >>> DecodeTemplates.divShift(d)), n + " / " + d);
    }

    @Test
    void agreesWithDivisionForSmallAndLargeDivisors() {
        SplittableRandom r = new SplittableRandom(7);
        int[] divisors = {1, 2, 3, 5, 7, 8, 16, 31, 32, 33, 100, 255, 256, 257, 1000, 4096, 65535, 65537, 1 << 20, (1 << 30) + 1,
            Integer.MAX_VALUE};
        for (int d = 1; d <= 3000; d++) {
            for (int k = 0; k < 40; k++) check(r.nextInt(Integer.MAX_VALUE), d);
            check(Integer.MAX_VALUE, d);
            check(d - 1, d);
            check(d, d);
            long top = (long) (Integer.MAX_VALUE / d) * d;
            check((int) top, d);
            check((int) top - 1, d);
        }
        for (int d : divisors) {
            for (int k = 0; k < 10_000; k++) check(r.nextInt(Integer.MAX_VALUE), d);
            check(0, d);
            check(Integer.MAX_VALUE, d);
            check(Integer.MAX_VALUE - 1, d);
        }
    }

    @Test
    void refusesNonPositiveDivisors() {
        assertThrows(IllegalArgumentException.class, () -> DecodeTemplates.divShift(0));
    }
}
