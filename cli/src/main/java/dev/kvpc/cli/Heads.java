package dev.kvpc.cli;

import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.examples.llama.LlamaEngine;
import dev.kvpc.embed.Kvpc;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;

import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * Scores each (layer, KV head) of a model for the tables DuoAttention and RazorAttention read ({@code kvpc heads}).
 * The probes are KVP policies: they observe the prompt's queries and keep, per entry, the attention it received
 * where a score wants it; the scores are read from the lanes after one prefill step.
 *
 * <ul>
 *   <li><b>copy</b> (RazorAttention's retrieval heads): a random token sequence of {@code period} tokens, then the
 *   same again. A query of the second copy at position p attends to the earlier copy of its token (p - period: an
 *   echo head) or to the token after it (p - period + 1: an induction head); the score is the mean attention a
 *   second-copy query head puts on the two.</li>
 *   <li><b>needle</b> (DuoAttention's retrieval gates): pass-key documents of the trained context; the score is the
 *   mean share of the question's attention (each of its tokens, each query head) on the statement of the key.</li>
 *   <li><b>channels</b> (Double Sparsity's outlier channels): on the same documents, each channel's mean magnitude in
 *   the logits, {@code |q_c| * |k_c|} averaged over every (query head, key) pair of the prompt, which is
 *   {@code mean(|q_c|) * mean(|k_c|)}; the top share of each lane's channels are marked.</li>
 * </ul>
 */
final class Heads {
    private Heads() {}

    /** The probes, one policy each; a state read by a handler that never fires is kept, not removed as dead. */
    static final String PROBES = """
            /// Per entry: the attention the second copy's queries put on their token's earlier copy and the token after it.
            policy copy_probe(period: int, first: int) {
                observe all queries at prefill
                state copy: f32 per token = 0
                on prefill {
                    let second = qpos >= first + period
                    copy = sum(attn * (second && (pos == qpos - period || pos == qpos - period + 1) ? 1.0 : 0.0), over: query, group)
                }
                on overflow(1000000000) { keep top(copy, 1000000000) }
            }

            /// Per entry: the attention the last `window` queries (the question) put on it.
            policy needle_probe(window: int) {
                observe last(window) queries at prefill
                state mass: f32 per token = 0
                on prefill { mass = sum(attn, over: query, group) }
                on overflow(1000000000) { keep top(mass, 1000000000) }
            }

            /// Every entry holds the lane's row: each channel's |q_c| |k_c| averaged over the (query head, key) pairs.
            policy channel_probe() {
                observe all queries at prefill
                state magnitude: f32[channel] per token = 0
                on prefill { magnitude = mean(abs(q), over: query, group) * mean(abs(k), over: token) }
                on overflow(1000000000) { keep top(sum(magnitude, over: channel), 1000000000) }
            }
            """;

    /**
     * Per (layer, KV head): the copy score and the needle score, each a mean attention share in [0, 1], and each
     * channel's mean magnitude in the logits ({@code channels[layer][head][channel]}).
     */
    record Scores(double[][] copy, double[][] needle, double[][][] channels, int copySamples, int needleSamples, int period, int context,
                  double copyUniform) {
        /** The highest copy score. */
        double bestCopy() {
            double b = 0;
            for (double[] row : copy) for (double x : row) b = Math.max(b, x);
            return b;
        }
    }

    /** Progress after each probe document (for a progress line). */
    interface Tick {
        void done(int finished, int total);
    }

    static Scores probe(Eval.Model m, int samples, int period, long seed, Tick tick) {
        int layers = m.weights().layers, kvHeads = m.weights().kvHeads, group = m.weights().heads / kvHeads;
        int context = m.trainedContext();
        int bos = m.tokenizer().bos();
        int lead = bos >= 0 ? 1 : 0;
        period = Math.max(2, Math.min(period, (context - lead) / 2));
        Random rnd = new Random(seed);
        double[][] copy = new double[layers][kvHeads], needle = new double[layers][kvHeads];
        double[][][] channels = new double[layers][kvHeads][m.weights().headSize];
        int total = 3 * samples, finished = 0;
        PolicyRunner copyProbe = runner(m, "copy_probe", Map.of("period", (long) period, "first", (long) lead));
        for (int s = 0; s < samples; s++) {
            int[] ids = new int[lead + 2 * period];
            if (lead > 0) ids[0] = bos;
            for (int i = 0; i < period; i++) {
                // any token but the special ones at the start of the vocabulary
                ids[lead + i] = 3 + rnd.nextInt(m.weights().vocab - 3);
                ids[lead + period + i] = ids[lead + i];
            }
            double[][] got = run(m, copyProbe, ids, "copy", p -> true);
            // each second-copy query head gives at most 1 (its whole attention on the two entries)
            for (int l = 0; l < layers; l++) for (int h = 0; h < kvHeads; h++) copy[l][h] += got[l][h] / ((double) period * group * samples);
            tick.done(++finished, total);
        }
        List<String> fillers = Eval.fillers(m.text());
        int window = m.encode().apply(" What is the pass key? The pass key is").length;
        PolicyRunner needleProbe = runner(m, "needle_probe", Map.of("window", (long) window));
        PolicyRunner channelProbe = runner(m, "channel_probe", Map.of());
        for (int s = 0; s < samples; s++) {
            double depth = (s + 0.5) / samples;
            Eval.Passkey doc = Eval.passkey(m.encode(), bos, rnd, fillers, context, depth);
            int from = doc.needleAt(), to = doc.needleAt() + doc.needleLength();
            double[][] got = run(m, needleProbe, doc.prompt(), "mass", p -> p >= from && p < to);
            for (int l = 0; l < layers; l++) for (int h = 0; h < kvHeads; h++) needle[l][h] += got[l][h] / ((double) window * group * samples);
            tick.done(++finished, total);
            double[][][] row = firstRows(m, channelProbe, doc.prompt(), "magnitude");
            for (int l = 0; l < layers; l++) {
                for (int h = 0; h < kvHeads; h++) for (int c = 0; c < row[l][h].length; c++) channels[l][h][c] += row[l][h][c] / samples;
            }
            tick.done(++finished, total);
        }
        // what a head attending evenly to every entry it sees would score: 2 of the p + 1 entries a query at p sees
        double uniform = 0;
        for (int i = 0; i < period; i++) uniform += 2.0 / (lead + period + i + 1) / period;
        return new Scores(copy, needle, channels, samples, samples, period, context, uniform);
    }

    private static PolicyRunner runner(Eval.Model m, String root, Map<String, Object> params) {
        return runner(new ModelShape(m.name(), m.weights().layers, m.weights().heads, m.weights().kvHeads, m.weights().headSize), root, params);
    }

    /** A probe policy ({@link #PROBES}) compiled for a model shape (by the JVM backend where it is present). */
    static PolicyRunner runner(ModelShape shape, String root, Map<String, Object> params) {
        Frontend.Result r = Frontend.checkText("heads.kvp", PROBES, null, shape);
        if (!r.ok()) throw new IllegalStateException("the head probes do not check: " + r.diagnostics().all());
        return Kvpc.runner(Compilation.optimise(r.program(), root, params, Pipeline.Options.DEFAULT, (a, b) -> { }));
    }

    /** Runs {@code ids} as one prefill step; per lane, the sum of {@code state} over the entries whose position counts. */
    private static double[][] run(Eval.Model m, PolicyRunner runner, int[] ids, String state, java.util.function.IntPredicate counts) {
        double[][] out = new double[m.weights().layers][m.weights().kvHeads];
        prefill(m, runner, ids, (l, h, lane) -> {
            float[] v = lane.state(state);
            for (int i = 0; i < lane.size(); i++) if (counts.test(lane.position(i))) out[l][h] += v[i];
        });
        return out;
    }

    /** Runs {@code ids} as one prefill step; per lane, the first entry's row of the per-token state {@code state}. */
    private static double[][][] firstRows(Eval.Model m, PolicyRunner runner, int[] ids, String state) {
        int d = m.weights().headSize;
        double[][][] out = new double[m.weights().layers][m.weights().kvHeads][d];
        prefill(m, runner, ids, (l, h, lane) -> {
            float[] v = lane.state(state);
            for (int c = 0; c < d; c++) out[l][h][c] = v[c];
        });
        return out;
    }

    /** What a probe reads of one lane once the prompt is in. */
    private interface LaneReader {
        void read(int layer, int kvHead, Lane lane);
    }

    /** Runs {@code ids} through the model as one prefill step under {@code runner}, then reads every lane. */
    private static void prefill(Eval.Model m, PolicyRunner runner, int[] ids, LaneReader reader) {
        try (PagePool pool = new PagePool(); LlamaEngine e = new LlamaEngine(m.weights(), runner, pool)) {
            e.prefill(ids, 0, ids.length);
            for (int l = 0; l < m.weights().layers; l++) for (int h = 0; h < m.weights().kvHeads; h++) reader.read(l, h, e.sequence().lane(l, h));
        }
    }

    /** How many of {@code d} channels Double Sparsity's table marks per lane: the {@code share} of them, at least one. */
    static int markedCount(double share, int d) {
        return Math.max(1, (int) Math.round(share * d));
    }

    /**
     * Double Sparsity's channel table: per (layer, KV head), 1 for the {@code share} of channels (at least one) with
     * the largest magnitude, 0 for the others; one row per lane, layer-major, as a channel table is read.
     */
    static double[][] markedChannels(double[][][] magnitude, double share) {
        List<double[]> rows = new java.util.ArrayList<>();
        for (double[][] layer : magnitude) {
            for (double[] lane : layer) {
                int d = lane.length, keep = markedCount(share, d);
                Integer[] order = new Integer[d];
                for (int c = 0; c < d; c++) order[c] = c;
                java.util.Arrays.sort(order, (a, b) -> {
                    int cmp = Double.compare(lane[b], lane[a]);
                    return cmp != 0 ? cmp : Integer.compare(a, b);
                });
                double[] row = new double[d];
                for (int i = 0; i < keep; i++) row[order[i]] = 1;
                rows.add(row);
            }
        }
        return rows.toArray(double[][]::new);
    }

    /**
     * RazorAttention's table: the copy scores of the {@code share} highest-scoring lanes (at least one), 0 elsewhere,
     * so that {@code razor}'s {@code retrieval > 0} keeps exactly those lanes' full caches.
     */
    static double[][] retrievalHeads(double[][] copy, double share) {
        int layers = copy.length, kvHeads = copy[0].length, n = layers * kvHeads;
        int keep = Math.max(1, (int) Math.round(share * n));
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) order[i] = i;
        java.util.Arrays.sort(order, (a, b) -> {
            int c = Double.compare(copy[b / kvHeads][b % kvHeads], copy[a / kvHeads][a % kvHeads]);
            return c != 0 ? c : Integer.compare(a, b);
        });
        double[][] out = new double[layers][kvHeads];
        for (int i = 0; i < keep; i++) out[order[i] / kvHeads][order[i] % kvHeads] = Math.max(1e-6, copy[order[i] / kvHeads][order[i] % kvHeads]);
        return out;
    }

    /** A table file: comment lines, then one row per layer of tab-separated values. */
    static String tsv(List<String> comments, double[][] rows) {
        StringBuilder sb = new StringBuilder();
        for (String c : comments) sb.append("# ").append(c).append('\n');
        for (double[] row : rows) {
            for (int h = 0; h < row.length; h++) sb.append(h > 0 ? "\t" : "").append(String.format(Locale.ROOT, "%.6f", row[h]));
            sb.append('\n');
        }
        return sb.toString();
    }
}
