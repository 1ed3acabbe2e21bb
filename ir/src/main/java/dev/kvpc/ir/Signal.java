package dev.kvpc.ir;

import java.util.Locale;

/**
 * What policy and attention-variant code can read of its lane, the event and the model, with the facts the checker,
 * the passes and every engine ask of a signal. Compiled policy code names a signal by its constant when it asks the
 * runtime for it ({@code LaneContext.signal}).
 */
public enum Signal {
    // where the lane is, and the model's shape: one value per lane
    LAYER(Kind.LOCATION), HEAD(Kind.LOCATION), LAYERS(Kind.LOCATION), HEADS(Kind.LOCATION), GROUP(Kind.LOCATION), HEAD_DIM(Kind.LOCATION),
    // the event
    LEN(Kind.EVENT), CONTEXT(Kind.EVENT), STEP(Kind.EVENT),
    // one row per entry of the lane
    K(Kind.ENTRY), V(Kind.ENTRY), POS(Kind.ENTRY), AGE(Kind.ENTRY),
    // one row per observed query
    Q(Kind.QUERY), ATTN(Kind.ATTENTION), LOGITS(Kind.ATTENTION),
    // an attention variant's own: the query's and the key's positions, the logit scale
    QPOS(Kind.VARIANT), KPOS(Kind.VARIANT), SCALE(Kind.VARIANT);

    /** What a signal describes. */
    public enum Kind {
        /** The lane's place in the model and the model's shape: the same at every event. */
        LOCATION,
        /** A number of the event (entries held, context seen, decode step). */
        EVENT,
        /** Per entry of the lane. */
        ENTRY,
        /** Per observed query. */
        QUERY,
        /** Attention of the observed queries over the entries: reading it needs the event's attention computed. */
        ATTENTION,
        /** Inside an attention variant only. */
        VARIANT
    }

    public final Kind kind;

    Signal(Kind kind) {
        this.kind = kind;
    }

    public String word() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The signal a word names, or null. */
    public static Signal of(String word) {
        for (Signal s : values()) if (s.word().equals(word)) return s;
        return null;
    }

    /** Whether reading it needs the event's attention (attn, logits). */
    public boolean attention() {
        return kind == Kind.ATTENTION;
    }

    /** Whether it has one row per observed query (q, attn, logits): at prefill they need an observe clause. */
    public boolean queryRows() {
        return kind == Kind.QUERY || kind == Kind.ATTENTION;
    }

    /** Whether it gains a head axis when a policy selects per layer (a row per lane of the layer). */
    public boolean perLane() {
        return kind == Kind.ENTRY || kind == Kind.QUERY || kind == Kind.ATTENTION;
    }

    /** Whether it is the same at every event of a lane. */
    public boolean location() {
        return kind == Kind.LOCATION;
    }
}
