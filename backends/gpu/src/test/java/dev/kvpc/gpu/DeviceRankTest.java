package dev.kvpc.gpu;

import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.gpu.policy.DeviceRank;
import dev.kvpc.runtime.exec.Select;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Top-k on the device against the ranking rule every other backend calls ({@link Select#rank}): scores drawn from a
 * few values so that ties are everywhere (0.0 and -0.0, infinities, NaN), 1-3 heads, 1-300 entries, counts from 0
 * past the number of candidates (a third of them leaving out only a few), top and bottom, by the bitonic network and
 * by dropping the few worst: the same chosen entries, head by head.
 */
class DeviceRankTest {
    static final double[] VALUES = {0.0, -0.0, 1.0, -1.0, 2.5, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, Double.NaN};

    @Test
    void choosesWhatSelectChooses() {
        Random rnd = new Random(7);
        List<String> wrong = new ArrayList<>();
        int cases = 0;
        try (ClContext cl = Devices.context()) {
            DeviceRank rank = new DeviceRank(cl);
            for (int c = 0; c < 120; c++) {
                int heads = 1 + rnd.nextInt(3), len = 1 + rnd.nextInt(c < 60 ? 20 : 300);
                boolean top = rnd.nextBoolean();
                // a third of the cases leave out a few (the JVM's and the device's few-worst path)
                long count = c % 3 == 0 ? Math.max(0, heads * len - rnd.nextInt(12)) : rnd.nextInt(heads * len + 3);
                double[][] score = new double[heads][len];
                double[] flat = new double[heads * len];
                for (int h = 0; h < heads; h++) {
                    for (int t = 0; t < len; t++) {
                        score[h][t] = rnd.nextInt(4) == 0 ? rnd.nextGaussian() : VALUES[rnd.nextInt(VALUES.length)];
                        flat[h * len + t] = score[h][t];
                    }
                }
                BitSet[] expected = Select.rank(score, top, count, -1, null);
                ClContext.Buffer s = cl.buffer(8L * flat.length, "scores"), marks = cl.buffer(8L * flat.length, "marks");
                s.write(flat);
                marks.write(new double[flat.length]);
                // half the cases say how many candidates there are (so that few left out are dropped one by one)
                int offered = 0;
                for (double v : flat) if (!Double.isNaN(v)) offered++;
                rank.rank(cl, s, heads, len, top, count, marks, c % 2 == 0 ? offered : -1);
                double[] got = new double[flat.length];
                marks.read(got);
                s.free();
                marks.free();
                for (int h = 0; h < heads; h++) {
                    BitSet g = new BitSet();
                    for (int t = 0; t < len; t++) if (got[h * len + t] != 0) g.set(t);
                    if (!g.equals(expected[h])) {
                        wrong.add("case " + c + " head " + h + " (" + heads + "x" + len + ", " + (top ? "top " : "bottom ") + count + "): device " + g
                                + ", Select " + expected[h]);
                    }
                }
                cases++;
            }
        }
        assertEquals(120, cases);
        assertEquals(List.of(), wrong);
    }
}
