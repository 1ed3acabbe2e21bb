package dev.kvpc.runtime.trace;

import dev.kvpc.runtime.Sequence;

/**
 * Feeds a trace to a runtime sequence as a model's forward pass would: step by step, and in each step layer by
 * layer, the step's keys and values appended and its queries attended (which runs the policy). What a host that
 * replays traces does; the runtime's tests and the example host use it.
 */
public final class TraceFeed {
    private TraceFeed() {}

    /** Told after each layer of each step: the step index, the layer, and that layer's outputs. */
    public interface AfterLayer {
        void after(int step, int layer, float[] out);
    }

    /** Feeds a trace to a sequence; returns the last step's outputs of layer 0. */
    public static float[] feed(Sequence seq, Trace t) {
        return feed(seq, t, (s, l, o) -> { });
    }

    /** As {@link #feed(Sequence, Trace)}, telling {@code after} about each layer of each step. */
    public static float[] feed(Sequence seq, Trace t, AfterLayer after) {
        TraceShape s = t.shape();
        int d = s.headDim(), g = s.kvHeads(), h = s.heads();
        float[] last = null;
        for (int si = 0; si < t.steps().size(); si++) {
            Trace.Step step = t.steps().get(si);
            int n = step.tokens(), start = t.start(si);
            switch (step) {
                case Trace.Prefill x -> seq.beginPrefill(n);
                case Trace.Chunk x -> seq.beginChunk(n);
                case Trace.Decode x -> seq.beginDecode();
            }
            for (int l = 0; l < s.layers(); l++) {
                float[] k = new float[n * g * d], v = new float[n * g * d], q = new float[n * h * d], out = new float[n * h * d];
                for (int tk = 0; tk < n; tk++) {
                    for (int kv = 0; kv < g; kv++) {
                        System.arraycopy(t.key(l, start + tk, kv), 0, k, (tk * g + kv) * d, d);
                        System.arraycopy(t.value(l, start + tk, kv), 0, v, (tk * g + kv) * d, d);
                    }
                    for (int qh = 0; qh < h; qh++) System.arraycopy(t.query(l, start + tk, qh), 0, q, (tk * h + qh) * d, d);
                }
                seq.append(l, k, v);
                seq.attend(l, q, out);
                after.after(si, l, out);
                if (l == 0) last = out;
            }
        }
        return last;
    }
}
