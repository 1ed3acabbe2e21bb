package dev.kvpc.bench;

import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.gpu.cl.OpenCl;
import dev.kvpc.gpu.kernels.OpenClDecodeKernels;
import dev.kvpc.gpu.kernels.ResidentDecodeKernel;
import dev.kvpc.runtime.engine.DecodeKernel;
import dev.kvpc.runtime.engine.DecodeKernelProvider;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;

import java.util.Random;

/**
 * A prefill's attention on an OpenCL device: the last {@code positions} positions of a lane of {@code entries} attend
 * in one call ({@code attendAll}), each masked at its own position, with work-groups taking a tile of 4 positions
 * (each row read once for the tile) against one position each, and against the JVM backend's kernel (a position at a
 * time), in alternating rounds in one JVM ({@link Interleaved}).
 *
 * <p>{@code benchmarks/device-prefill-ab [entries] [positions] [rounds] [head dim] [group] [device]}
 */
public final class DevicePrefillAB {
    private DevicePrefillAB() {}

    public static void main(String[] args) {
        int n, p, rounds, d, g;
        try {
            n = args.length > 0 ? Integer.parseInt(args[0]) : 1024;
            p = args.length > 1 ? Integer.parseInt(args[1]) : 256;
            rounds = args.length > 2 ? Integer.parseInt(args[2]) : 9;
            d = args.length > 3 ? Integer.parseInt(args[3]) : 64;
            g = args.length > 4 ? Integer.parseInt(args[4]) : 4;
        } catch (NumberFormatException e) {
            System.err.println("device-prefill-ab: " + e.getMessage() + ": sizes are whole numbers");
            System.exit(64);
            return;
        }
        if (p < 1 || p > n || rounds < 3) {
            System.err.println("device-prefill-ab: 1 to entries positions, at least 3 rounds");
            System.exit(64);
        }
        DecodeKernel jvm = DecodeKernelProvider.installed().kernel(d, g, QuantSpec.of(Precision.F32), QuantSpec.of(Precision.F32));
        try (ClContext cl = new ClContext(OpenCl.get().select(args.length > 5 ? args[5] : null)); PagePool pool = new PagePool()) {
            var lanes = OpenClDecodeKernels.deviceLanes(cl);
            ResidentDecodeKernel tiled = new ResidentDecodeKernel(cl, d, g, lanes, null, null), single = new ResidentDecodeKernel(cl, d, g, lanes, null, null, 1);
            Random r = new Random(3);
            Lane lane = Lanes.random(pool, d, QuantSpec.of(Precision.F32), n, r);
            float[] q = Lanes.gaussian(r, p * g * d);
            int[] qpos = new int[p];
            for (int i = 0; i < p; i++) qpos[i] = lane.position(n - p + i);
            float[] a = new float[p * g * d], b = new float[p * g * d], c = new float[p * g * d];
            for (int w = 0; w < 5; w++) {
                tiled.attendAll(lane, q, qpos, null, a, null, null, 0);
                single.attendAll(lane, q, qpos, null, b, null, null, 0);
                jvm.attendAll(lane, q, qpos, null, c, null, null, 0);
            }
            double worst = 0, scale = 0;
            for (int i = 0; i < a.length; i++) {
                worst = Math.max(worst, Math.max(Math.abs(a[i] - c[i]), Math.abs(b[i] - c[i])));
                scale = Math.max(scale, Math.abs(c[i]));
            }
            Interleaved.Result vsSingle = Interleaved.run(() -> time(tiled, lane, q, qpos, a), () -> time(single, lane, q, qpos, b), rounds);
            Interleaved.Result vsJvm = Interleaved.run(() -> time(tiled, lane, q, qpos, a), () -> time(jvm, lane, q, qpos, c), rounds);
            System.out.printf(java.util.Locale.ROOT, "device: %s%n", cl.device().summary());
            System.out.printf(java.util.Locale.ROOT, "prefill attention: %d positions over %d entries, head dim %d, group %d, %d rounds%n", p, n, d, g, rounds);
            System.out.printf(java.util.Locale.ROOT, "  OpenCL, tiles of positions: %10.1f us/call (%.2f of one position a work-group: %.1f us; 10th-90th %.2f-%.2f)%n", vsSingle.a(),
                    vsSingle.ratio(), vsSingle.b(), vsSingle.ratioLow(), vsSingle.ratioHigh());
            System.out.printf(java.util.Locale.ROOT, "  JVM kernel, a position at a time: %10.1f us/call (OpenCL tiled / JVM %.2f, 10th-90th %.2f-%.2f)%n", vsJvm.b(), vsJvm.ratio(),
                    vsJvm.ratioLow(), vsJvm.ratioHigh());
            System.out.printf(java.util.Locale.ROOT, "  outputs agree within %.1e of the largest%n", worst / Math.max(scale, 1e-30));
            lane.clear();
        }
    }

    private static double time(DecodeKernel k, Lane lane, float[] q, int[] qpos, float[] out) {
        long t0 = System.nanoTime();
        k.attendAll(lane, q, qpos, null, out, null, null, 0);
        return (System.nanoTime() - t0) / 1e3;
    }
}
