package dev.kvpc.gpu.kir;

import java.util.List;

/**
 * One kernel: parameters (buffers and scalars), the work-group's local arrays, the body every work-item runs, and the
 * work-group size it requires (0: any). Launch geometry is the host's.
 */
public record Kernel(String name, int groupSize, List<Param> params, List<LocalArray> locals, List<Stmt> body) {
    public Kernel {
        params = List.copyOf(params);
        locals = List.copyOf(locals);
        body = List.copyOf(body);
    }

    public sealed interface Param {
        String name();
    }

    /** A global buffer of {@code elem}; {@code writable} buffers may be stored to. */
    public record BufferParam(String name, KType elem, boolean writable) implements Param {
    }

    /** An int or float passed by value. */
    public record ScalarParam(String name, KType type) implements Param {
    }

    /**
     * An array of {@code size} elements: in the work-group's local memory, shared by its work-items, or private to
     * each work-item ({@code shared} false: registers or the stack, for per-head accumulators).
     */
    public record LocalArray(String name, KType elem, int size, boolean shared) {
        public LocalArray(String name, KType elem, int size) {
            this(name, elem, size, true);
        }
    }
}
