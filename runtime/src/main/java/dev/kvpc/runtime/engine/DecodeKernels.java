package dev.kvpc.runtime.engine;

import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.store.QuantSpec;

import java.util.HashMap;
import java.util.Map;

/**
 * A sequence's compiled decode kernels, one per (head dim, group, key format, value format), asked of the provider
 * once each (a null answer is remembered too). Not thread-safe: one per sequence.
 */
public final class DecodeKernels {
    private record Key(int headDim, int group, QuantSpec keys, QuantSpec values) {}

    private final DecodeKernelProvider provider;
    private final Map<Key, DecodeKernel> kernels = new HashMap<>();
    private final Map<Long, DecodeKernel> dense = new HashMap<>();
    private record Mixed(int headDim, int group, java.util.Set<QuantSpec> formats) {}
    private final Map<Mixed, DecodeKernel> mixed = new HashMap<>();
    /** Per lane, the kernel last chosen and what it was chosen for: asked again at every step of every layer. */
    private record Chosen(long chainsInUse, int group, DecodeKernel kernel) {}
    private final Map<Lane, Chosen> byLane = new java.util.IdentityHashMap<>();

    public DecodeKernels(DecodeKernelProvider provider) {
        this.provider = provider == null ? DecodeKernelProvider.NONE : provider;
    }

    /**
     * The compiled kernel for this lane's current formats and {@code group} query heads, or null when there is none
     * (the lane is empty, or the provider reads neither the mix of formats in use nor, where keys and values are each
     * in one row chain, that pair): the caller then uses {@link AttentionKernel}.
     */
    public DecodeKernel forLane(Lane lane, int group) {
        if (provider == DecodeKernelProvider.NONE || lane.size() == 0) return null;
        // the same chains in use as last time: the same formats, so the same kernel, with nothing allocated
        long inUse = lane.chainsInUse();
        Chosen last = byLane.get(lane);
        if (last != null && inUse >= 0 && last.chainsInUse() == inUse && last.group() == group) return last.kernel();
        DecodeKernel k = choose(lane, group);
        if (inUse >= 0) byLane.put(lane, new Chosen(inUse, group, k));
        return k;
    }

    private DecodeKernel choose(Lane lane, int group) {
        Mixed m = new Mixed(lane.headDim(), group, lane.formatsInUse());
        DecodeKernel any = mixed.get(m);
        if (any == null && !mixed.containsKey(m)) mixed.put(m, any = provider.kernel(m.headDim(), group, m.formats()));
        if (any != null) return any;
        QuantSpec k = lane.rowFormat(Lane.Part.KEYS);
        if (k == null) return null;
        QuantSpec v = lane.rowFormat(Lane.Part.VALUES);
        if (v == null) return null;
        Key key = new Key(lane.headDim(), group, k, v);
        if (kernels.containsKey(key)) return kernels.get(key);
        DecodeKernel kernel = provider.kernel(lane.headDim(), group, k, v);
        kernels.put(key, kernel);
        return kernel;
    }

    private record VariantKey(int headDim, int group, java.util.Set<QuantSpec> formats, dev.kvpc.ir.AttentionIr variant) {}
    private final Map<VariantKey, DecodeKernel> variants = new HashMap<>();

    /**
     * The provider's kernel for this lane's formats under the attention variant {@code variant} (its IR), or null when
     * it has none (remembered too).
     */
    public DecodeKernel forLaneVariant(Lane lane, int group, dev.kvpc.ir.AttentionIr variant, dev.kvpc.runtime.ModelSpec model) {
        if (provider == DecodeKernelProvider.NONE || variant == null || lane.size() == 0) return null;
        VariantKey key = new VariantKey(lane.headDim(), group, lane.formatsInUse(), variant);
        if (variants.containsKey(key)) return variants.get(key);
        DecodeKernel k = provider.variantKernel(lane.headDim(), group, key.formats(), variant, model);
        variants.put(key, k);
        return k;
    }

    /**
     * The provider's kernel over {@link dev.kvpc.runtime.engine.DenseRows} for this head dimension and group, or null
     * (remembered too).
     */
    public DecodeKernel dense(int headDim, int group) {
        if (provider == DecodeKernelProvider.NONE) return null;
        long key = (long) headDim << 32 | group;
        if (dense.containsKey(key)) return dense.get(key);
        DecodeKernel kernel = provider.denseKernel(headDim, group);
        dense.put(key, kernel);
        return kernel;
    }
}
