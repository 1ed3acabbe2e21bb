package dev.kvpc.runtime.store;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** The hot paths (write, read, dot, axpy of every codec) allocate nothing per call once compiled. */
class AllocationTest {
    private static final com.sun.management.ThreadMXBean THREADS = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    private static long allocated() {
        return THREADS.getThreadAllocatedBytes(Thread.currentThread().threadId());
    }

    @Test
    void hotPathsDoNotAllocate() {
        // per-thread allocation counters exist on HotSpot (every JDK this project builds with); a JVM without them
        // cannot measure allocation at all, so the test would have nothing to check there
        org.junit.jupiter.api.Assumptions.assumeTrue(THREADS.isThreadAllocatedMemorySupported() && THREADS.isThreadAllocatedMemoryEnabled());
        int d = 128, calls = 2_000;
        Random rnd = new Random(31);
        float[] x = QuantOracle.randomRow(rnd, d * 32), q = QuantOracle.randomRow(rnd, d), acc = new float[d], out = new float[32];
        float[] zeros = new float[d], scales = new float[d];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(1 << 16);
            RowCodec[] rows = {
                RowCodec.of(QuantSpec.of(Precision.F32), d), RowCodec.of(QuantSpec.of(Precision.F16), d),
                RowCodec.of(QuantSpec.of(Precision.BF16), d), RowCodec.of(new QuantSpec(Precision.INT8, QuantSpec.Axis.TOKEN, 32), d),
                RowCodec.of(new QuantSpec(Precision.INT4, QuantSpec.Axis.TOKEN, 32), d),
                RowCodec.of(new QuantSpec(Precision.INT2, QuantSpec.Axis.TOKEN, 32), d),
                RowCodec.of(new QuantSpec(Precision.INT2, QuantSpec.Axis.TOKEN, 2), d),
            };
            ChannelBlockCodec block = ChannelBlockCodec.of(new QuantSpec(Precision.INT2, QuantSpec.Axis.CHANNEL, 32), d);
            long best = Long.MAX_VALUE;
            // a few rounds: the first ones run interpreted or in C1, which may box; compiled code must not
            for (int round = 0; round < 12 && best > 0; round++) {
                long before = allocated();
                float sink = 0;
                for (int i = 0; i < calls; i++) {
                    for (RowCodec r : rows) {
                        r.write(x, 0, seg, 64);
                        r.read(seg, 64, acc, 0);
                        sink += r.dot(seg, 64, q, 0);
                        r.axpy(seg, 64, 0.5f, acc, 0);
                    }
                    if (i % 16 == 0) block.quantise(x, 0, seg, 4096);
                    block.dotBlock(seg, 4096, q, 0, out, 0, zeros, scales);
                    block.axpyBlock(seg, 4096, out, 0, acc, 0, zeros, scales);
                    sink += block.dot(seg, 4096, i & 31, q, 0);
                    block.axpy(seg, 4096, i & 31, 0.25f, acc, 0);
                }
                best = Math.min(best, allocated() - before);
                assertFalse(Float.isNaN(sink) && false);
            }
            // a few bytes of slack for the allocation counter's own bookkeeping; per-call allocation would be MBs
            assertTrue(best < 1024, "allocated " + best + " bytes over " + calls + " rounds of calls");
        }
    }
}
