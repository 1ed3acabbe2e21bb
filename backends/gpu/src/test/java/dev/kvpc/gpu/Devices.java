package dev.kvpc.gpu;

import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.gpu.cl.ClDevice;
import dev.kvpc.gpu.cl.OpenCl;
import org.junit.jupiter.api.Assumptions;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * The OpenCL device the tests run on. Where none is found the tests are skipped, except where {@code CI} or
 * {@code KVPC_REQUIRE_OPENCL} is set (CI installs PoCL, so there a missing platform is a failure, not a skip).
 * {@code KVPC_OPENCL_DEVICE} picks a device as {@code kvpc devices} numbers them (default: the first GPU, else the first).
 */
public final class Devices {
    private static ClDevice device;

    private Devices() {
    }

    public static synchronized ClDevice device() {
        if (device != null) return device;
        String why;
        try {
            device = OpenCl.get().select(System.getenv("KVPC_OPENCL_DEVICE"));
            return device;
        } catch (RuntimeException e) {
            why = e.getMessage();
        }
        boolean required = System.getenv("CI") != null || System.getenv("KVPC_REQUIRE_OPENCL") != null;
        if (required) fail("no OpenCL device, and CI or KVPC_REQUIRE_OPENCL is set: " + why);
        // a developer's machine without OpenCL skips the device tests, saying why; CI sets KVPC_REQUIRE_OPENCL and fails above
        Assumptions.assumeTrue(false, "no OpenCL device: " + why);
        return null;
    }

    public static ClContext context() {
        return new ClContext(device());
    }
}
