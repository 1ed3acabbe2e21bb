package dev.kvpc.backend.interp;

/** A program or trace the reference interpreter cannot run, with the reason. */
public final class InterpreterException extends RuntimeException {
    public InterpreterException(String message) {
        super(message);
    }
}
