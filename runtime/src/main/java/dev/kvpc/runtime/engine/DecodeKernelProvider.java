package dev.kvpc.runtime.engine;

import dev.kvpc.runtime.store.QuantSpec;

import java.util.ServiceLoader;

/**
 * Where compiled {@link DecodeKernel}s come from. The runtime does not depend on the backend that generates them: a
 * host passes a provider to {@link dev.kvpc.runtime.KvRuntime}, or the runtime finds one through
 * {@link ServiceLoader} ({@link #installed()}; the JVM backend, {@code kvpc-jvm}, registers one). Lanes whose
 * formats no kernel supports, attention variants and cache-position RoPE stay on {@link AttentionKernel}.
 */
public interface DecodeKernelProvider {
    /** No compiled kernels: every step runs on {@link AttentionKernel}. */
    DecodeKernelProvider NONE = (headDim, group, keys, values) -> null;

    /**
     * A new kernel (with its own scratch buffers) for this head dimension, group size and row formats of keys and
     * values, or null when this provider does not support them. May be slow the first time (code generation).
     */
    DecodeKernel kernel(int headDim, int group, QuantSpec keys, QuantSpec values);

    /**
     * A new kernel for lanes whose rows are in any mix of {@code formats} (their chains: {@link
     * dev.kvpc.runtime.lane.KernelRows#chainSpec}), read in place, or null when this provider has none; by default
     * null, and then lanes of one key format and one value format go to {@link #kernel(int, int, QuantSpec, QuantSpec)}.
     */
    default DecodeKernel kernel(int headDim, int group, java.util.Set<QuantSpec> formats) {
        return null;
    }

    /**
     * A new kernel for f32 keys and values that the runtime runs over {@link dev.kvpc.runtime.engine.DenseRows} (rows
     * a step has decoded into arrays, or rotated by slot), or null when this provider has none; by default null. A
     * provider may return a kernel of its own class for it, so that the JIT's profile of array-backed rows stays apart
     * from that of lanes read in place.
     */
    default DecodeKernel denseKernel(int headDim, int group) {
        return null;
    }

    /**
     * A new kernel for lanes whose rows are in any mix of {@code formats}, under the attention variant
     * {@code variant} (its IR: logit, mask, normalisation) on a model of {@code model}'s shape, or null when this
     * provider has none (the default): such steps then run on {@link AttentionKernel}, which calls the compiled
     * variant. The kernel is called with {@link DecodeKernel#attend(dev.kvpc.runtime.lane.KernelRows, float[], int,
     * java.util.BitSet, float[], float[], dev.kvpc.runtime.Rope, int)}.
     */
    default DecodeKernel variantKernel(int headDim, int group, java.util.Set<QuantSpec> formats, dev.kvpc.ir.AttentionIr variant,
                                       dev.kvpc.runtime.ModelSpec model) {
        return null;
    }

    /**
     * Where this provider keeps lanes' pages itself (a device), what appends a step's rows there without the host
     * writing them ({@link RowWriter}); by default null: the host appends.
     */
    default RowWriter rowWriter() {
        return null;
    }

    /**
     * Whether this provider's kernels attend in place ({@link DecodeKernel#attendInPlace}) with queries {@code q} and
     * outputs {@code out} as {@code arrays} holds them (a device's copies of them are current there), rotating
     * queries at positions below {@code positions}; by default false: the runtime copies queries and outputs.
     */
    default boolean attendsInPlace(float[] q, float[] out, HostArrays arrays, dev.kvpc.runtime.Rope rope, int headDim, int positions) {
        return false;
    }

    /**
     * The first provider found on the class path through {@link ServiceLoader}, or {@link #NONE}, loaded once and
     * shared by every runtime (so a kernel class generated for one sequence is the warm one the next uses); {@link #NONE}
     * when the system property {@value #OFF_PROPERTY} is {@code off} (to compare with the runtime kernel).
     */
    static DecodeKernelProvider installed() {
        if ("off".equals(System.getProperty(OFF_PROPERTY))) return NONE;
        return InstalledDecodeKernels.PROVIDER;
    }

    /** System property that turns installed compiled kernels off: {@code -Dkvpc.decodeKernels=off}. */
    String OFF_PROPERTY = "kvpc.decodeKernels";
}
