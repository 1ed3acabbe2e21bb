package dev.kvpc.gpu;

import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.gpu.cl.ClDevice;
import dev.kvpc.gpu.cl.ClException;
import dev.kvpc.gpu.cl.OpenCl;
import dev.kvpc.gpu.emit.CEmitter;
import dev.kvpc.gpu.emit.Dialect;
import dev.kvpc.gpu.kir.KirText;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The OpenCL host layer on the device the tests run on: listing, selection, building, buffers, atomics. */
class OpenClTest {
    @Test
    void listsAndSelectsDevices() {
        ClDevice d = Devices.device();
        List<ClDevice> all = OpenCl.get().devices();
        assertTrue(all.contains(d));
        assertTrue(d.computeUnits() > 0 && d.globalMemBytes() > 0 && d.maxWorkGroupSize() > 0, d.summary());
        assertEquals(all.get(0), OpenCl.get().select("0"));
        assertEquals(d, OpenCl.get().select(d.platformIndex() + ":" + d.deviceIndex()));
        assertEquals(d.platformIndex(), OpenCl.get().select(d.name().substring(0, Math.min(6, d.name().length())).toUpperCase()).platformIndex());
        ClException e = assertThrows(ClException.class, () -> OpenCl.get().select("no-such-device-anywhere"));
        assertTrue(e.getMessage().startsWith("no OpenCL device matches 'no-such-device-anywhere'; the devices are:\n  0 ("), e.getMessage());
    }

    @Test
    void aProgramThatDoesNotBuildCarriesItsLog() {
        try (ClContext cl = Devices.context()) {
            ClException e = assertThrows(ClException.class, () -> cl.build("__kernel void k(__global float* x) { x[0] = undefined_name; }", "", "a broken program"));
            assertEquals(-11, e.code());
            assertTrue(e.getMessage().startsWith("building a broken program for "), e.getMessage());
            assertTrue(e.buildLog().contains("undefined_name"), e.buildLog());
        }
    }

    /** The shipped kernels, staged and resident (every format, keys rotated by slot), build without a warning. */
    @Test
    void shippedKernelsBuildWithoutWarnings() {
        java.util.List<dev.kvpc.runtime.store.QuantSpec> all = java.util.List.of(dev.kvpc.runtime.store.QuantSpec.of(dev.kvpc.runtime.store.Precision.F32),
                dev.kvpc.runtime.store.QuantSpec.of(dev.kvpc.runtime.store.Precision.F16), dev.kvpc.runtime.store.QuantSpec.of(dev.kvpc.runtime.store.Precision.BF16),
                dev.kvpc.runtime.store.QuantSpec.resolve(dev.kvpc.runtime.store.Precision.INT4, dev.kvpc.runtime.store.QuantSpec.Axis.TOKEN, 32, 64),
                dev.kvpc.runtime.store.QuantSpec.resolve(dev.kvpc.runtime.store.Precision.INT2, dev.kvpc.runtime.store.QuantSpec.Axis.CHANNEL, 32, 64));
        try (ClContext cl = Devices.context()) {
            for (String src : new String[] {CEmitter.emit(dev.kvpc.gpu.kernels.DecodeAttention.module(64, 4, 64, 256), Dialect.OPENCL),
                    CEmitter.emit(dev.kvpc.gpu.kernels.ResidentDecodeKernel.module(64, 4, 64, 256, all, 16, true), Dialect.OPENCL)}) {
                String log = cl.build(src, "-cl-std=CL1.2", "a shipped kernel").buildLog();
                assertFalse(log.toLowerCase(java.util.Locale.ROOT).contains("warning"), log);
            }
        }
    }

    /** A shape whose work-group fits no device's local memory gets no kernel: the runtime's own serves it. */
    @Test
    void shapesTooLargeForLocalMemoryFallBack() {
        try (dev.kvpc.gpu.kernels.OpenClDecodeKernels k = new dev.kvpc.gpu.kernels.OpenClDecodeKernels(Devices.device())) {
            dev.kvpc.runtime.store.QuantSpec f32 = dev.kvpc.runtime.store.QuantSpec.of(dev.kvpc.runtime.store.Precision.F32);
            assertNull(k.kernel(4096, 16, java.util.Set.of(f32)));
            assertNull(k.denseKernel(4096, 16));
            assertNotNull(k.kernel(128, 8, java.util.Set.of(f32)));
        }
    }

    /** An emitted kernel runs: every work-item scales its element, and float and int atomics add up exactly. */
    @Test
    void emittedKernelsRunWithAtomics() {
        String src = """
                kernel scale [group 16] (buffer float x, out buffer float y, out buffer float sum, out buffer int count, int n, float a) {
                  local float part[1];
                  let int i = global_id(0);
                  if (local_id(0) == 0) {
                    store part[0] = 0.0f;
                  }
                  barrier;
                  if (i < n) {
                    store y[i] = (a * x[i]);
                    atomic part[0] += 1.0f;
                    atomic count[0] += 1;
                  }
                  barrier;
                  if (local_id(0) == 0) {
                    atomic sum[0] += part[0];
                  }
                }
                """;
        String c = CEmitter.emit(KirText.parse(src), Dialect.OPENCL);
        try (ClContext cl = Devices.context()) {
            ClContext.Kernel k = cl.build(c, "", "the scale test").kernel("scale");
            int n = 1000;
            float[] x = new float[n];
            for (int i = 0; i < n; i++) x[i] = i * 0.5f;
            ClContext.Buffer bx = cl.buffer(4L * n, "x"), by = cl.buffer(4L * n, "y"), bs = cl.buffer(4, "sum"), bc = cl.buffer(4, "count");
            bx.write(x);
            bs.write(new float[] {0});
            bc.write(new int[] {0});
            k.arg(0, bx).arg(1, by).arg(2, bs).arg(3, bc).arg(4, n).arg(5, 3f);
            k.launch(new long[] {1008}, new long[] {16});
            float[] y = new float[n], s = new float[1];
            by.read(y);
            bs.read(s);
            for (int i = 0; i < n; i++) assertEquals(x[i] * 3f, y[i], 0f, "y[" + i + "]");
            assertEquals(1000f, s[0], 0f, "work-items that added 1 each, through local then global float atomics");
            float[] count = new float[1];
            bc.read(count);
            assertEquals(1000, Float.floatToRawIntBits(count[0]), "the int atomic's count");
            assertTrue(cl.bufferBytes() >= 8L * n);
        }
    }
}
