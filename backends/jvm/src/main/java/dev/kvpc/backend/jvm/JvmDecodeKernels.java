package dev.kvpc.backend.jvm;

import dev.kvpc.runtime.engine.DecodeKernel;
import dev.kvpc.runtime.engine.DecodeKernelProvider;
import dev.kvpc.runtime.store.QuantSpec;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The JVM backend's {@link DecodeKernelProvider} (registered for {@link java.util.ServiceLoader}): kernels compiled by
 * {@link DecodeKernelCompiler}, each class generated once per shape and formats and shared by every sequence. Vector
 * API classes when {@code jdk.incubator.vector} is in the boot layer, scalar ones otherwise. Thread-safe.
 */
public final class JvmDecodeKernels implements DecodeKernelProvider {
    private record Key(int headDim, int group, QuantSpec keys, QuantSpec values) {}

    /** Remembers shapes whose kernel would be too large for HotSpot to compile (the runtime kernel runs them). */
    private static final DecodeKernelCompiler.Factory NO_KERNEL = () -> null;

    private final boolean vector;
    private final Map<Key, DecodeKernelCompiler.Factory> classes = new ConcurrentHashMap<>();
    /** f32 kernels for rows decoded into arrays: classes of their own (a hidden class is defined anew each time). */
    private final Map<Key, DecodeKernelCompiler.Factory> denseClasses = new ConcurrentHashMap<>();

    /** Vector API kernels where the JVM has the module (what {@link java.util.ServiceLoader} makes). */
    public JvmDecodeKernels() {
        this(true);
    }

    /** {@code vector} false: scalar kernels only. */
    public JvmDecodeKernels(boolean vector) {
        this.vector = vector && DecodeKernelCompiler.vectorApiAvailable();
    }

    /**
     * The template kernel ({@link DecodeTemplate}) where it reads both formats; else the class generated with ASM for
     * the pair (the scalar class without the Vector API; int4 groups narrower than a vector).
     */
    @Override
    public DecodeKernel kernel(int headDim, int group, QuantSpec keys, QuantSpec values) {
        if (vector && DecodeTemplates.supports(headDim, group, keys.equals(values) ? java.util.Set.of(keys) : java.util.Set.of(keys, values))) {
            return DecodeTemplates.kernel(headDim, group);
        }
        return kernel(classes, headDim, group, keys, values);
    }

    /** The template kernel, for any mix of formats it reads; null where it reads one of them not, or without the Vector API. */
    @Override
    public DecodeKernel kernel(int headDim, int group, java.util.Set<QuantSpec> formats) {
        if (!vector || !DecodeTemplates.supports(headDim, group, formats)) return null;
        return DecodeTemplates.kernel(headDim, group);
    }

    /**
     * The template kernel for this shape whatever the lane's formats (null where it reads none: no Vector API, or a
     * head dim that is not a multiple of 4); for benchmarks and tests that compare it with the generated kernels.
     */
    public static DecodeKernel template(int headDim, int group) {
        if (!DecodeKernelCompiler.vectorApiAvailable() || !DecodeTemplates.supports(headDim, group, java.util.Set.of())) return null;
        return DecodeTemplates.kernel(headDim, group);
    }

    /**
     * As {@link #template}, from another build's {@code DecodeTemplate.class} bytes, shaped by this build's rules; a
     * new class each call. For timing two builds side by side ({@code benchmarks/template-ab}).
     */
    public static DecodeKernel template(byte[] classBytes, int headDim, int group) {
        if (!DecodeKernelCompiler.vectorApiAvailable() || !DecodeTemplates.supports(headDim, group, java.util.Set.of())) return null;
        return DecodeTemplates.kernel(classBytes, headDim, group);
    }

    /** The template kernel (its f32 rows), else the generated f32 class of its own for rows read into arrays. */
    @Override
    public DecodeKernel denseKernel(int headDim, int group) {
        QuantSpec f32 = QuantSpec.of(dev.kvpc.runtime.store.Precision.F32);
        if (vector && DecodeTemplates.supports(headDim, group, java.util.Set.of(f32))) return DecodeTemplates.kernel(headDim, group);
        return kernel(denseClasses, headDim, group, f32, f32);
    }

    private DecodeKernel kernel(Map<Key, DecodeKernelCompiler.Factory> classes, int headDim, int group, QuantSpec keys, QuantSpec values) {
        if (!DecodeKernelCompiler.supports(headDim, group, keys, values)) return null;
        DecodeKernelCompiler.Factory f = classes.computeIfAbsent(new Key(headDim, group, keys, values), k -> {
            try {
                return DecodeKernelCompiler.compile(k.headDim, k.group, k.keys, k.values, vector);
            } catch (DecodeKernelCompiler.TooLargeException e) {
                return NO_KERNEL;
            }
        });
        return f == NO_KERNEL ? null : f.create();
    }
}
