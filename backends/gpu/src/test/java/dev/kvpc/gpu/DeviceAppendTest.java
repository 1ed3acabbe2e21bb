package dev.kvpc.gpu;

import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.gpu.kernels.OpenClDecodeKernels;
import dev.kvpc.runtime.KvRuntime;
import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.Rope;
import dev.kvpc.runtime.Sequence;
import dev.kvpc.runtime.engine.DecodeKernelProvider;
import dev.kvpc.runtime.engine.HostArrays;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;
import org.junit.jupiter.api.Test;

import java.util.BitSet;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Keys and values appended on the device ({@code DeviceRowWriter}) from the device's copies of a host's arrays: the
 * lanes then hold, bit for bit, what the runtime's own appends write (keys rotated by RoPE in double, f16 rounded to
 * nearest even), through a prefill, decode steps, evictions between them and reads that bring pages back; and rows
 * stored at other formats on the device are what the runtime's codecs write (per-token integers of each width).
 */
class DeviceAppendTest {
    @Test
    void rowsAppendedOnTheDeviceAreTheRuntimesBitForBit() {
        for (Precision dtype : new Precision[] {Precision.F32, Precision.F16}) {
            for (Rope rope : new Rope[] {null, new Rope(10000.0), new Rope(500000.0, 2.0, null)}) {
                run(new ModelSpec(2, 4, 2, 16, dtype, rope), dtype + ", " + rope, new QuantSpec[0]);
            }
        }
    }

    /** Stores at other formats between the steps (each pair of formats is a kernel to build: a few per lane type). */
    @Test
    void rowsStoredAtOtherFormatsOnTheDeviceAreTheRuntimes() {
        run(new ModelSpec(2, 4, 2, 16, Precision.F32, new Rope(10000.0)), "f32 host rows", new QuantSpec[] {
            new QuantSpec(Precision.INT8, QuantSpec.Axis.TOKEN, 16), new QuantSpec(Precision.INT4, QuantSpec.Axis.TOKEN, 8),
            new QuantSpec(Precision.INT2, QuantSpec.Axis.TOKEN, 16), QuantSpec.of(Precision.F16)});
        run(new ModelSpec(1, 2, 1, 16, Precision.F16, null), "f16 host rows", new QuantSpec[] {
            new QuantSpec(Precision.INT4, QuantSpec.Axis.TOKEN, 16), new QuantSpec(Precision.INT2, QuantSpec.Axis.TOKEN, 4), QuantSpec.of(Precision.F32)}, true);
    }

    private static void run(ModelSpec spec, String what, QuantSpec[] stores) {
        run(spec, what, stores, false);
    }

    private static void run(ModelSpec spec, String what, QuantSpec[] stores, boolean everyPair) {
        int g = spec.kvHeads(), d = spec.headDim();
        try (ClContext cl = Devices.context(); PagePool p1 = new PagePool(); PagePool p2 = new PagePool();
             OpenClDecodeKernels kernels = new OpenClDecodeKernels(cl)) {
            HostArrays device = cl.arrays();
            Sequence host = new KvRuntime(spec, PolicyRunner.fullCache(), p1, 8, DecodeKernelProvider.NONE).newSequence();
            Sequence dev = new KvRuntime(spec, PolicyRunner.fullCache(), p2, 8, kernels).newSequence();
            Random r = new Random(3);
            int pos = 0;
            for (int step = 0; step < 30; step++) {
                int n = step == 0 ? 13 : 1 + (step % 7 == 0 ? 2 : 0);
                if (step == 0) {
                    host.beginPrefill(n);
                    dev.beginPrefill(n);
                } else if (n == 1) {
                    host.beginDecode();
                    dev.beginDecode();
                } else {
                    host.beginChunk(n);
                    dev.beginChunk(n);
                }
                for (int l = 0; l < spec.layers(); l++) {
                    float[] k = new float[n * g * d], v = new float[n * g * d], q = new float[n * spec.heads() * d];
                    for (int i = 0; i < k.length; i++) {
                        k[i] = (float) r.nextGaussian();
                        v[i] = (float) r.nextGaussian();
                    }
                    // rows a quantiser must get right: all equal (a zero scale), signed zeros, a wide range
                    if (step % 3 == 1) {
                        java.util.Arrays.fill(v, 0, d, 0.75f);
                        for (int i = d; i < 2 * d && i < v.length; i++) v[i] = (i % 2 == 0) ? -0.0f : 0.0f;
                        k[0] = 40f;
                        k[1] = -2.5e-6f;
                    }
                    host.append(l, k, v);
                    // the device holds its own copies of k and v: the host's are scrambled to prove they are not read
                    cl.arrays().read(k, k.length);
                    cl.arrays().read(v, v.length);
                    java.util.Arrays.fill(k, Float.NaN);
                    java.util.Arrays.fill(v, Float.NaN);
                    dev.append(l, k, v, device);
                    float[] o1 = new float[q.length], o2 = new float[q.length];
                    for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
                    host.attend(l, q, o1);
                    dev.attend(l, q, o2);
                    for (int i = 0; i < o1.length; i++) assertEquals(o1[i], o2[i], 1e-4f, what + ": output " + i + " at step " + step);
                }
                pos += n;
                if (step % 5 == 4) {
                    // an eviction on both (rows move within their chains), then some rows read back
                    for (int l = 0; l < spec.layers(); l++) {
                        for (int h = 0; h < g; h++) {
                            BitSet keep = new BitSet();
                            for (int i = 0; i < host.lane(l, h).size(); i++) if (r.nextInt(4) != 0) keep.set(i);
                            host.lane(l, h).retain(keep);
                            dev.lane(l, h).retain(keep);
                        }
                    }
                }
                if (step % 4 == 2 && stores.length > 0) {
                    // stores at other formats: re-stored on the device where the rows' newest bytes are there
                    for (int l = 0; l < spec.layers(); l++) {
                        for (int h = 0; h < g; h++) {
                            for (int i = 0; i < host.lane(l, h).size(); i++) {
                                if (r.nextInt(3) != 0) continue;
                                Lane.Part part = r.nextBoolean() ? Lane.Part.KEYS : Lane.Part.VALUES;
                                // from the host's format only, but in the last run (a kernel to build per pair of formats)
                                if (!everyPair && !host.lane(l, h).spec(i, part).equals(QuantSpec.of(spec.dtype()))) continue;
                                QuantSpec to = stores[r.nextInt(stores.length)];
                                host.lane(l, h).restore(i, part, to);
                                dev.lane(l, h).restore(i, part, to);
                            }
                        }
                    }
                }
                if (step % 3 == 0) same(host, dev, spec, what + " at step " + step);
            }
            same(host, dev, spec, what + " at the end");
            assertTrue(kernels.rowWriter().rowsWritten() > 0, "rows were written on the device");
            assertEquals(stores.length > 0, kernels.rowWriter().rowsConverted() > 0, "rows re-stored on the device");
            host.close();
            dev.close();
        }
    }

    /** The lanes of {@code a} and {@code b} hold the same entries, counts, formats and rows, bit for bit. */
    static void same(Sequence a, Sequence b, ModelSpec spec, String what) {
        float[] x = new float[spec.headDim()], y = new float[spec.headDim()];
        for (int l = 0; l < spec.layers(); l++) {
            for (int h = 0; h < spec.kvHeads(); h++) {
                Lane la = a.lane(l, h), lb = b.lane(l, h);
                assertEquals(la.size(), lb.size(), what);
                for (int i = 0; i < la.size(); i++) {
                    assertEquals(la.position(i), lb.position(i), what);
                    assertEquals(la.count(i), lb.count(i), what + ": count of entry " + i);
                    for (Lane.Part p : Lane.Part.values()) {
                        assertEquals(la.spec(i, p), lb.spec(i, p), what);
                        la.read(i, p, x, 0);
                        lb.read(i, p, y, 0);
                        assertArrayEquals(x, y, what + ": layer " + l + " head " + h + " entry " + i + " " + p);
                    }
                }
            }
        }
    }
}
