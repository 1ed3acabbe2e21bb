package dev.kvpc.ir.spi;

import dev.kvpc.ir.Specialized;

import java.io.PrintWriter;

/**
 * What a backend offers the command line, found through {@link java.util.ServiceLoader} so the CLI never names
 * one. Backends implement it in their own module.
 */
public interface Backend {
    /** A short name users select it by ({@code interp}, {@code jvm}, ...). */
    String name();

    /**
     * This backend on the device {@code spec} names (a number, {@code P:D}, or part of a name, as {@code kvpc devices}
     * lists them).
     *
     * @throws UnsupportedOperationException when this backend runs on no device but the host
     */
    default Backend withDevice(String spec) {
        throw new UnsupportedOperationException("backend " + name() + " runs on the host; --device is for a device backend (opencl)");
    }

    /**
     * Runs a specialised program over a trace ({@code traceSpec}: a file, or {@code random:...}) and prints, per
     * step, what the first {@code lanes} lanes hold.
     *
     * @throws IllegalArgumentException for a trace that cannot be read or does not fit the program's model
     */
    void trace(Specialized program, String traceSpec, int lanes, PrintWriter out);

    /**
     * An object of type {@code api} (such as the runtime's {@code PolicyRunner}) that runs {@code program}, or null
     * when this backend does not offer that type. (The IR does not know the runtime's types; the caller names one.)
     */
    <R> R runner(Specialized program, Class<R> api);

    /**
     * The compiled form of {@code program} as a policy jar (its bytes), with a manifest of {@code manifest}'s keys
     * (everything but the entry class, which the backend adds); {@code source} names the {@code .kvp} file.
     *
     * @throws UnsupportedOperationException when this backend does not compile to jars
     * @throws IllegalArgumentException when the manifest is invalid or the program uses what the backend cannot compile
     */
    default byte[] compileJar(Specialized program, String source, java.util.Map<String, String> manifest) {
        throw new UnsupportedOperationException("backend " + name() + " does not write compiled policies");
    }

    /** A readable listing of the code {@link #compileJar} would write (bytecode, kernels). */
    default String listing(Specialized program, String source) {
        throw new UnsupportedOperationException("backend " + name() + " has no listing");
    }
}
