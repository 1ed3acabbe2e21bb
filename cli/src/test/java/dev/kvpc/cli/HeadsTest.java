package dev.kvpc.cli;

import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.runtime.KvRuntime;
import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.Sequence;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.trace.Trace;
import dev.kvpc.runtime.trace.TraceFeed;
import dev.kvpc.runtime.trace.TraceText;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The copy probe of {@code kvpc heads} on a hand-made trace: one head built as an induction head (each query of the
 * second copy matches the key of the token after its earlier copy) scores about 1 per query; one that attends
 * evenly scores what {@link Heads} states as the even baseline. And RazorAttention's table keeps the top share.
 */
class HeadsTest {
    static final int PERIOD = 8, LEAD = 1, N = LEAD + 2 * PERIOD, D = N;

    /** Keys are one-hot by position; KV head 0's queries in the second copy point at the token after the earlier copy. */
    static Trace trace() throws dev.kvpc.runtime.trace.TraceFormatException {
        StringBuilder sb = new StringBuilder("shape layers=1 heads=2 kv_heads=2 head_dim=" + D + "\nprefill\n");
        for (int t = 0; t < N; t++) {
            double[] k0 = new double[D], k1 = new double[D], q0 = new double[D], q1 = new double[D];
            k0[t] = 1;
            if (t >= LEAD + PERIOD) q0[t - PERIOD + 1] = 40;
            sb.append("  layer 0 token ").append(t).append(" k ").append(row(k0)).append(' ').append(row(k1)).append(" v ")
                    .append(row(new double[D])).append(' ').append(row(new double[D])).append(" q ").append(row(q0)).append(" | ").append(row(q1)).append('\n');
        }
        return TraceText.parse(sb.toString());
    }

    private static String row(double[] x) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < x.length; i++) sb.append(i > 0 ? " " : "").append(x[i] == 0 ? "0" : Double.toString(x[i]));
        return sb.toString();
    }

    @Test
    void anInductionHeadScoresAboutOneAnEvenHeadTheBaseline() throws Exception {
        ModelShape shape = new ModelShape("hand", 1, 2, 2, D);
        var runner = Heads.runner(shape, "copy_probe", Map.of("period", (long) PERIOD, "first", (long) LEAD));
        double[] score = new double[2];
        try (PagePool pool = new PagePool(); Sequence seq = new KvRuntime(new ModelSpec(1, 2, 2, D, Precision.F32), runner, pool, 1).newSequence()) {
            TraceFeed.feed(seq, trace());
            for (int h = 0; h < 2; h++) {
                Lane lane = seq.lane(0, h);
                float[] copy = lane.state("copy");
                for (int i = 0; i < lane.size(); i++) score[h] += copy[i] / PERIOD;
            }
        }
        assertTrue(score[0] > 0.99 && score[0] <= 1.0 + 1e-6, "the induction head scores " + score[0]);
        // the even head: queries at positions LEAD + PERIOD + i see LEAD + PERIOD + i + 1 entries, two of them counted
        double even = 0;
        for (int i = 0; i < PERIOD; i++) even += 2.0 / (LEAD + PERIOD + i + 1) / PERIOD;
        assertEquals(even, score[1], 1e-6, "the even head");
    }

    @Test
    void razorsTableKeepsTheTopShare() {
        double[][] copy = {{0.1, 0.4}, {0.3, 0.2}};
        assertArrayEquals(new double[] {0, 0.4}, Heads.retrievalHeads(copy, 0.5)[0], 0);
        assertArrayEquals(new double[] {0.3, 0}, Heads.retrievalHeads(copy, 0.5)[1], 0);
        // at least one head, whatever the share
        double[][] one = Heads.retrievalHeads(copy, 0.01);
        assertEquals(0.4, one[0][1]);
        assertEquals(0, one[0][0] + one[1][0] + one[1][1]);
    }

    /**
     * The channel probe on a hand-made trace: each lane's entries hold mean(|q_c|) * mean(|k_c|) over the prompt's
     * query heads and keys; Double Sparsity's table marks the largest share of them per lane.
     */
    @Test
    void theChannelProbeMeasuresEachChannelsMagnitude() throws Exception {
        int n = 3, d = 4;
        double[][][] k = new double[2][n][d], q = new double[2][n][d];
        java.util.Random rnd = new java.util.Random(5);
        StringBuilder sb = new StringBuilder("shape layers=1 heads=2 kv_heads=2 head_dim=" + d + "\nprefill\n");
        for (int t = 0; t < n; t++) {
            for (int h = 0; h < 2; h++) {
                for (int c = 0; c < d; c++) {
                    k[h][t][c] = Math.round((rnd.nextDouble() * 4 - 2) * (c + 1)) / 4.0;
                    q[h][t][c] = Math.round((rnd.nextDouble() * 4 - 2) * (d - c)) / 4.0;
                }
            }
            sb.append("  layer 0 token ").append(t).append(" k ").append(row(k[0][t])).append(' ').append(row(k[1][t])).append(" v ")
                    .append(row(new double[d])).append(' ').append(row(new double[d])).append(" q ").append(row(q[0][t])).append(" | ").append(row(q[1][t])).append('\n');
        }
        var runner = Heads.runner(new ModelShape("hand", 1, 2, 2, d), "channel_probe", Map.of());
        double[][][] got = new double[1][2][d];
        try (PagePool pool = new PagePool(); Sequence seq = new KvRuntime(new ModelSpec(1, 2, 2, d, Precision.F32), runner, pool, 1).newSequence()) {
            TraceFeed.feed(seq, TraceText.parse(sb.toString()));
            for (int h = 0; h < 2; h++) {
                float[] m = seq.lane(0, h).state("magnitude");
                for (int c = 0; c < d; c++) {
                    double mq = 0, mk = 0;
                    for (int t = 0; t < n; t++) {
                        mq += Math.abs(q[h][t][c]) / n;
                        mk += Math.abs(k[h][t][c]) / n;
                    }
                    // every entry holds the lane's row
                    for (int i = 0; i < n; i++) assertEquals(mq * mk, m[i * d + c], 1e-6, "head " + h + " channel " + c + " entry " + i);
                    got[0][h][c] = m[c];
                }
            }
        }
        double[][] marks = Heads.markedChannels(got, 0.5);
        assertEquals(2, marks.length);
        for (int h = 0; h < 2; h++) {
            double[] row = got[0][h];
            for (int c = 0; c < d; c++) {
                int larger = 0;
                for (double x : row) if (x > row[c]) larger++;
                assertEquals(larger < 2 ? 1.0 : 0.0, marks[h][c], "head " + h + " channel " + c);
            }
        }
        // at least one channel, whatever the share
        assertEquals(1.0, java.util.Arrays.stream(Heads.markedChannels(got, 0.01)[0]).sum());
    }

    /** The command on the embedded model: two tables of its shape, which duo_attention and razor then read. */
    @Test
    void theCommandWritesTablesThePoliciesRead(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        CliRunner r = CliRunner.run("heads", "--model", CliRunner.root().resolve("models/kvpc-tiny").toString(), "--samples", "1", "--out", dir.toString());
        assertEquals(0, r.code(), r.err());
        for (String t : java.util.List.of("duo_gates.4x2.tsv", "razor_heads.4x2.tsv")) {
            java.util.List<String> rows = java.nio.file.Files.readAllLines(dir.resolve(t)).stream().filter(l -> !l.startsWith("#")).toList();
            assertEquals(4, rows.size(), t);
            for (String row : rows) assertEquals(2, row.split("\t").length, t + ": " + row);
        }
        // the channel table: a row per (layer, KV head) of 16 channels, 4 of them marked
        java.util.List<String> ds = java.nio.file.Files.readAllLines(dir.resolve("ds_channels.4x2.tsv")).stream().filter(l -> !l.startsWith("#")).toList();
        assertEquals(8, ds.size());
        for (String row : ds) assertEquals(4.0, java.util.Arrays.stream(row.split("\t")).mapToDouble(Double::parseDouble).sum(), row);
        CliRunner dsCheck = CliRunner.run("check", "--model", CliRunner.root().resolve("models/kvpc-tiny").toString(),
                "--param", "channels=\"" + dir.resolve("ds_channels.4x2.tsv") + "\"", CliRunner.root().resolve("stdlib-policies/double_sparsity.kvp").toString());
        assertEquals(0, dsCheck.code(), dsCheck.out() + dsCheck.err());
        CliRunner c = CliRunner.run("check", "--model", CliRunner.root().resolve("models/kvpc-tiny").toString(),
                "--param", "gates=\"" + dir.resolve("duo_gates.4x2.tsv") + "\"", CliRunner.root().resolve("stdlib-policies/duo_attention.kvp").toString());
        assertEquals(0, c.code(), c.out() + c.err());
        assertTrue(r.out().contains("layer"), r.out());
    }
}
