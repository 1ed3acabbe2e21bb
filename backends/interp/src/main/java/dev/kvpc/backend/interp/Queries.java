package dev.kvpc.backend.interp;

/** Where the interpreter reads queries: a trace, or the host's query buffer of the current step. */
@FunctionalInterface
interface Queries {
    float[] query(int layer, int position, int head);
}
