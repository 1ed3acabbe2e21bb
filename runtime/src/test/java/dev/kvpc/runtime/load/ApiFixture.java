package dev.kvpc.runtime.load;

/**
 * Stands in for a runtime API class in verifier tests that declare {@code dev/kvpc/runtime/load/ApiFixture} part of
 * the API: it declares {@link #answer()} and inherits {@code printStackTrace()} and friends from
 * {@link Throwable}, which the verifier must judge by their declaring class.
 */
public class ApiFixture extends IllegalStateException {
    private static final long serialVersionUID = 1L;

    public static int answer() {
        return 42;
    }
}
