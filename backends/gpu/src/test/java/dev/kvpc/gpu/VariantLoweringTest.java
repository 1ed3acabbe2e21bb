package dev.kvpc.gpu;

import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.gpu.emit.CEmitter;
import dev.kvpc.gpu.emit.Dialect;
import dev.kvpc.gpu.kir.KirText;
import dev.kvpc.ir.Op;
import org.junit.jupiter.api.Test;

import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The device's spelling of each of the IR's scalar functions ({@code VariantLowering.fn1}, {@code fn2}) against
 * their meaning, {@link Op.Fn1#apply} and {@link Op.Fn2#apply}, on values that probe their edges (zero and negative
 * zero, NaN, infinities, halves for truncation, large magnitudes): run on the device, each result equals
 * {@code apply}'s rounded to float, within 2 ulps for the transcendental ones (the device's exp, log, tanh, pow are
 * its own), NaN where it is NaN.
 */
class VariantLoweringTest {
    static final float[] VALUES = {0f, -0f, 1f, -1f, 0.5f, -0.5f, 2.5f, -2.5f, 3f, 1e-3f, -7.75f, 100f, 1e7f, -1e9f, 1e30f,
        Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN};

    @Test
    void everyScalarFunctionMeansWhatApplySays() throws Exception {
        Method fn1 = Class.forName("dev.kvpc.gpu.kernels.VariantLowering").getDeclaredMethod("fn1", Op.Fn1.class, String.class);
        Method fn2 = Class.forName("dev.kvpc.gpu.kernels.VariantLowering").getDeclaredMethod("fn2", Op.Fn2.class, String.class, String.class);
        fn1.setAccessible(true);
        fn2.setAccessible(true);
        int n = VALUES.length;
        // one kernel: work-item i computes every function at (a, b) = (VALUES[i / n], VALUES[i % n])
        List<String> names = new ArrayList<>();
        StringBuilder body = new StringBuilder("  let int i = global_id(0);\n  let float a = xs[(i / " + n + ")];\n  let float b = xs[(i % " + n + ")];\n");
        int k = 0;
        for (Op.Fn1 f : Op.Fn1.values()) {
            body.append("  store out[((i * F) + ").append(k++).append(")] = ").append(fn1.invoke(null, f, "a")).append(";\n");
            names.add(f.name());
        }
        for (Op.Fn2 f : Op.Fn2.values()) {
            body.append("  store out[((i * F) + ").append(k++).append(")] = ").append(fn2.invoke(null, f, "a", "b")).append(";\n");
            names.add(f.name());
        }
        int fns = k;
        String src = "kernel fns (buffer float xs, out buffer float out) {\n" + body + "}\n";
        String c = CEmitter.emit(KirText.parse(src, java.util.Map.of("F", fns)), Dialect.OPENCL);
        float[] out = new float[n * n * fns];
        try (ClContext cl = Devices.context()) {
            ClContext.Kernel kernel = cl.build(c, "-cl-std=CL1.2", "the scalar functions").kernel("fns");
            ClContext.Buffer xs = cl.buffer(4L * n, "inputs"), res = cl.buffer(4L * out.length, "results");
            xs.write(VALUES);
            kernel.arg(0, xs).arg(1, res);
            kernel.launch(new long[] {(long) n * n}, null);
            res.read(out);
        }
        List<String> wrong = new ArrayList<>();
        for (int i = 0; i < n * n; i++) {
            float a = VALUES[i / n], b = VALUES[i % n];
            int j = 0;
            for (Op.Fn1 f : Op.Fn1.values()) check(wrong, f.name() + "(" + a + ")", (float) f.apply(a), out[i * fns + j++], transcendental(f.name()));
            for (Op.Fn2 f : Op.Fn2.values()) check(wrong, f.name() + "(" + a + ", " + b + ")", (float) f.apply(a, b), out[i * fns + j++], transcendental(f.name()));
        }
        assertEquals(List.of(), wrong, "device results that differ from apply");
    }

    static boolean transcendental(String name) {
        return List.of("EXP", "LOG", "TANH", "SIGMOID", "POW", "SQRT").contains(name);
    }

    static void check(List<String> wrong, String what, float expected, float actual, boolean approximate) {
        if (Float.isNaN(expected) ? Float.isNaN(actual) : expected == actual || approximate && Math.abs(expected - actual) <= 2 * Math.ulp(expected)) return;
        if (Float.isNaN(expected) != Float.isNaN(actual) || !approximate || Math.abs(expected - actual) > 2 * Math.ulp(expected)) {
            wrong.add(what + ": apply " + expected + ", device " + actual);
        }
    }
}
