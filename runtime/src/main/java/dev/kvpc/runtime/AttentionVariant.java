package dev.kvpc.runtime;

/**
 * An attention variant as the kernel runs it: the logit and the mask of one query-key pair, and the normalisation.
 * Backends compile it from a KVP {@code attention} declaration; null in {@link PolicyRunner#variant()} means standard
 * scaled dot-product attention with a causal mask and softmax.
 */
public interface AttentionVariant {
    /** How a query's logits become the weights of the values: the one rule every backend and the interpreter call. */
    enum Normalize {
        SOFTMAX, SIGMOID, NONE;

        /**
         * The weights of one query's row: for each of the first {@code n} entries that is {@code visible}, from its
         * logit; 0 for the others. Softmax: {@code e^(l - max) / sum} over the visible entries, in double (no weight
         * when none is visible); sigmoid: {@code 1 / (1 + e^-l)}; none: the logit itself. {@code weights} may be
         * {@code logits}.
         */
        public void apply(double[] logits, boolean[] visible, double[] weights, int n) {
            switch (this) {
                case SOFTMAX -> {
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < n; j++) if (visible[j]) max = Math.max(max, logits[j]);
                    double sum = 0;
                    for (int j = 0; j < n; j++) {
                        weights[j] = visible[j] ? Math.exp(logits[j] - max) : 0;
                        sum += weights[j];
                    }
                    if (sum > 0) for (int j = 0; j < n; j++) weights[j] /= sum;
                }
                case SIGMOID -> {
                    for (int j = 0; j < n; j++) weights[j] = visible[j] ? 1 / (1 + Math.exp(-logits[j])) : 0;
                }
                case NONE -> {
                    for (int j = 0; j < n; j++) weights[j] = visible[j] ? logits[j] : 0;
                }
            }
        }
    }

    /**
     * A row of logits as a policy reads them ({@code logits}): an entry the query does not see (a later position, one
     * outside the attend set, one the variant masks) reads as {@code -inf}, the logit softmax gives no weight. The one
     * rule the interpreter and the runtime call, after {@link Normalize#apply} has used the row.
     */
    static void maskUnseen(double[] logits, boolean[] visible, int n) {
        for (int j = 0; j < n; j++) if (!visible[j]) logits[j] = Double.NEGATIVE_INFINITY;
    }

    /**
     * The logit of query {@code q} (head {@code head}, at {@code qpos}) against key {@code k} (at {@code kpos}), both
     * as the kernel reads them (rotated where RoPE applies); {@code context} is the number of tokens seen.
     */
    double logit(float[] q, int qOff, float[] k, int qpos, int kpos, int head, int context);

    boolean visible(float[] q, int qOff, float[] k, int qpos, int kpos, int head, int context);

    Normalize normalize();
}
