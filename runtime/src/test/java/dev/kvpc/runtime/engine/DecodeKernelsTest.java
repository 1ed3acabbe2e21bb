package dev.kvpc.runtime.engine;

import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

/**
 * A sequence's kernel for a lane follows the formats the lane holds: the one chosen last is given again while they
 * stay the same, and a new choice is made when they change (a row stored at another precision, evicted again).
 */
class DecodeKernelsTest {
    /** A provider that makes a distinct kernel for each mix of formats, and remembers what it was asked. */
    static final class Recording implements DecodeKernelProvider {
        final List<Set<QuantSpec>> asked = new ArrayList<>();

        @Override
        public DecodeKernel kernel(int headDim, int group, QuantSpec keys, QuantSpec values) {
            return null;
        }

        @Override
        public DecodeKernel kernel(int headDim, int group, Set<QuantSpec> formats) {
            asked.add(Set.copyOf(formats));
            return (rows, q, qpos, attend, out, colSums) -> { };
        }
    }

    @Test
    void theKernelFollowsTheLanesFormats() {
        int d = 8;
        try (PagePool pool = new PagePool()) {
            Lane lane = new Lane(pool, d, QuantSpec.of(Precision.F32), 16);
            float[] row = new float[d];
            for (int i = 0; i < 10; i++) lane.append(i, 0, row, 0, row, 0);
            Recording provider = new Recording();
            DecodeKernels kernels = new DecodeKernels(provider);
            DecodeKernel f32 = kernels.forLane(lane, 4);
            assertSame(f32, kernels.forLane(lane, 4), "the same formats: the same kernel");
            QuantSpec int8 = new QuantSpec(Precision.ofIntBits(8), QuantSpec.Axis.TOKEN, d);
            lane.restore(3, Lane.Part.KEYS, int8);
            DecodeKernel mixed = kernels.forLane(lane, 4);
            assertEquals(Set.of(QuantSpec.of(Precision.F32), int8), provider.asked.getLast(), "a new mix of formats is asked for");
            assertSame(mixed, kernels.forLane(lane, 4));
            java.util.BitSet keep = new java.util.BitSet();
            keep.set(0, lane.size());
            keep.clear(3);
            lane.retain(keep);
            assertSame(f32, kernels.forLane(lane, 4), "the int8 row left: f32 alone again, the kernel chosen for it");
            assertEquals(2, provider.asked.size(), "each mix asked of the provider once");
        }
    }
}
