package dev.kvpc.ir.pass;

import java.util.Set;

/** Signal names the passes treat specially. */
final class Sets {
    private Sets() {}

    /** Signals fixed for a lane: its location and the model's shape. */
    static final Set<String> LOCATION = Set.of("layer", "head", "layers", "heads", "group", "head_dim");

    /** Signals with one row per query, produced by the attention kernel. */
    static final Set<String> ATTENTION_ROWS = Set.of("attn", "logits");
}
