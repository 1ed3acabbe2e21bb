package dev.kvpc.runtime.load;

import dev.kvpc.runtime.AttentionVariant;
import dev.kvpc.runtime.policy.CompiledLaneClass;
import dev.kvpc.runtime.policy.CompiledPolicy;
import dev.kvpc.runtime.policy.LaneContext;
import dev.kvpc.runtime.pool.OutOfKvMemoryException;

/**
 * A loaded jar's policy with every call into its code guarded: whatever that code throws (a runtime exception, a
 * stack overflow, running out of heap, running past its time or allocation limit, a class of the jar the JVM will
 * not link) leaves as a {@link PolicyFault} naming the
 * policy, the lane class and the kernel, so that a host tells a faulty policy from a fault of its own. Each call has
 * a deadline and an allocation budget ({@link PolicyClock}); the attention variant's per-entry calls, too frequent to
 * set one each time, are counted instead, and one that runs past the time limit is stopped all the same. The runtime's own out-of-memory for the KV
 * cache ({@link OutOfKvMemoryException}) passes unchanged: it is the host's budget, not the policy's fault.
 */
public final class GuardedPolicy implements CompiledPolicy {
    private final String name;
    private final CompiledPolicy policy;
    /** How long one call into the jar's code may run, in nanoseconds. */
    private final long limit;

    /** The time one call into a policy's code may take unless {@code kvpc.policy.time-limit-ms} says otherwise: 10 s. */
    public static final long DEFAULT_LIMIT_MS = 10_000;

    public GuardedPolicy(String name, CompiledPolicy policy) {
        this(name, policy, Long.getLong("kvpc.policy.time-limit-ms", DEFAULT_LIMIT_MS));
    }

    /** With a time limit of {@code limitMs} for each call into the jar's code (its loops check it, {@link PolicyClock}). */
    public GuardedPolicy(String name, CompiledPolicy policy, long limitMs) {
        this.name = name;
        this.policy = policy;
        this.limit = Math.max(1, limitMs) * 1_000_000L;
    }

    @Override
    public String program() {
        return guarded("program()", policy::program);
    }

    @Override
    public int laneClasses() {
        return guarded("laneClasses()", policy::laneClasses);
    }

    /** A call into the jar's code with a deadline, what it throws a fault. */
    private <T> T guarded(String what, java.util.function.Supplier<T> call) {
        long previous = PolicyClock.begin(limit);
        try {
            return call.get();
        } catch (RuntimeException | StackOverflowError | OutOfMemoryError | LinkageError | PolicyClock.Limit e) {
            throw fault(what, e);
        } finally {
            PolicyClock.end(previous);
        }
    }

    @Override
    public CompiledLaneClass laneClass(int c) {
        CompiledLaneClass code = guarded("laneClass(" + c + ")", () -> policy.laneClass(c));
        if (code == null) throw fault("laneClass(" + c + ")", new NullPointerException("it returned null"));
        return new LaneClass(c, code);
    }

    @Override
    public AttentionVariant variant() {
        AttentionVariant v = guarded("variant()", policy::variant);
        return v == null ? null : new Variant(v);
    }

    private PolicyFault fault(String what, Throwable e) {
        if (e instanceof OutOfKvMemoryException o) throw o;
        if (e instanceof PolicyFault f) return f;
        if (e instanceof PolicyClock.Overrun) {
            return new PolicyFault(name, what, new IllegalStateException("ran past its time limit of " + limit / 1_000_000 + " ms (an endless loop?)"));
        }
        if (e instanceof PolicyClock.Overdraw o) return new PolicyFault(name, what, new IllegalStateException(o.getMessage()));
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
            return guarded("lane class " + index + ", policy()", code::policy);
        }

        @Override
        public String[] kernels() {
            return guarded("lane class " + index + ", kernels()", code::kernels);
        }

        /** The kernels' names, asked once (a kernel named {@code ...limit} or {@code ...init} returns a value). */
        private String[] names;

        @Override
        public double[] run(int kernel, LaneContext ctx) {
            if (names == null) names = kernels();
            String what = "lane class " + index + ", kernel " + (kernel >= 0 && kernel < names.length ? names[kernel] : String.valueOf(kernel));
            double[] out;
            long previous = PolicyClock.begin(limit);
            try {
                out = code.run(kernel, ctx);
            } catch (RuntimeException | StackOverflowError | OutOfMemoryError | LinkageError | PolicyClock.Limit e) {
                throw fault(what, e);
            } finally {
                PolicyClock.end(previous);
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
            long[] clock = PolicyClock.enterUnbounded(limit);
            try {
                return v.logit(q, qOff, k, qpos, kpos, head, context);
            } catch (RuntimeException | StackOverflowError | OutOfMemoryError | LinkageError | PolicyClock.Limit e) {
                throw fault("attention variant, logit", e);
            } finally {
                PolicyClock.exitUnbounded(clock);
            }
        }

        @Override
        public boolean visible(float[] q, int qOff, float[] k, int qpos, int kpos, int head, int context) {
            long[] clock = PolicyClock.enterUnbounded(limit);
            try {
                return v.visible(q, qOff, k, qpos, kpos, head, context);
            } catch (RuntimeException | StackOverflowError | OutOfMemoryError | LinkageError | PolicyClock.Limit e) {
                throw fault("attention variant, visible", e);
            } finally {
                PolicyClock.exitUnbounded(clock);
            }
        }

        @Override
        public Normalize normalize() {
            Normalize n;
            try {
                n = v.normalize();
            } catch (RuntimeException | StackOverflowError | OutOfMemoryError | LinkageError | PolicyClock.Limit e) {
                throw fault("attention variant, normalize", e);
            }
            if (n == null) throw fault("attention variant, normalize", new NullPointerException("it returned null"));
            return n;
        }
    }
}
