package dev.kvpc.runtime.trace;

/**
 * Causal softmax attention computed from scratch in the tests, so that claims about planted structure are
 * checked against the definition, not against the generator: {@code attn[p][j] = softmax_j(q_p . k_j / sqrt(d))}
 * over keys {@code j <= p}, for query head {@code head} and the KV head it reads.
 */
final class Attention {
    private final Trace trace;
    private final double[][][] keys;    // [lane][position][channel], lane = layer * kvHeads + kvHead
    private final double[][][] queries; // [layer * heads + head][position][channel]

    Attention(Trace trace) {
        this.trace = trace;
        TraceShape s = trace.shape();
        int n = trace.length();
        keys = new double[s.layers() * s.kvHeads()][n][];
        queries = new double[s.layers() * s.heads()][n][];
        for (int layer = 0; layer < s.layers(); layer++) {
            for (int p = 0; p < n; p++) {
                for (int g = 0; g < s.kvHeads(); g++) {
                    keys[layer * s.kvHeads() + g][p] = toDouble(trace.key(layer, p, g));
                }
                for (int h = 0; h < s.heads(); h++) {
                    queries[layer * s.heads() + h][p] = toDouble(trace.query(layer, p, h));
                }
            }
        }
    }

    private static double[] toDouble(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }

    /** Logits of the query at {@code position} over keys {@code 0..position}. */
    double[] logits(int layer, int head, int position) {
        TraceShape s = trace.shape();
        double[] q = queries[layer * s.heads() + head][position];
        double[][] k = keys[layer * s.kvHeads() + head / (s.heads() / s.kvHeads())];
        double scale = 1 / Math.sqrt(s.headDim());
        double[] out = new double[position + 1];
        for (int j = 0; j <= position; j++) {
            double dot = 0;
            for (int c = 0; c < q.length; c++) {
                dot += q[c] * k[j][c];
            }
            out[j] = dot * scale;
        }
        return out;
    }

    /** Attention probabilities of the query at {@code position} over keys {@code 0..position}. */
    double[] probabilities(int layer, int head, int position) {
        double[] z = logits(layer, head, position);
        double max = Double.NEGATIVE_INFINITY;
        for (double x : z) {
            max = Math.max(max, x);
        }
        double sum = 0;
        for (int j = 0; j < z.length; j++) {
            z[j] = Math.exp(z[j] - max);
            sum += z[j];
        }
        for (int j = 0; j < z.length; j++) {
            z[j] /= sum;
        }
        return z;
    }

    /**
     * Attention each key position of a lane receives, summed over the lane's query heads and over every query
     * position from {@code fromQuery} on (what H2O accumulates).
     */
    double[] accumulated(int layer, int kvHead, int fromQuery) {
        TraceShape s = trace.shape();
        double[] acc = new double[trace.length()];
        for (int h = kvHead * s.group(); h < (kvHead + 1) * s.group(); h++) {
            for (int p = fromQuery; p < trace.length(); p++) {
                double[] a = probabilities(layer, h, p);
                for (int j = 0; j < a.length; j++) {
                    acc[j] += a[j];
                }
            }
        }
        return acc;
    }

    static int argmax(double[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) {
            if (x[i] > x[best]) {
                best = i;
            }
        }
        return best;
    }
}
