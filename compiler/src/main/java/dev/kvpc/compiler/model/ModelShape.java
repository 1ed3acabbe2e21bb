package dev.kvpc.compiler.model;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The shape of the decoder a policy is checked for: layers, query heads, KV heads (lanes per layer), head dimension.
 * Checks that depend on the model (budgets per layer, group sizes, table shapes) use it.
 */
public record ModelShape(String name, int layers, int heads, int kvHeads, int headDim) {
    /** The largest shape fields a model may have. */
    public static final int MAX_LAYERS = 1024, MAX_HEADS = 1024, MAX_HEAD_DIM = 16384;

    public ModelShape {
        if (layers < 1 || heads < 1 || kvHeads < 1 || headDim < 1) {
            throw new IllegalArgumentException("model shape needs positive layers, heads, kv-heads and head-dim");
        }
        // far above any model's, and low enough that a check's work over every lane stays small
        if (layers > MAX_LAYERS || heads > MAX_HEADS || kvHeads > heads || headDim > MAX_HEAD_DIM) {
            throw new IllegalArgumentException("model shape layers=" + layers + ", heads=" + heads + ", kv-heads=" + kvHeads + ", head-dim=" + headDim
                    + " is out of range: layers 1 to " + MAX_LAYERS + ", heads 1 to " + MAX_HEADS + ", kv-heads 1 to heads, head-dim 1 to " + MAX_HEAD_DIM);
        }
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("query heads (" + heads + ") must be a multiple of KV heads (" + kvHeads + ")");
        }
    }

    /** Query heads per KV head. */
    public int group() {
        return heads / kvHeads;
    }

    /** Used when no model is named: a Llama-3-8B-like shape. */
    public static final ModelShape REFERENCE = new ModelShape("reference", 32, 32, 8, 128);

    private static final Map<String, ModelShape> PRESETS = new LinkedHashMap<>();

    static {
        for (ModelShape m : new ModelShape[] {
                REFERENCE,
                new ModelShape("llama2-7b", 32, 32, 32, 128),
                new ModelShape("llama3-8b", 32, 32, 8, 128),
                new ModelShape("mistral-7b", 32, 32, 8, 128),
                new ModelShape("stories260K", 5, 8, 4, 8),
        }) {
            PRESETS.put(m.name(), m);
        }
    }

    public static Map<String, ModelShape> presets() {
        return Map.copyOf(PRESETS);
    }

    /**
     * Parses a preset name or {@code layers=L,heads=H,kv-heads=G,head-dim=D} (spaces or commas between fields).
     *
     * @throws IllegalArgumentException with a message fit for the user
     */
    public static ModelShape parse(String spec) {
        String s = spec.trim();
        ModelShape preset = PRESETS.get(s);
        if (preset != null) return preset;
        if (!s.contains("=")) {
            throw new IllegalArgumentException("unknown model '" + s + "'; presets: " + String.join(", ", PRESETS.keySet())
                    + ", or layers=L,heads=H,kv-heads=G,head-dim=D");
        }
        Map<String, Integer> f = new LinkedHashMap<>();
        for (String part : s.split("[,\\s]+")) {
            if (part.isEmpty()) continue;
            int eq = part.indexOf('=');
            if (eq <= 0) throw new IllegalArgumentException("bad model field '" + part + "' (expected name=value)");
            String key = part.substring(0, eq).trim();
            if (!key.matches("layers|heads|kv-heads|head-dim")) {
                throw new IllegalArgumentException("unknown model field '" + key + "' (layers, heads, kv-heads, head-dim)");
            }
            try {
                f.put(key, Integer.parseInt(part.substring(eq + 1).trim()));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("model field '" + key + "' needs a whole number, got '" + part.substring(eq + 1) + "'");
            }
        }
        int layers = f.getOrDefault("layers", REFERENCE.layers);
        int heads = f.getOrDefault("heads", REFERENCE.heads);
        int kv = f.getOrDefault("kv-heads", Math.min(heads, REFERENCE.kvHeads));
        int dim = f.getOrDefault("head-dim", REFERENCE.headDim);
        return new ModelShape("custom", layers, heads, kv, dim);
    }

    @Override
    public String toString() {
        return name + " (layers=" + layers + ", heads=" + heads + ", kv-heads=" + kvHeads + ", head-dim=" + headDim + ")";
    }
}
