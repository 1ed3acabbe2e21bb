package dev.kvpc.gpu.kir;

import java.util.List;

/** A compilation unit of kernels: what one OpenCL program (or one CUDA module) holds. */
public record KirModule(List<Kernel> kernels) {
    public KirModule {
        kernels = List.copyOf(kernels);
    }

    public Kernel kernel(String name) {
        for (Kernel k : kernels) if (k.name().equals(name)) return k;
        throw new IllegalArgumentException("no kernel " + name);
    }
}
