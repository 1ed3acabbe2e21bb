package dev.kvpc.runtime.load;

/**
 * The shape of the model a host runs, as the loader checks a policy's constraints against it: {@code layers}
 * decoder layers, {@code heads} query heads, {@code kvHeads} KV heads and {@code headDim} channels per head.
 */
public record ModelShapeSpec(int layers, int heads, int kvHeads, int headDim) {

    public ModelShapeSpec {
        if (layers <= 0 || heads <= 0 || kvHeads <= 0 || headDim <= 0) {
            throw new IllegalArgumentException("a model shape needs positive sizes, got layers=" + layers + " heads=" + heads
                    + " kv-heads=" + kvHeads + " head-dim=" + headDim);
        }
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("heads=" + heads + " is not a multiple of kv-heads=" + kvHeads);
        }
    }

    /** The size of one dimension, by its manifest name ({@code layers}, {@code heads}, {@code kv-heads}, {@code head-dim}). */
    int size(String dimension) {
        return switch (dimension) {
            case "layers" -> layers;
            case "heads" -> heads;
            case "kv-heads" -> kvHeads;
            case "head-dim" -> headDim;
            default -> throw new IllegalArgumentException("no model dimension " + dimension);
        };
    }

    @Override
    public String toString() {
        return "layers=" + layers + " heads=" + heads + " kv-heads=" + kvHeads + " head-dim=" + headDim;
    }
}
