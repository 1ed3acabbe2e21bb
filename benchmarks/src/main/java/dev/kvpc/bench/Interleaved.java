package dev.kvpc.bench;

import java.util.Arrays;

/**
 * Two sides timed in one JVM in alternating rounds (A first in even rounds, B first in odd ones), so that the
 * machine's slow spells fall on both: the protocol of {@link TemplateAB} and {@link PolicyAB}. On a noisy 2-core
 * machine this separates a few percent where separate JMH forks cannot.
 */
final class Interleaved {
    private Interleaved() {}

    /** One round of one side: its time in microseconds per call. */
    interface Side {
        double time();
    }

    /** Each side's median time per call, and the median and 10th-90th percentiles of the per-round ratio A / B. */
    record Result(double a, double b, double ratio, double ratioLow, double ratioHigh) {}

    static Result run(Side a, Side b, int rounds) {
        double[] ta = new double[rounds], tb = new double[rounds], ratio = new double[rounds];
        for (int round = 0; round < rounds; round++) {
            for (int pass = 0; pass < 2; pass++) {
                if ((pass == 0) == (round % 2 == 0)) ta[round] = a.time();
                else tb[round] = b.time();
            }
            ratio[round] = ta[round] / tb[round];
        }
        Arrays.sort(ta);
        Arrays.sort(tb);
        Arrays.sort(ratio);
        return new Result(ta[rounds / 2], tb[rounds / 2], ratio[rounds / 2], ratio[rounds / 10], ratio[rounds * 9 / 10]);
    }
}
