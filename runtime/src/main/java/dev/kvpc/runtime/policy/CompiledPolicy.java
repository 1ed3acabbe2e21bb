package dev.kvpc.runtime.policy;

/**
 * The entry class of a compiled policy jar ({@code entry.class} in its manifest): the specialised program the
 * event machinery runs (lane map, lane classes, states, handlers, attention variant, in the IR's text form), the
 * compiled code of each lane class and of its attention variant. The runtime runs it with
 * {@link dev.kvpc.runtime.exec.NativeRunner#of}.
 */
public interface CompiledPolicy {
    /** The specialised program as IR text ({@code Specialized.print()}). */
    String program();

    /** How many lane classes there are. */
    int laneClasses();

    /** A new instance of lane class {@code c}'s compiled code. */
    CompiledLaneClass laneClass(int c);

    /** The program's attention variant, compiled; null when it attends with standard attention. */
    default dev.kvpc.runtime.AttentionVariant variant() {
        return null;
    }
}
