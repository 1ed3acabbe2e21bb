package dev.kvpc.gpu.cl;

import java.util.Map;

/**
 * An OpenCL call that failed: the call, its error code by name, and what kvpc was doing. A program that does not
 * build carries the device's build log ({@link #buildLog}).
 */
public final class ClException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private static final Map<Integer, String> NAMES = Map.ofEntries(
            Map.entry(-1, "CL_DEVICE_NOT_FOUND"), Map.entry(-2, "CL_DEVICE_NOT_AVAILABLE"),
            Map.entry(-3, "CL_COMPILER_NOT_AVAILABLE"), Map.entry(-4, "CL_MEM_OBJECT_ALLOCATION_FAILURE"),
            Map.entry(-5, "CL_OUT_OF_RESOURCES"), Map.entry(-6, "CL_OUT_OF_HOST_MEMORY"),
            Map.entry(-11, "CL_BUILD_PROGRAM_FAILURE"), Map.entry(-30, "CL_INVALID_VALUE"),
            Map.entry(-32, "CL_INVALID_PLATFORM"), Map.entry(-33, "CL_INVALID_DEVICE"), Map.entry(-34, "CL_INVALID_CONTEXT"),
            Map.entry(-36, "CL_INVALID_COMMAND_QUEUE"), Map.entry(-38, "CL_INVALID_MEM_OBJECT"),
            Map.entry(-44, "CL_INVALID_PROGRAM"), Map.entry(-45, "CL_INVALID_PROGRAM_EXECUTABLE"),
            Map.entry(-46, "CL_INVALID_KERNEL_NAME"), Map.entry(-48, "CL_INVALID_KERNEL"),
            Map.entry(-49, "CL_INVALID_ARG_INDEX"), Map.entry(-50, "CL_INVALID_ARG_VALUE"),
            Map.entry(-51, "CL_INVALID_ARG_SIZE"), Map.entry(-52, "CL_INVALID_KERNEL_ARGS"),
            Map.entry(-53, "CL_INVALID_WORK_DIMENSION"), Map.entry(-54, "CL_INVALID_WORK_GROUP_SIZE"),
            Map.entry(-55, "CL_INVALID_WORK_ITEM_SIZE"), Map.entry(-61, "CL_INVALID_BUFFER_SIZE"),
            Map.entry(-63, "CL_INVALID_GLOBAL_WORK_SIZE"), Map.entry(-1001, "CL_PLATFORM_NOT_FOUND_KHR"));

    private final int code;
    private final String buildLog;

    public ClException(String call, int code, String doing) {
        this(call, code, doing, null);
    }

    public ClException(String call, int code, String doing, String buildLog) {
        super(doing + ": " + call + " returned " + name(code) + (buildLog == null || buildLog.isBlank() ? "" : "\n" + buildLog.strip()));
        this.code = code;
        this.buildLog = buildLog;
    }

    /** A failure that is not an OpenCL error code (no library, no platform, a device name that matches none). */
    public ClException(String message) {
        super(message);
        this.code = 0;
        this.buildLog = null;
    }

    public int code() {
        return code;
    }

    /** The device compiler's log for a program that did not build; null otherwise. */
    public String buildLog() {
        return buildLog;
    }

    /** An error code's name ({@code CL_OUT_OF_RESOURCES (-5)}), or the number where kvpc does not know it. */
    public static String name(int code) {
        String n = NAMES.get(code);
        return n == null ? "error " + code : n + " (" + code + ")";
    }
}
