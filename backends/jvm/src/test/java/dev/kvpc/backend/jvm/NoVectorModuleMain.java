package dev.kvpc.backend.jvm;

import dev.kvpc.runtime.engine.AttentionKernel;
import dev.kvpc.runtime.engine.DecodeKernel;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;

import java.util.Random;

/**
 * Run by {@link DecodeKernelCompilerTest#withoutTheModuleTheKernelIsScalar} in a JVM started without
 * {@code --add-modules jdk.incubator.vector}: prints whether the module is there, the kernel the provider makes, and
 * the largest difference from the runtime kernel on a random int4 lane, one per line.
 */
public final class NoVectorModuleMain {
    public static void main(String[] args) {
        int d = 64;
        QuantSpec i4 = QuantSpec.resolve(Precision.INT4, QuantSpec.Axis.TOKEN, 32, d);
        DecodeKernel k = new JvmDecodeKernels().kernel(d, 4, i4, i4);
        double worst = 0;
        try (PagePool pool = new PagePool()) {
            Lane lane = DecodeKernelCompilerTest.randomLane(pool, new Random(3), d, i4, i4, 100);
            float[] q = new float[4 * d], out = new float[4 * d], ref = new float[4 * d];
            Random r = new Random(4);
            for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
            int qpos = lane.position(lane.size() - 1);
            k.attend(lane, q, qpos, null, out, null);
            new AttentionKernel().attend(lane, q, new int[] {qpos}, 4, null, ref, null);
            for (int i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i] - ref[i]));
            lane.clear();
        }
        System.out.println(DecodeKernelCompiler.vectorApiAvailable());
        System.out.println(k);
        System.out.println(worst);
    }
}
