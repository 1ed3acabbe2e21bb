package dev.kvpc.gpu.kir;

/** Kernel IR text that does not parse, or a kernel the verifier refuses; the message says where and why. */
public final class KirException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public KirException(String message) {
        super(message);
    }
}
