package dev.kvpc.ir;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * What policy and attention-variant code can read of its lane, the event and the model, with the facts the checker,
 * the passes and every engine ask of a signal. Compiled policy code names a signal by its constant when it asks the
 * runtime for it ({@code LaneContext.signal}).
 */
public enum Signal {
    // where the lane is, and the model's shape: one value per lane
    LAYER(Kind.LOCATION, false), HEAD(Kind.LOCATION, false), LAYERS(Kind.LOCATION, false), HEADS(Kind.LOCATION, false), GROUP(Kind.LOCATION, false),
    HEAD_DIM(Kind.LOCATION, false),
    // each channel's number, 0 .. head_dim - 1: the same in every lane
    CHANNEL(Kind.LOCATION, false, Axis.CHANNEL),
    // the event
    LEN(Kind.EVENT, false), CONTEXT(Kind.EVENT, false), STEP(Kind.EVENT, false),
    // one row per entry of the lane
    K(Kind.ENTRY, true, Axis.TOKEN, Axis.CHANNEL), V(Kind.ENTRY, true, Axis.TOKEN, Axis.CHANNEL), POS(Kind.ENTRY, false, Axis.TOKEN),
    AGE(Kind.ENTRY, false, Axis.TOKEN), INDEX(Kind.ENTRY, false, Axis.TOKEN),
    // one row per observed query
    Q(Kind.QUERY, true, Axis.QUERY, Axis.GROUP, Axis.CHANNEL), ATTN(Kind.ATTENTION, true, Axis.QUERY, Axis.GROUP, Axis.TOKEN),
    LOGITS(Kind.ATTENTION, true, Axis.QUERY, Axis.GROUP, Axis.TOKEN),
    // the attention of every query of the event, whatever an observe clause keeps: no word reads it; it is the input
    // of a fused reduction written over the prompt (sum(attn, over: prompt, group))
    PROMPT_ATTN(Kind.ATTENTION, true, Axis.QUERY, Axis.GROUP, Axis.TOKEN),
    // the positions of the observed queries (a variant reads its query's, a scalar)
    QPOS(Kind.QUERY, false, Axis.QUERY),
    // an attention variant's own: the key's position, the logit scale
    KPOS(Kind.VARIANT, false), SCALE(Kind.VARIANT, true);

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
    /** Whether its values are floats (else whole numbers). */
    public final boolean floating;
    private final List<Axis> axes;

    Signal(Kind kind, boolean floating, Axis... axes) {
        this.kind = kind;
        this.floating = floating;
        this.axes = List.of(axes);
    }

    /**
     * The axes of its value as a policy reads it, in the order every engine lays the value out (the checker's types,
     * the interpreter's tensors and the runtime's arrays all take them from here): none for a number, token and
     * channel for k and v. An attention variant reads one row of k and q (channel only) and scalars of the rest.
     */
    public List<Axis> axes() {
        return axes;
    }

    /** {@link #axes()}, led by the head axis when a policy selects per layer and the signal is {@link #perLane}. */
    public List<Axis> axes(boolean perLayer) {
        if (!perLayer || !perLane()) return axes;
        List<Axis> out = new ArrayList<>(axes.size() + 1);
        out.add(Axis.HEAD);
        out.addAll(axes);
        return out;
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
