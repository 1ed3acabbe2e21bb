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
}
