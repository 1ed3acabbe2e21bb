package dev.kvpc.runtime.policy;

/**
 * One lane class of a policy, compiled: its kernels (handler bodies, handler limits, state initialisers, standing
 * rules), each a method of the generated class, run against the event's {@link LaneContext}. Kernel names are those
 * of the loop IR ({@code handler0.prefill,decode}, {@code handler1.overflow.limit}, {@code state.acc.init},
 * {@code standing}).
 */
public interface CompiledLaneClass {
    /** The policy (or lane class) name this class was compiled from. */
    String policy();

    /** Kernel names, indexed as {@link #run} takes them. */
    String[] kernels();

    /**
     * Runs kernel {@code kernel}; returns its result buffer (row-major over the result's axes; a scalar is one
     * element), or null for a kernel without a result.
     */
    double[] run(int kernel, LaneContext ctx);
}
