package dev.kvpc.runtime.load;

import dev.kvpc.runtime.AttentionVariant;
import dev.kvpc.runtime.policy.CompiledLaneClass;
import dev.kvpc.runtime.policy.CompiledPolicy;
import dev.kvpc.runtime.policy.LaneContext;
import dev.kvpc.runtime.pool.OutOfKvMemoryException;

/**
 * A loaded jar's policy with every call into its code guarded: whatever that code throws (a runtime exception, a
 * stack overflow, running out of heap) leaves as a {@link PolicyFault} naming the policy, the lane class and the
 * kernel, so that a host tells a faulty policy from a fault of its own. The runtime's own out-of-memory for the KV
 * cache ({@link OutOfKvMemoryException}) passes unchanged: it is the host's budget, not the policy's fault.
 */
public final class GuardedPolicy implements CompiledPolicy {
    private final String name;
    private final CompiledPolicy policy;

    public GuardedPolicy(String name, CompiledPolicy policy) {
        this.name = name;
        this.policy = policy;
    }

    @Override
    public String program() {
        try {
            return policy.program();
        } catch (RuntimeException | StackOverflowError | OutOfMemoryError e) {
            throw fault("program()", e);
        }
    }

    @Override
    public int laneClasses() {
        try {
            return policy.laneClasses();
        } catch (RuntimeException | StackOverflowError | OutOfMemoryError e) {
            throw fault("laneClasses()", e);
        }
    }

    @Override
    public CompiledLaneClass laneClass(int c) {
        CompiledLaneClass code;
        try {
            code = policy.laneClass(c);
        } catch (RuntimeException | StackOverflowError | OutOfMemoryError e) {
            throw fault("laneClass(" + c + ")", e);
        }
        if (code == null) throw fault("laneClass(" + c + ")", new NullPointerException("it returned null"));
        return new LaneClass(c, code);
    }

    @Override
    public AttentionVariant variant() {
        AttentionVariant v;
        try {
            v = policy.variant();
        } catch (RuntimeException | StackOverflowError | OutOfMemoryError e) {
            throw fault("variant()", e);
        }
        return v == null ? null : new Variant(v);
    }

    private PolicyFault fault(String what, Throwable e) {
        if (e instanceof OutOfKvMemoryException o) throw o;
        if (e instanceof PolicyFault f) return f;
        return new PolicyFault(name, what, e);
    }

    /** One lane class's code, each kernel run guarded. */
    private final class LaneClass implements CompiledLaneClass {
        private final int index;
        private final CompiledLaneClass code;

        LaneClass(int index, CompiledLaneClass code) {
            this.index = index;
            this.code = code;
        }

        @Override
        public String policy() {
            try {
                return code.policy();
            } catch (RuntimeException | StackOverflowError | OutOfMemoryError e) {
                throw fault("lane class " + index + ", policy()", e);
            }
        }

        @Override
        public String[] kernels() {
            try {
                return code.kernels();
            } catch (RuntimeException | StackOverflowError | OutOfMemoryError e) {
                throw fault("lane class " + index + ", kernels()", e);
            }
        }

        /** The kernels' names, asked once (a kernel named {@code ...limit} or {@code ...init} returns a value). */
        private String[] names;

        @Override
        public double[] run(int kernel, LaneContext ctx) {
            if (names == null) names = kernels();
            String what = "lane class " + index + ", kernel " + (kernel >= 0 && kernel < names.length ? names[kernel] : String.valueOf(kernel));
            double[] out;
            try {
                out = code.run(kernel, ctx);
            } catch (RuntimeException | StackOverflowError | OutOfMemoryError e) {
                throw fault(what, e);
            }
            boolean valued = kernel >= 0 && kernel < names.length && names[kernel] != null && (names[kernel].endsWith("limit") || names[kernel].endsWith("init"));
            if (valued && (out == null || out.length == 0)) throw fault(what, new IllegalStateException("it returned no value"));
            return out;
        }
    }

    /** The compiled attention variant, each call guarded. */
    private final class Variant implements AttentionVariant {
        private final AttentionVariant v;

        Variant(AttentionVariant v) {
            this.v = v;
        }

        @Override
        public double logit(float[] q, int qOff, float[] k, int qpos, int kpos, int head, int context) {
            try {
                return v.logit(q, qOff, k, qpos, kpos, head, context);
            } catch (RuntimeException | StackOverflowError | OutOfMemoryError e) {
                throw fault("attention variant, logit", e);
            }
        }

        @Override
        public boolean visible(float[] q, int qOff, float[] k, int qpos, int kpos, int head, int context) {
            try {
                return v.visible(q, qOff, k, qpos, kpos, head, context);
            } catch (RuntimeException | StackOverflowError | OutOfMemoryError e) {
                throw fault("attention variant, visible", e);
            }
        }

        @Override
        public Normalize normalize() {
            Normalize n;
            try {
                n = v.normalize();
            } catch (RuntimeException | StackOverflowError | OutOfMemoryError e) {
                throw fault("attention variant, normalize", e);
            }
            if (n == null) throw fault("attention variant, normalize", new NullPointerException("it returned null"));
            return n;
        }
    }
}
