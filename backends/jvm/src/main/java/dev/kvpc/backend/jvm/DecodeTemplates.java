package dev.kvpc.backend.jvm;

import dev.kvpc.runtime.engine.DecodeKernel;
import dev.kvpc.runtime.store.QuantSpec;

import java.io.IOException;
import java.io.InputStream;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.Collection;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Specialises {@link DecodeTemplate} per shape: its class file, read once from the class path, is defined as a hidden
 * class whose class data is {@code {headDim, group, lanes, heads per block}}; the template's static finals take
 * them, so each specialisation is compiled by the JIT as if written for that shape. No code is generated: defining a
 * class costs well under a millisecond.
 */
final class DecodeTemplates {
    private DecodeTemplates() {}

    private static final byte[] TEMPLATE = template();
    private static final Map<Long, MethodHandle> CLASSES = new ConcurrentHashMap<>();
    /** Widest float lanes the kernels use: this JVM's preferred species. */
    static final int MAX_LANES = DecodeKernelCompiler.vectorApiAvailable() ? DecodeKernelCompiler.preferredVectorBits() / 32 : 0;

    private static byte[] template() {
        try (InputStream in = DecodeTemplates.class.getResourceAsStream("DecodeTemplate.class")) {
            if (in == null) throw new IllegalStateException("DecodeTemplate.class is not on the class path");
            return in.readAllBytes();
        } catch (IOException e) {
            throw new IllegalStateException("DecodeTemplate.class could not be read", e);
        }
    }

    /** Float lanes for this head dim: the widest power of two up to {@link #MAX_LANES} dividing it, at least 4; else 0. */
    static int lanes(int headDim) {
        for (int l = MAX_LANES; l >= 4; l /= 2) if (headDim % l == 0) return l;
        return 0;
    }

    /** Heads per block: the largest divisor of the group up to 4. */
    static int headBlock(int group) {
        for (int b = Math.min(4, group); b > 1; b--) if (group % b == 0) return b;
        return 1;
    }

    /** Whether a kernel of this head dim reads chains of {@code spec}: f32, f16, bf16, or int8/4/2 whose groups are whole chunks. */
    static boolean reads(int headDim, QuantSpec spec) {
        int lanes = lanes(headDim);
        if (lanes == 0) return false;
        if (!spec.quantised()) return true; // f32, f16, bf16

        return spec.axis() == QuantSpec.Axis.CHANNEL || spec.group() % lanes == 0;
    }

    /** Whether a kernel for this shape reads every one of {@code formats}. */
    static boolean supports(int headDim, int group, Collection<QuantSpec> formats) {
        if (group < 1 || group > DecodeKernelCompiler.MAX_GROUP || lanes(headDim) == 0) return false;
        for (QuantSpec f : formats) if (!reads(headDim, f)) return false;
        return true;
    }

    /** A new kernel (its own scratch) of the class specialised to this head dim and group. */
    static DecodeKernel kernel(int headDim, int group) {
        MethodHandle ctor = CLASSES.computeIfAbsent((long) headDim << 32 | group, k -> define(headDim, group));
        try {
            return (DecodeKernel) ctor.invoke();
        } catch (Throwable e) {
            throw new IllegalStateException("decode kernel for head dim " + headDim + " could not be made", e);
        }
    }

    /**
     * A new kernel of the class {@code classBytes} (a build of {@link DecodeTemplate}, not necessarily this one)
     * specialised to this head dim and group, defined anew each time: for comparing builds.
     */
    static DecodeKernel kernel(byte[] classBytes, int headDim, int group) {
        try {
            return (DecodeKernel) define(classBytes, headDim, group).invoke();
        } catch (Throwable e) {
            throw new IllegalStateException("decode kernel for head dim " + headDim + " could not be made", e);
        }
    }

    private static MethodHandle define(int headDim, int group) {
        return define(TEMPLATE, headDim, group);
    }

    private static MethodHandle define(byte[] classBytes, int headDim, int group) {
        int[] shape = {headDim, group, lanes(headDim), headBlock(group)};
        try {
            MethodHandles.Lookup l = MethodHandles.lookup().defineHiddenClassWithClassData(classBytes, shape, true);
            return l.findConstructor(l.lookupClass(), MethodType.methodType(void.class));
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("decode kernel for head dim " + headDim + " could not be defined", e);
        }
    }

    /**
     * The shift of {@code n / d} as a multiply and a shift, for {@code 0 <= n < 2^31} and {@code d >= 1}:
     * {@code 32 + ceil(log2 d)}.
     */
    static int divShift(int d) {
        if (d < 1) throw new IllegalArgumentException("divisor " + d);
        return 32 + (32 - Integer.numberOfLeadingZeros(d - 1));
    }

    /**
     * The multiplier {@code ceil(2^divShift(d) / d)}: then {@code n / d == (n * m) >>> divShift(d)} for every
     * {@code 0 <= n < 2^31} (the round-up method: the multiplier has 33 bits, the product fits 64 unsigned).
     */
    static long divMagic(int d) {
        long p = 1L << divShift(d); // 2^63 at most: read as unsigned
        return Long.divideUnsigned(p, d) + (Long.remainderUnsigned(p, d) == 0 ? 0 : 1);
    }
}
