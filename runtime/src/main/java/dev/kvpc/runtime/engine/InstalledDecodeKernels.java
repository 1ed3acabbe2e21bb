package dev.kvpc.runtime.engine;

import java.util.ServiceLoader;

/**
 * {@link DecodeKernelProvider#installed()}'s provider, looked up on first use and kept: loading it per runtime made
 * every new sequence generate its kernel classes anew, and run them cold (interpreted) until the JIT caught up.
 */
final class InstalledDecodeKernels {
    static final DecodeKernelProvider PROVIDER = ServiceLoader.load(DecodeKernelProvider.class, DecodeKernelProvider.class.getClassLoader())
            .findFirst().orElse(DecodeKernelProvider.NONE);

    private InstalledDecodeKernels() {
    }
}
