package dev.kvpc.ir;

/** The model shape the IR is specialised to: layers, query heads, KV heads (lanes per layer), head dimension. */
public record LaneShape(int layers, int heads, int kvHeads, int headDim) {
    public LaneShape {
        if (layers < 1 || heads < 1 || kvHeads < 1 || headDim < 1 || heads % kvHeads != 0) {
            throw new IllegalArgumentException("bad model shape " + layers + "/" + heads + "/" + kvHeads + "/" + headDim);
        }
    }

    public int group() {
        return heads / kvHeads;
    }
}
