package dev.kvpc.examples.llama;

import dev.kvpc.runtime.trace.StepData;
import dev.kvpc.runtime.trace.Trace;
import dev.kvpc.runtime.trace.TraceShape;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Records what an engine hands the runtime, step by step ({@link LlamaEngine#record}): each layer's keys, values and
 * queries, unrotated (the runtime rotates them), as a {@link Trace} whose {@link Trace#ROPE_THETA} attributes name
 * the model's RoPE, so that {@code kvpc trace} replays a real model's attention through any policy ({@code kvpc run
 * --record-trace}). With {@code outputs}, it also keeps each step's attention output of its last token per layer (all
 * query heads), the value a replay's report gives for the same step.
 */
public final class TraceRecorder {
    private final TraceShape shape;
    private final Llama2cModel model;
    private final boolean outputs;
    private final List<Trace.Step> steps = new ArrayList<>();
    private final List<float[][]> lastOutputs = new ArrayList<>();
    private float[][] k, v, q, out;
    private int tokens;
    private boolean decoding;

    public TraceRecorder(Llama2cModel model, boolean outputs) {
        this.model = model;
        this.shape = new TraceShape(model.layers, model.heads, model.kvHeads, model.headSize);
        this.outputs = outputs;
    }

    void begin(int tokens) {
        this.tokens = tokens;
        k = new float[shape.layers()][];
        v = new float[shape.layers()][];
        q = new float[shape.layers()][];
        out = new float[shape.layers()][];
    }

    void layer(int l, float[] queries, float[] keys, float[] values) {
        q[l] = java.util.Arrays.copyOf(queries, tokens * model.dim);
        k[l] = java.util.Arrays.copyOf(keys, tokens * model.kvDim);
        v[l] = java.util.Arrays.copyOf(values, tokens * model.kvDim);
    }

    void attention(int l, float[] att) {
        if (outputs) out[l] = java.util.Arrays.copyOfRange(att, (tokens - 1) * model.dim, tokens * model.dim);
    }

    void end(boolean first) {
        StepData d = new StepData(shape, tokens, k, v, q);
        if (first) {
            steps.add(new Trace.Prefill(d));
        } else if (tokens == 1) {
            steps.add(new Trace.Decode(d));
            decoding = true;
        } else {
            if (decoding) throw new IllegalStateException("a trace records a prompt, then decode steps; this engine ran " + tokens + " tokens after decoding");
            steps.add(new Trace.Chunk(d));
        }
        if (outputs) lastOutputs.add(out);
    }

    /** Steps recorded so far. */
    public int steps() {
        return steps.size();
    }

    /** Step {@code s}'s attention output of its last token at {@code layer}, every query head's ({@code outputs} only). */
    public float[] lastOutput(int s, int layer) {
        return lastOutputs.get(s)[layer].clone();
    }

    /** The trace so far, with {@code attributes} and the model's RoPE. */
    public Trace trace(Map<String, String> attributes) {
        TreeMap<String, String> a = new TreeMap<>(attributes);
        a.put(Trace.ROPE_THETA, Double.toString(model.ropeTheta));
        if (model.ropeFactor != 1.0) a.put(Trace.ROPE_FACTOR, Double.toString(model.ropeFactor));
        if (model.ropeFreqFactors != null) {
            StringBuilder sb = new StringBuilder();
            for (float f : model.ropeFreqFactors) sb.append(sb.isEmpty() ? "" : ",").append(f);
            a.put(Trace.ROPE_FREQ_FACTORS, sb.toString());
        }
        return new Trace(shape, steps, a);
    }
}
