package dev.kvpc.ir;

import java.util.List;
import java.util.Locale;

/** An attention variant: per query-key logit, mask, and normalisation. */
public record AttentionIr(String name, List<PolicyIr.Param> params, Computation logits, Computation mask, Normalize normalize) {
    public AttentionIr {
        params = List.copyOf(params);
    }

    public enum Normalize {
        SOFTMAX, SIGMOID, NONE;

        public String word() { return name().toLowerCase(Locale.ROOT); }
    }
}
