package dev.kvpc.runtime.pool;

/** The KV cache would exceed the limit its pool was given. */
public final class OutOfKvMemoryException extends RuntimeException {
    public OutOfKvMemoryException(String message) {
        super(message);
    }
}
