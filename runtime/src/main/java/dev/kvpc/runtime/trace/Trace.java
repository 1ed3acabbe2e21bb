package dev.kvpc.runtime.trace;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * What one sequence feeds to the KV cache of a decoder, immutable: a {@link TraceShape}, then a prefill (one
 * {@link Prefill}, or one or more {@link Chunk}s) followed by zero or more single-token {@link Decode} steps.
 * Positions run 0, 1, ... in step order: step {@code i} covers positions {@code start(i) .. start(i) +
 * tokens - 1}. Each step holds, per layer, the new keys and values per KV head and the queries per query head
 * ({@link StepData}). A trace may carry a few text attributes (say, what a generator planted), which the text
 * and binary forms keep.
 */
public final class Trace {

    /** At most this many attributes. */
    public static final int MAX_ATTRIBUTES = 256;
    /** Longest attribute key. */
    public static final int MAX_KEY_LENGTH = 64;
    /** Longest attribute value. */
    public static final int MAX_VALUE_LENGTH = 1024;

    private static final Pattern KEY = Pattern.compile("[a-z][a-z0-9_.\\-]*");

    /** One event of the sequence: its kind and its tokens' tensors. */
    public sealed interface Step permits Prefill, Chunk, Decode {
        StepData data();

        /** Tokens in this step. */
        default int tokens() {
            return data().tokens();
        }

        /** {@code "prefill"}, {@code "chunk"} or {@code "decode"}, the word the text form uses. */
        default String kind() {
            return switch (this) {
                case Prefill _ -> "prefill";
                case Chunk _ -> "chunk";
                case Decode _ -> "decode";
            };
        }

        /** See {@link StepData#k}; {@code token} indexes the step's tokens. */
        default float k(int layer, int token, int kvHead, int channel) {
            return data().k(layer, token, kvHead, channel);
        }

        /** See {@link StepData#v}. */
        default float v(int layer, int token, int kvHead, int channel) {
            return data().v(layer, token, kvHead, channel);
        }

        /** See {@link StepData#q}. */
        default float q(int layer, int token, int head, int channel) {
            return data().q(layer, token, head, channel);
        }
    }

    /** The whole prompt in one step. */
    public record Prefill(StepData data) implements Step {
        public Prefill {
            Objects.requireNonNull(data, "data");
        }
    }

    /** One piece of a prompt fed in chunks. */
    public record Chunk(StepData data) implements Step {
        public Chunk {
            Objects.requireNonNull(data, "data");
        }
    }

    /** One generated token. */
    public record Decode(StepData data) implements Step {
        public Decode {
            Objects.requireNonNull(data, "data");
            if (data.tokens() != 1) {
                throw new IllegalArgumentException("a decode step has exactly one token, got " + data.tokens());
            }
        }
    }

    private final TraceShape shape;
    private final List<Step> steps;
    private final SortedMap<String, String> attributes;
    private final int[] starts; // starts[i] = first position of step i; starts[steps.size()] = length
    private final int prefillSteps;

    /** A trace without attributes. */
    public Trace(TraceShape shape, List<? extends Step> steps) {
        this(shape, steps, Map.of());
    }

    /**
     * @throws IllegalArgumentException if the steps are not a prefill (or chunks) then decodes, a step's shape
     *     differs from {@code shape}, the length overflows an int, or an attribute is malformed (keys
     *     {@code [a-z][a-z0-9_.-]*}, values printable ASCII without {@code #} or surrounding spaces)
     */
    public Trace(TraceShape shape, List<? extends Step> steps, Map<String, String> attributes) {
        this.shape = Objects.requireNonNull(shape, "shape");
        this.steps = List.copyOf(steps);
        if (this.steps.isEmpty()) {
            throw new IllegalArgumentException("a trace needs at least a prefill");
        }
        this.starts = new int[this.steps.size() + 1];
        int prefill = 0;
        long position = 0;
        for (int i = 0; i < this.steps.size(); i++) {
            Step s = this.steps.get(i);
            if (!s.data().shape().equals(shape)) {
                throw new IllegalArgumentException("step " + i + " has shape " + s.data().shape() + ", the trace " + shape);
            }
            String order = switch (s) {
                case Prefill _ -> i == 0 ? null : "a prefill can only be the first step";
                case Chunk _ -> i == 0 || this.steps.get(i - 1) instanceof Chunk ? null
                        : "a chunk can only be the first step or follow a chunk";
                case Decode _ -> i > 0 ? null : "a trace starts with a prefill or a chunk, not a decode step";
            };
            if (order != null) {
                throw new IllegalArgumentException("step " + i + " (" + s.kind() + "): " + order);
            }
            if (!(s instanceof Decode)) {
                prefill = i + 1;
            }
            starts[i] = (int) position;
            position += s.tokens();
            if (position > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("a trace holds at most " + Integer.MAX_VALUE + " tokens");
            }
        }
        starts[this.steps.size()] = (int) position;
        this.prefillSteps = prefill;
        this.attributes = Collections.unmodifiableSortedMap(new TreeMap<>(checkAttributes(attributes)));
    }

    private static Map<String, String> checkAttributes(Map<String, String> attributes) {
        Objects.requireNonNull(attributes, "attributes");
        if (attributes.size() > MAX_ATTRIBUTES) {
            throw new IllegalArgumentException(attributes.size() + " attributes, at most " + MAX_ATTRIBUTES);
        }
        attributes.forEach((key, value) -> {
            String problem = attributeProblem(key, value);
            if (problem != null) {
                throw new IllegalArgumentException(problem);
            }
        });
        return attributes;
    }

    /** Why a key or value cannot be an attribute, or null when it can. Shared with the readers. */
    static String attributeProblem(String key, String value) {
        if (key == null || !KEY.matcher(key).matches() || key.length() > MAX_KEY_LENGTH) {
            return "attribute key " + quote(key) + " is not [a-z][a-z0-9_.-]* of at most " + MAX_KEY_LENGTH + " characters";
        }
        if (value == null) {
            return "attribute " + key + " has no value";
        }
        if (value.length() > MAX_VALUE_LENGTH) {
            return "attribute " + key + " is longer than " + MAX_VALUE_LENGTH + " characters";
        }
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (c < 0x20 || c > 0x7e || c == '#') {
                return "attribute " + key + " holds " + quote(String.valueOf(c))
                        + "; values are printable ASCII without '#'";
            }
        }
        if (!value.equals(value.strip())) {
            return "attribute " + key + " value starts or ends with a space";
        }
        return null;
    }

    static String quote(String s) {
        if (s == null) {
            return "null";
        }
        StringBuilder b = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c >= 0x20 && c < 0x7f) {
                b.append(c);
            } else {
                b.append(String.format("\\u%04x", (int) c));
            }
        }
        return b.append('"').toString();
    }

    public TraceShape shape() {
        return shape;
    }

    /** The steps in order (unmodifiable). */
    public List<Step> steps() {
        return steps;
    }

    /** Attributes, sorted by key (unmodifiable). */
    public Map<String, String> attributes() {
        return attributes;
    }

    /** The attribute naming the RoPE base of a trace whose keys and queries are unrotated. */
    public static final String ROPE_THETA = "rope.theta", ROPE_FACTOR = "rope.factor", ROPE_FREQ_FACTORS = "rope.freq_factors";

    /**
     * The model's RoPE when this trace carries keys and queries unrotated (as a host hands them to the runtime, which
     * rotates them): attribute {@value #ROPE_THETA}, with {@value #ROPE_FACTOR} (linear scaling, default 1) and
     * {@value #ROPE_FREQ_FACTORS} (per-pair factors, comma-separated); null when the trace has no
     * {@value #ROPE_THETA} (its keys and queries are as attention reads them).
     *
     * @throws IllegalArgumentException naming the attribute when one is not a number or not a valid RoPE
     */
    public dev.kvpc.runtime.Rope rope() {
        String theta = attributes.get(ROPE_THETA);
        if (theta == null) return null;
        try {
            double factor = attributes.containsKey(ROPE_FACTOR) ? Double.parseDouble(attributes.get(ROPE_FACTOR)) : 1.0;
            float[] freq = null;
            String f = attributes.get(ROPE_FREQ_FACTORS);
            if (f != null) {
                String[] parts = f.split(",");
                freq = new float[parts.length];
                for (int i = 0; i < parts.length; i++) freq[i] = Float.parseFloat(parts[i].strip());
            }
            return new dev.kvpc.runtime.Rope(Double.parseDouble(theta), factor, freq);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("trace attribute " + ROPE_THETA + ", " + ROPE_FACTOR + " or " + ROPE_FREQ_FACTORS + " is not a number: " + e.getMessage());
        }
    }

    /** This trace with one attribute added or replaced. */
    public Trace withAttribute(String key, String value) {
        TreeMap<String, String> a = new TreeMap<>(attributes);
        a.put(key, value);
        return new Trace(shape, steps, a);
    }

    /** Total tokens: prefill tokens plus decode steps. */
    public int length() {
        return starts[steps.size()];
    }

    /** Tokens of the prefill (of all its chunks). */
    public int prefillLength() {
        return starts[prefillSteps];
    }

    /** Number of decode steps. */
    public int decodeSteps() {
        return steps.size() - prefillSteps;
    }

    /** Whether the prefill comes in chunks. */
    public boolean chunked() {
        return steps.getFirst() instanceof Chunk;
    }

    /** Position of the first token of step {@code stepIndex}. */
    public int start(int stepIndex) {
        Objects.checkIndex(stepIndex, steps.size());
        return starts[stepIndex];
    }

    /** Index of the step holding {@code position}. */
    public int stepIndexOf(int position) {
        Objects.checkIndex(position, length());
        int i = Arrays.binarySearch(starts, 0, steps.size(), position);
        return i >= 0 ? i : -i - 2;
    }

    /** Key channel at a sequence position (not a step-relative token). */
    public float k(int layer, int position, int kvHead, int channel) {
        int s = stepIndexOf(position);
        return steps.get(s).k(layer, position - starts[s], kvHead, channel);
    }

    /** Value channel at a sequence position. */
    public float v(int layer, int position, int kvHead, int channel) {
        int s = stepIndexOf(position);
        return steps.get(s).v(layer, position - starts[s], kvHead, channel);
    }

    /** Query channel at a sequence position. */
    public float q(int layer, int position, int head, int channel) {
        int s = stepIndexOf(position);
        return steps.get(s).q(layer, position - starts[s], head, channel);
    }

    /** A copy of the key vector at a sequence position. */
    public float[] key(int layer, int position, int kvHead) {
        int s = stepIndexOf(position);
        return steps.get(s).data().key(layer, position - starts[s], kvHead);
    }

    /** A copy of the value vector at a sequence position. */
    public float[] value(int layer, int position, int kvHead) {
        int s = stepIndexOf(position);
        return steps.get(s).data().value(layer, position - starts[s], kvHead);
    }

    /** A copy of the query vector at a sequence position. */
    public float[] query(int layer, int position, int head) {
        int s = stepIndexOf(position);
        return steps.get(s).data().query(layer, position - starts[s], head);
    }

    /** A few lines for people: shape, how the tokens are fed, and the attributes. */
    public String describe() {
        StringBuilder b = new StringBuilder();
        b.append("trace ").append(shape).append(" (group ").append(shape.group()).append(")\n");
        b.append("  ").append(length()).append(length() == 1 ? " token: " : " tokens: ").append(feeding()).append('\n');
        attributes.forEach((k, v) -> b.append("  ").append(k).append(" = ").append(v).append('\n'));
        return b.toString();
    }

    private String feeding() {
        StringBuilder b = new StringBuilder("prefill ").append(prefillLength());
        if (chunked()) {
            List<Integer> sizes = new ArrayList<>();
            for (int i = 0; i < prefillSteps; i++) {
                sizes.add(steps.get(i).tokens());
            }
            int first = sizes.getFirst();
            int last = sizes.getLast();
            boolean regular = sizes.subList(0, sizes.size() - 1).stream().allMatch(n -> n == first) && last <= first;
            b.append(" in ").append(sizes.size()).append(sizes.size() == 1 ? " chunk" : " chunks");
            if (regular) {
                b.append(" of ").append(first);
                if (last != first) {
                    b.append(" (last ").append(last).append(')');
                }
            } else {
                b.append(' ').append(sizes);
            }
        }
        int d = decodeSteps();
        b.append(", then ").append(d).append(d == 1 ? " decode step" : " decode steps");
        return b.toString();
    }

    /** Equal when shape, steps (kind and every float) and attributes are equal. */
    @Override
    public boolean equals(Object o) {
        return o instanceof Trace t && shape.equals(t.shape) && steps.equals(t.steps) && attributes.equals(t.attributes);
    }

    @Override
    public int hashCode() {
        return Objects.hash(shape, steps, attributes);
    }

    @Override
    public String toString() {
        return "Trace[" + shape + ", " + length() + " tokens: " + feeding() + "]";
    }
}
