package dev.kvpc.gpu.cl;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The OpenCL API, called through the JDK's foreign function API ({@code java.lang.foreign}): no binding library, no
 * native code of kvpc's own. The library is the system's OpenCL ICD loader ({@code libOpenCL.so.1} on Linux), or the
 * file {@code KVPC_OPENCL_LIBRARY} names (a loader brought beside a run, as {@code benchmarks/gpu} does).
 *
 * <p>Only the calls kvpc makes are bound, each as one {@link MethodHandle}; {@link ClContext} wraps them per device.
 * Sizes are {@code size_t}, taken as 64-bit (the platforms kvpc supports).
 */
public final class OpenCl {
    // cl_platform_info, cl_device_info, cl_program_build_info
    static final int PLATFORM_VERSION = 0x0901, PLATFORM_NAME = 0x0902, PLATFORM_VENDOR = 0x0903;
    static final int DEVICE_TYPE = 0x1000, DEVICE_MAX_COMPUTE_UNITS = 0x1002, DEVICE_MAX_WORK_GROUP_SIZE = 0x1004,
            DEVICE_GLOBAL_MEM_SIZE = 0x101F, DEVICE_LOCAL_MEM_SIZE = 0x1023, DEVICE_NAME = 0x102B, DEVICE_VENDOR = 0x102C,
            DEVICE_VERSION = 0x102F, DEVICE_EXTENSIONS = 0x1030;
    static final int PROGRAM_BUILD_LOG = 0x1183;
    static final long DEVICE_TYPE_ALL = 0xFFFFFFFFL;
    static final long MEM_READ_WRITE = 1;
    private static final int PLATFORM_NOT_FOUND_KHR = -1001;

    private static OpenCl instance;
    private static String unavailable;
    /** The process's signal handlers before the library first ran (null where they cannot be read). */
    private static SignalHandlers signals;

    final MethodHandle getPlatformIDs, getPlatformInfo, getDeviceIDs, getDeviceInfo, createContext, createCommandQueue,
            createProgramWithSource, buildProgram, getProgramBuildInfo, createKernel, setKernelArg, createBuffer,
            enqueueWriteBuffer, enqueueReadBuffer, enqueueCopyBuffer, enqueueNDRangeKernel, finish, releaseMemObject,
            releaseKernel, releaseProgram, releaseCommandQueue, releaseContext;
    private final String library;

    private OpenCl(SymbolLookup lib, String library) {
        this.library = library;
        getPlatformIDs = bind(lib, "clGetPlatformIDs", JAVA_INT, JAVA_INT, ADDRESS, ADDRESS);
        getPlatformInfo = bind(lib, "clGetPlatformInfo", JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS);
        getDeviceIDs = bind(lib, "clGetDeviceIDs", JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, ADDRESS, ADDRESS);
        getDeviceInfo = bind(lib, "clGetDeviceInfo", JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS);
        createContext = bind(lib, "clCreateContext", ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS);
        createCommandQueue = bind(lib, "clCreateCommandQueue", ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS);
        createProgramWithSource = bind(lib, "clCreateProgramWithSource", ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, ADDRESS);
        buildProgram = bind(lib, "clBuildProgram", JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS);
        getProgramBuildInfo = bind(lib, "clGetProgramBuildInfo", JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS);
        createKernel = bind(lib, "clCreateKernel", ADDRESS, ADDRESS, ADDRESS, ADDRESS);
        setKernelArg = bind(lib, "clSetKernelArg", JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, ADDRESS);
        createBuffer = bind(lib, "clCreateBuffer", ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS, ADDRESS);
        enqueueWriteBuffer = bind(lib, "clEnqueueWriteBuffer", JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, ADDRESS, JAVA_INT, ADDRESS, ADDRESS);
        enqueueReadBuffer = bind(lib, "clEnqueueReadBuffer", JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, ADDRESS, JAVA_INT, ADDRESS, ADDRESS);
        enqueueCopyBuffer = bind(lib, "clEnqueueCopyBuffer", JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, ADDRESS, ADDRESS);
        enqueueNDRangeKernel = bind(lib, "clEnqueueNDRangeKernel", JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS);
        finish = bind(lib, "clFinish", JAVA_INT, ADDRESS);
        releaseMemObject = bind(lib, "clReleaseMemObject", JAVA_INT, ADDRESS);
        releaseKernel = bind(lib, "clReleaseKernel", JAVA_INT, ADDRESS);
        releaseProgram = bind(lib, "clReleaseProgram", JAVA_INT, ADDRESS);
        releaseCommandQueue = bind(lib, "clReleaseCommandQueue", JAVA_INT, ADDRESS);
        releaseContext = bind(lib, "clReleaseContext", JAVA_INT, ADDRESS);
    }

    private static MethodHandle bind(SymbolLookup lib, String name, MemoryLayout result, MemoryLayout... args) {
        MemorySegment fn = lib.find(name).orElseThrow(() -> new ClException("the OpenCL library has no " + name));
        return Linker.nativeLinker().downcallHandle(fn, FunctionDescriptor.of(result, args));
    }

    /** The OpenCL library, loaded once; a {@link ClException} saying why when there is none. */
    public static synchronized OpenCl get() {
        if (instance != null) return instance;
        if (unavailable != null) throw new ClException(unavailable);
        if (signals == null) signals = SignalHandlers.save();
        List<String> names = new ArrayList<>();
        String env = System.getenv("KVPC_OPENCL_LIBRARY");
        if (env != null && !env.isBlank()) names.add(env);
        names.addAll(List.of("libOpenCL.so.1", "libOpenCL.so", "/System/Library/Frameworks/OpenCL.framework/OpenCL", "OpenCL.dll"));
        List<String> tried = new ArrayList<>();
        for (String name : names) {
            SymbolLookup lib;
            try {
                lib = SymbolLookup.libraryLookup(name, Arena.global());
            } catch (IllegalArgumentException e) {
                tried.add(name);
                continue;
            }
            try {
                instance = new OpenCl(lib, name);
                afterCompiler();
                return instance;
            } catch (ClException e) {
                unavailable = name + ": " + e.getMessage();
                throw e;
            }
        }
        unavailable = "no OpenCL library (tried " + String.join(", ", tried) + "); install an OpenCL ICD loader and a "
                + "platform (on Debian: ocl-icd-libopencl1 and pocl-opencl-icd, or a GPU driver's OpenCL), or name the "
                + "library with KVPC_OPENCL_LIBRARY";
        throw new ClException(unavailable);
    }

    /**
     * Puts back the JVM's signal handlers where the platform's compiler (LLVM, in PoCL) replaced them
     * ({@link SignalHandlers}): called after every call that may have run it.
     */
    static void afterCompiler() {
        SignalHandlers s;
        synchronized (OpenCl.class) {
            s = signals;
        }
        if (s != null) s.restore();
    }

    /** The handlers kept, or null (tests). */
    static synchronized SignalHandlers signals() {
        return signals;
    }

    /** Signal handlers put back after the platform's compiler replaced them, so far (0 where none was). */
    public static long signalHandlersRestored() {
        SignalHandlers s;
        synchronized (OpenCl.class) {
            s = signals;
        }
        return s == null ? 0 : s.restored();
    }

    /** Whether an OpenCL library loads and has at least one device. */
    public static boolean available() {
        try {
            return !get().devices().isEmpty();
        } catch (ClException e) {
            return false;
        }
    }

    /** The library's file name, as loaded. */
    public String library() {
        return library;
    }

    /** Every device of every platform, platform by platform, in the order the library lists them. */
    public List<ClDevice> devices() {
        List<ClDevice> out = new ArrayList<>();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment count = a.allocate(JAVA_INT);
            int rc = (int) getPlatformIDs.invokeExact(0, MemorySegment.NULL, count);
            if (rc == PLATFORM_NOT_FOUND_KHR) {
                afterCompiler();
                return out;
            }
            check("clGetPlatformIDs", rc, "listing OpenCL platforms");
            int np = count.get(JAVA_INT, 0);
            MemorySegment platforms = a.allocate(ADDRESS, Math.max(1, np));
            check("clGetPlatformIDs", (int) getPlatformIDs.invokeExact(np, platforms, MemorySegment.NULL), "listing OpenCL platforms");
            for (int p = 0; p < np; p++) {
                MemorySegment platform = platforms.getAtIndex(ADDRESS, p);
                String pname = platformString(platform, PLATFORM_NAME), pversion = platformString(platform, PLATFORM_VERSION);
                int rcd = (int) getDeviceIDs.invokeExact(platform, DEVICE_TYPE_ALL, 0, MemorySegment.NULL, count);
                if (rcd == -1) continue; // CL_DEVICE_NOT_FOUND: a platform with no device
                check("clGetDeviceIDs", rcd, "listing the devices of " + pname);
                int nd = count.get(JAVA_INT, 0);
                MemorySegment ids = a.allocate(ADDRESS, Math.max(1, nd));
                check("clGetDeviceIDs", (int) getDeviceIDs.invokeExact(platform, DEVICE_TYPE_ALL, nd, ids, MemorySegment.NULL), "listing the devices of " + pname);
                for (int d = 0; d < nd; d++) {
                    MemorySegment id = ids.getAtIndex(ADDRESS, d);
                    String ext = deviceString(id, DEVICE_EXTENSIONS);
                    out.add(new ClDevice(out.size(), p, d, pname, pversion, deviceString(id, DEVICE_NAME).strip(), deviceString(id, DEVICE_VENDOR).strip(),
                            deviceString(id, DEVICE_VERSION).strip(), typeName(deviceLong(id, DEVICE_TYPE)), (int) deviceInt(id, DEVICE_MAX_COMPUTE_UNITS),
                            deviceLong(id, DEVICE_GLOBAL_MEM_SIZE), deviceLong(id, DEVICE_LOCAL_MEM_SIZE), deviceLong(id, DEVICE_MAX_WORK_GROUP_SIZE),
                            ext.contains("cl_khr_fp64"), ext.contains("cl_khr_fp16"), platform, id));
                }
            }
        } catch (ClException e) {
            throw e;
        } catch (Throwable t) {
            throw new ClException("listing OpenCL devices: " + t);
        }
        OpenCl.afterCompiler();
        return out;
    }

    /**
     * The device {@code spec} names: null or blank, the first GPU (else the first device); a number, the device at
     * that index of {@link #devices()}; {@code P:D}, device D of platform P; else the first device whose name, vendor or
     * platform name contains {@code spec}, ignoring case.
     */
    public ClDevice select(String spec) {
        List<ClDevice> all = devices();
        if (all.isEmpty()) throw new ClException("no OpenCL device: the library " + library + " lists no platform with a device");
        if (spec == null || spec.isBlank()) {
            for (ClDevice d : all) if (d.type().equals("GPU")) return d;
            return all.get(0);
        }
        String s = spec.strip();
        if (s.matches("\\d+")) {
            int i = Integer.parseInt(s);
            if (i < all.size()) return all.get(i);
        } else if (s.matches("\\d+:\\d+")) {
            int p = Integer.parseInt(s.substring(0, s.indexOf(':'))), d = Integer.parseInt(s.substring(s.indexOf(':') + 1));
            for (ClDevice dev : all) if (dev.platformIndex() == p && dev.deviceIndex() == d) return dev;
        } else {
            String low = s.toLowerCase(Locale.ROOT);
            for (ClDevice d : all) {
                if ((d.name() + " " + d.vendor() + " " + d.platformName()).toLowerCase(Locale.ROOT).contains(low)) return d;
            }
        }
        StringBuilder sb = new StringBuilder("no OpenCL device matches '" + s + "'; the devices are:");
        for (ClDevice d : all) sb.append("\n  ").append(d.summary());
        throw new ClException(sb.toString());
    }

    static void check(String call, int rc, String doing) {
        if (rc != 0) throw new ClException(call, rc, doing);
    }

    /** A clGet*Info call for one parameter: {@code (size, value, sizeReturned) -> status}. */
    @FunctionalInterface
    private interface Info {
        int get(long size, MemorySegment value, MemorySegment sizeReturned) throws Throwable;
    }

    /** A string parameter: its size asked first, then its bytes. */
    private static String infoString(String call, String doing, Info info) throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment size = a.allocate(JAVA_LONG);
            check(call, info.get(0L, MemorySegment.NULL, size), doing);
            MemorySegment buf = a.allocate(Math.max(1, size.get(JAVA_LONG, 0)));
            check(call, info.get(buf.byteSize(), buf, MemorySegment.NULL), doing);
            return buf.getString(0);
        }
    }

    private String platformString(MemorySegment platform, int param) throws Throwable {
        return infoString("clGetPlatformInfo", "reading a platform's name", (size, value, ret) -> (int) getPlatformInfo.invokeExact(platform, param, size, value, ret));
    }

    private String deviceString(MemorySegment device, int param) throws Throwable {
        return infoString("clGetDeviceInfo", "reading a device's properties", (size, value, ret) -> (int) getDeviceInfo.invokeExact(device, param, size, value, ret));
    }

    private long deviceLong(MemorySegment device, int param) throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_LONG);
            check("clGetDeviceInfo", (int) getDeviceInfo.invokeExact(device, param, 8L, v, MemorySegment.NULL), "reading a device's properties");
            return v.get(JAVA_LONG, 0);
        }
    }

    private long deviceInt(MemorySegment device, int param) throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            check("clGetDeviceInfo", (int) getDeviceInfo.invokeExact(device, param, 4L, v, MemorySegment.NULL), "reading a device's properties");
            return v.get(JAVA_INT, 0) & 0xFFFFFFFFL;
        }
    }

    private static String typeName(long type) {
        if ((type & 4) != 0) return "GPU";
        if ((type & 2) != 0) return "CPU";
        if ((type & 8) != 0) return "ACCELERATOR";
        return "OTHER";
    }

    static ValueLayout sizeT() {
        return JAVA_LONG;
    }
}
