package dev.kvpc.gpu;

import dev.kvpc.backend.interp.PassPreservationTest;
import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.gpu.kernels.OpenClDecodeKernels;
import dev.kvpc.gpu.policy.ClPolicies;
import dev.kvpc.ir.Specialized;
import dev.kvpc.runtime.KvRuntime;
import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.Rope;
import dev.kvpc.runtime.Sequence;
import dev.kvpc.runtime.engine.HostArrays;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Policies that merge and store where the lanes' rows are on the device (appended there from the device's copies of
 * the keys and values): d2o and cam (merges by cosine into kept entries), razor (into the compensation entry),
 * mixed (stores at f16 and int per token group) and kivi (keys packed in blocks per channel, values per token) run on
 * host lanes and on device lanes through the same steps; the lanes' entries, counts and rows are the same bit for
 * bit, and the device made the merges, stores and blocks.
 */
class DeviceMergeTest {
    @TempDir
    static Path stdlib;

    @TestFactory
    Stream<DynamicTest> mergesAndStoresOnTheDeviceAreTheRuntimes() throws Exception {
        Map<String, Specialized> all = PassPreservationTest.specialised(stdlib);
        return Stream.of("d2o", "cam", "razor", "mixed", "kivi").map(name -> DynamicTest.dynamicTest(name, () -> run(name, all.get(name))));
    }

    private static void run(String name, Specialized s) {
        assertNotNull(s, name);
        ModelSpec spec = new ModelSpec(2, 4, 2, 32, Precision.F32, new Rope(10000.0));
        int g = spec.kvHeads(), d = spec.headDim();
        try (ClContext cl = Devices.context(); PagePool p1 = new PagePool(); PagePool p2 = new PagePool();
             OpenClDecodeKernels kernels = new OpenClDecodeKernels(cl); OpenClDecodeKernels hostsKernels = new OpenClDecodeKernels(Devices.device())) {
            HostArrays device = cl.arrays();
            // attention on the device for both (the policies' weights are its column sums: the same kernel gives the same
            // bits); the host's sequence appends, merges and stores on the host
            Sequence host = new KvRuntime(spec, ClPolicies.runner(s, cl).runner(), p1, 8, hostsKernels).newSequence();
            Sequence dev = new KvRuntime(spec, ClPolicies.runner(s, cl).runner(), p2, 8, kernels).newSequence();
            Random r = new Random(11);
            for (int step = 0; step < 70; step++) {
                int n = step == 0 ? 30 : 1;
                if (step == 0) {
                    host.beginPrefill(n);
                    dev.beginPrefill(n);
                } else {
                    host.beginDecode();
                    dev.beginDecode();
                }
                for (int l = 0; l < spec.layers(); l++) {
                    float[] k = new float[n * g * d], v = new float[n * g * d], q = new float[n * spec.heads() * d];
                    for (int i = 0; i < k.length; i++) {
                        // a few directions shared by many keys, so cosines are close and merges choose among near ties
                        k[i] = (float) (r.nextGaussian() * 0.3 + ((i / d) % 3 == 0 ? 1.0 : 0.0));
                        v[i] = (float) r.nextGaussian();
                    }
                    for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
                    host.append(l, k, v);
                    cl.arrays().read(k, k.length);
                    cl.arrays().read(v, v.length);
                    dev.append(l, k, v, device);
                    float[] o1 = new float[q.length], o2 = new float[q.length];
                    host.attend(l, q, o1);
                    dev.attend(l, q, o2);
                }
            }
            DeviceAppendTest.same(host, dev, spec, name);
            switch (name) {
                case "mixed" -> assertTrue(kernels.rowWriter().rowsConverted() > 0, name + ": stores made on the device");
                case "kivi" -> assertTrue(kernels.rowWriter().blocksPacked() > 0, name + ": blocks packed on the device");
                default -> assertTrue(kernels.rowWriter().rowsMerged() > 0, name + ": merges made on the device");
            }
            host.close();
            dev.close();
        }
    }
}
