package dev.kvpc.gpu;

import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.gpu.emit.CEmitter;
import dev.kvpc.gpu.emit.Dialect;
import dev.kvpc.gpu.kernels.ScalarFns;
import dev.kvpc.gpu.kir.KType;
import dev.kvpc.gpu.kir.KirText;
import dev.kvpc.ir.Op;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The device's spelling of each of the IR's scalar functions ({@link ScalarFns}, in float for attention variants and
 * in double for policy kernels) against their meaning, {@link Op.Fn1#apply} and {@link Op.Fn2#apply}, on values that
 * probe their edges (zero and negative zero, NaN, infinities, halves for truncation, large magnitudes): run on the
 * device, each result equals {@code apply}'s (rounded to float for floats), within 2 ulps for the transcendental ones
 * (the device's exp, log, tanh, pow are its own), NaN where it is NaN.
 */
class ScalarFnsTest {
    static final double[] VALUES = {0, -0.0, 1, -1, 0.5, -0.5, 2.5, -2.5, 3, 1e-3, -7.75, 100, 1e7, -1e9, 1e30, 3e17, -1e19, 4503599627370497.5,
        Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, Double.NaN};

    @Test
    void everyFloatFunctionMeansWhatApplySays() {
        check(ScalarFns.FLOAT);
    }

    @Test
    void everyDoubleFunctionMeansWhatApplySays() {
        check(ScalarFns.DOUBLE);
    }

    private static void check(ScalarFns fns) {
        boolean dbl = fns.type() == KType.DOUBLE;
        String t = fns.type().text;
        int n = VALUES.length;
        // one kernel: work-item i computes every function at (a, b) = (VALUES[i / n], VALUES[i % n])
        StringBuilder body = new StringBuilder("  let int i = global_id(0);\n  let " + t + " a = xs[(i / " + n + ")];\n  let " + t + " b = xs[(i % " + n + ")];\n");
        int k = 0;
        for (Op.Fn1 f : Op.Fn1.values()) body.append("  store out[((i * F) + ").append(k++).append(")] = ").append(fns.fn1(f, "a")).append(";\n");
        for (Op.Fn2 f : Op.Fn2.values()) body.append("  store out[((i * F) + ").append(k++).append(")] = ").append(fns.fn2(f, "a", "b")).append(";\n");
        int count = k;
        String src = "kernel fns (buffer " + t + " xs, out buffer " + t + " out) {\n" + body + "}\n";
        String c = CEmitter.emit(KirText.parse(src, java.util.Map.of("F", count)), Dialect.OPENCL);
        double[] out = new double[n * n * count];
        try (ClContext cl = Devices.context()) {
            ClContext.Kernel kernel = cl.build(c, "-cl-std=CL1.2", "the scalar functions").kernel("fns");
            int bytes = dbl ? 8 : 4;
            ClContext.Buffer xs = cl.buffer((long) bytes * n, "inputs"), res = cl.buffer((long) bytes * out.length, "results");
            if (dbl) {
                xs.write(VALUES);
            } else {
                float[] f = new float[n];
                for (int i = 0; i < n; i++) f[i] = (float) VALUES[i];
                xs.write(f);
            }
            kernel.arg(0, xs).arg(1, res);
            kernel.launch(new long[] {(long) n * n}, null);
            if (dbl) {
                res.read(out);
            } else {
                float[] f = new float[out.length];
                res.read(f);
                for (int i = 0; i < f.length; i++) out[i] = f[i];
            }
        }
        List<String> wrong = new ArrayList<>();
        for (int i = 0; i < n * n; i++) {
            double a = round(VALUES[i / n], dbl), b = round(VALUES[i % n], dbl);
            int j = 0;
            for (Op.Fn1 f : Op.Fn1.values()) check(wrong, f.name() + "(" + a + ")", round(f.apply(a), dbl), out[i * count + j++], transcendental(f.name()), dbl);
            for (Op.Fn2 f : Op.Fn2.values()) check(wrong, f.name() + "(" + a + ", " + b + ")", round(f.apply(a, b), dbl), out[i * count + j++], transcendental(f.name()), dbl);
        }
        assertEquals(List.of(), wrong, t + " device results that differ from apply");
    }

    private static double round(double v, boolean dbl) {
        return dbl ? v : (float) v;
    }

    static boolean transcendental(String name) {
        return List.of("EXP", "LOG", "TANH", "SIGMOID", "POW", "SQRT").contains(name);
    }

    static void check(List<String> wrong, String what, double expected, double actual, boolean approximate, boolean dbl) {
        double ulp = dbl ? Math.ulp(expected) : Math.ulp((float) expected);
        boolean same = Double.isNaN(expected) ? Double.isNaN(actual)
                : Double.doubleToLongBits(expected) == Double.doubleToLongBits(actual) || approximate && Math.abs(expected - actual) <= 2 * ulp;
        if (!same) wrong.add(what + ": apply " + expected + ", device " + actual);
    }
}
