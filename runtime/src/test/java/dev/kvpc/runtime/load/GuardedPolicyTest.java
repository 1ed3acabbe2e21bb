package dev.kvpc.runtime.load;

import dev.kvpc.runtime.policy.CompiledLaneClass;
import dev.kvpc.runtime.policy.CompiledPolicy;
import dev.kvpc.runtime.policy.LaneContext;
import dev.kvpc.runtime.pool.OutOfKvMemoryException;
import org.junit.jupiter.api.Test;

import java.util.function.IntFunction;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What a guarded policy's code throws leaves as a {@link PolicyFault} naming the policy, lane class and kernel. */
class GuardedPolicyTest {
    /** A policy of one lane class with kernels {@code body} and {@code limit}, each run by {@code run}. */
    private static CompiledPolicy policy(IntFunction<double[]> run) {
        CompiledLaneClass lane = new CompiledLaneClass() {
            public String policy() {
                return "p";
            }

            public String[] kernels() {
                return new String[] {"handler0.overflow", "handler0.overflow.limit"};
            }

            public double[] run(int kernel, LaneContext ctx) {
                return run.apply(kernel);
            }
        };
        return new CompiledPolicy() {
            public String program() {
                return "";
            }

            public int laneClasses() {
                return 1;
            }

            public CompiledLaneClass laneClass(int c) {
                return lane;
            }
        };
    }

    private static int depth(int n) {
        return depth(n + 1) + 1;
    }

    @Test
    void faultsNameThePolicyTheLaneClassAndTheKernel() {
        PolicyFault f = assertThrows(PolicyFault.class, () -> new GuardedPolicy("h2o", policy(k -> {
            throw new IllegalStateException("boom");
        })).laneClass(0).run(0, null));
        assertEquals("policy h2o failed: lane class 0, kernel handler0.overflow: IllegalStateException (boom)", f.getMessage());
        assertEquals("h2o", f.policy());
    }

    @Test
    void aStackOverflowIsAFault() {
        PolicyFault f = assertThrows(PolicyFault.class, () -> new GuardedPolicy("deep", policy(k -> new double[] {depth(0)})).laneClass(0).run(1, null));
        assertTrue(f.getMessage().startsWith("policy deep failed: lane class 0, kernel handler0.overflow.limit: StackOverflowError"), f.getMessage());
    }

    @Test
    void aLimitWithNoValueIsAFault() {
        CompiledLaneClass lane = new GuardedPolicy("short", policy(k -> new double[0])).laneClass(0);
        assertArrayEquals(new double[0], lane.run(0, null), "a body may return what it likes");
        PolicyFault f = assertThrows(PolicyFault.class, () -> lane.run(1, null));
        assertEquals("policy short failed: lane class 0, kernel handler0.overflow.limit: IllegalStateException (it returned no value)", f.getMessage());
    }

    @Test
    void theCachesOwnOutOfMemoryPassesUnchanged() {
        OutOfKvMemoryException o = new OutOfKvMemoryException("pool full");
        OutOfKvMemoryException got = assertThrows(OutOfKvMemoryException.class, () -> new GuardedPolicy("p", policy(k -> {
            throw o;
        })).laneClass(0).run(0, null));
        assertSame(o, got);
    }
}
