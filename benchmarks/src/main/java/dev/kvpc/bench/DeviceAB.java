package dev.kvpc.bench;

import dev.kvpc.backend.jvm.JvmDecodeKernels;
import dev.kvpc.gpu.cl.OpenCl;
import dev.kvpc.gpu.kernels.OpenClDecodeKernels;
import dev.kvpc.runtime.engine.DecodeKernel;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.QuantSpec;

import java.util.Random;

/**
 * Decode attention on an OpenCL device (the lane kept there, {@code kvpc run --device opencl}'s kernel) against the
 * JVM backend's template kernel, timed in one JVM in alternating rounds ({@link Interleaved}) over the same lane:
 * each call is one decode step's attention for a group of query heads, with the fused column sums. Prints each side's
 * median time per call and the ratio, and checks the two agree.
 *
 * <p>{@code benchmarks/device-ab [f32|int4|int2] [entries] [rounds] [head dim] [group] [device]}; the device
 * as {@code kvpc devices} numbers them (default: the first GPU, else the first device).
 */
public final class DeviceAB {
    private DeviceAB() {}

    public static void main(String[] args) {
        String format = args.length > 0 ? args[0] : "f32";
        int n, rounds, d, g;
        try {
            n = args.length > 1 ? Integer.parseInt(args[1]) : 4096;
            rounds = args.length > 2 ? Integer.parseInt(args[2]) : 20;
            d = args.length > 3 ? Integer.parseInt(args[3]) : 128;
            g = args.length > 4 ? Integer.parseInt(args[4]) : 4;
        } catch (NumberFormatException e) {
            System.err.println("device-ab: " + e.getMessage() + ": entries, rounds, head dim and group are whole numbers");
            System.exit(64);
            return;
        }
        if (n < 1 || rounds < 3 || d < 2 || g < 1) {
            System.err.println("device-ab: at least 1 entry and 3 rounds, a head dim of at least 2 and a group of at least 1");
            System.exit(64);
        }
        QuantSpec spec;
        try {
            spec = Lanes.spec(format, d);
        } catch (IllegalArgumentException e) {
            System.err.println("device-ab: " + e.getMessage());
            System.exit(64);
            return;
        }
        DecodeKernel jvm = JvmDecodeKernels.template(d, g);
        if (jvm == null) {
            System.err.println("device-ab: the JVM template kernel needs the Vector API (--add-modules jdk.incubator.vector)");
            System.exit(69);
        }
        try (OpenClDecodeKernels device = new OpenClDecodeKernels(OpenCl.get().select(args.length > 5 ? args[5] : null)); PagePool pool = new PagePool()) {
            Random r = new Random(1);
            Lane lane = Lanes.random(pool, d, spec, n, r);
            DecodeKernel cl = device.kernel(d, g, lane.formatsInUse());
            float[] q = Lanes.gaussian(r, g * d), outA = new float[g * d], outB = new float[g * d];
            float[] colA = new float[n], colB = new float[n];
            int qpos = lane.position(n - 1);
            int calls = Math.max(5, 100_000 / n);
            // warm both: the device's first call sends the lane's pages; the JVM's compiles
            for (int w = 0; w < 10; w++) {
                for (int i = 0; i < calls; i++) {
                    cl.attend(lane, q, qpos, null, outA, colA);
                    jvm.attend(lane, q, qpos, null, outB, colB);
                }
            }
            double worst = 0, scale = 0;
            for (int i = 0; i < outA.length; i++) {
                worst = Math.max(worst, Math.abs(outA[i] - outB[i]));
                scale = Math.max(scale, Math.abs(outB[i]));
            }
            Interleaved.Result res = Interleaved.run(() -> time(cl, lane, q, qpos, outA, colA, calls), () -> time(jvm, lane, q, qpos, outB, colB, calls), rounds);
            System.out.printf(java.util.Locale.ROOT, "device: %s%n", device.device().summary());
            System.out.printf(java.util.Locale.ROOT, "decode attention, %s, %d entries, head dim %d, group %d, %d rounds of %d calls%n", spec, n, d, g, rounds, calls);
            System.out.printf(java.util.Locale.ROOT, "  OpenCL (lane on the device): %9.1f us/call%n", res.a());
            System.out.printf(java.util.Locale.ROOT, "  JVM template kernel:         %9.1f us/call%n", res.b());
            System.out.printf(java.util.Locale.ROOT, "  OpenCL / JVM: %.2f (10th-90th percentile of rounds %.2f-%.2f)%n", res.ratio(), res.ratioLow(), res.ratioHigh());
            System.out.printf(java.util.Locale.ROOT, "  outputs agree within %.1e of the largest (%.1e)%n", worst / Math.max(scale, 1e-30), scale);
            System.out.printf(java.util.Locale.ROOT, "  KV pages on the device: %d bytes%n", device.deviceKvBytes());
            lane.clear();
        }
    }

    private static double time(DecodeKernel k, Lane lane, float[] q, int qpos, float[] out, float[] col, int calls) {
        long t0 = System.nanoTime();
        for (int i = 0; i < calls; i++) k.attend(lane, q, qpos, null, out, col);
        return (System.nanoTime() - t0) / 1e3 / calls;
    }
}
