package dev.kvpc.gpu.cl;

import java.lang.foreign.MemorySegment;

/**
 * One OpenCL device as {@link OpenCl#devices()} lists it: its index in that list, its platform's and its own index,
 * names and the properties kvpc sizes kernels by.
 */
public record ClDevice(int index, int platformIndex, int deviceIndex, String platformName, String platformVersion, String name,
                       String vendor, String version, String type, int computeUnits, long globalMemBytes, long localMemBytes,
                       long maxWorkGroupSize, boolean fp64, boolean fp16, MemorySegment platformId, MemorySegment id) {

    /** One line: {@code 0 (0:0) GPU NVIDIA H100 [NVIDIA CUDA, OpenCL 3.0], 132 compute units, 79.6 GiB}. */
    public String summary() {
        return String.format(java.util.Locale.ROOT, "%d (%d:%d) %s %s [%s, %s], %d compute units, %.1f GiB, local %d KiB, work-groups up to %d",
                index, platformIndex, deviceIndex, type, name, platformName, version, computeUnits, globalMemBytes / (double) (1L << 30),
                localMemBytes >> 10, maxWorkGroupSize);
    }
}
