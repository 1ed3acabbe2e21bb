package dev.kvpc.gpu.cl;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.Deque;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * One device's OpenCL context and in-order command queue, and every object made in it (programs, kernels, buffers),
 * released together by {@link #close}. Reads and writes wait for their copy; launches are queued in order. What it
 * keeps (objects made, bytes held) is safe to change from several threads; a kernel's arguments are not (each kernel
 * object has one owner, who sets them and launches under its own lock). Its {@link #arrays} are the device copies of
 * host arrays that every user of the context shares (an engine's products and the attention reading their outputs).
 */
public final class ClContext implements AutoCloseable {
    private final OpenCl cl;
    private final ClDevice device;
    private final MemorySegment context, queue;
    private final Deque<Runnable> releases = new ArrayDeque<>();
    private final java.util.List<Buffer> buffers = new java.util.ArrayList<>();
    private long bufferBytes;
    private boolean closed;
    /** A kernel was launched in a new shape since the last wait ({@link #settled}). */
    private volatile boolean compiling;

    public ClContext(ClDevice device) {
        this.cl = OpenCl.get();
        this.device = device;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment err = a.allocate(JAVA_INT);
            MemorySegment devs = a.allocate(ADDRESS);
            devs.set(ADDRESS, 0, device.id());
            // properties: CL_CONTEXT_PLATFORM (0x1084), the platform, 0
            MemorySegment props = a.allocate(JAVA_LONG, 3);
            props.setAtIndex(JAVA_LONG, 0, 0x1084);
            props.setAtIndex(JAVA_LONG, 1, device.platformId().address());
            props.setAtIndex(JAVA_LONG, 2, 0);
            context = (MemorySegment) cl.createContext.invokeExact(props, 1, devs, MemorySegment.NULL, MemorySegment.NULL, err);
            OpenCl.check("clCreateContext", err.get(JAVA_INT, 0), "opening " + device.name());
            releases.push(() -> release(cl.releaseContext, context));
            queue = (MemorySegment) cl.createCommandQueue.invokeExact(context, device.id(), 0L, err);
            OpenCl.check("clCreateCommandQueue", err.get(JAVA_INT, 0), "opening a queue on " + device.name());
            releases.push(() -> release(cl.releaseCommandQueue, queue));
            OpenCl.afterCompiler();
        } catch (ClException e) {
            close();
            throw e;
        } catch (Throwable t) {
            close();
            throw new ClException("opening " + device.name() + ": " + t);
        }
    }

    public ClDevice device() {
        return device;
    }

    private DeviceArrays arrays;

    /** The device copies of host arrays kept in this context, shared by everyone who runs kernels in it. */
    public synchronized DeviceArrays arrays() {
        if (arrays == null) arrays = new DeviceArrays(this);
        return arrays;
    }

    /** Bytes held in this context's buffers now. */
    public long bufferBytes() {
        return bufferBytes;
    }

    /**
     * Builds OpenCL C source for this device. A program that does not build is a {@link ClException} carrying the
     * compiler's log, headed by {@code what}.
     */
    public synchronized Program build(String source, String options, String what) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment err = a.allocate(JAVA_INT);
            MemorySegment strings = a.allocate(ADDRESS);
            strings.set(ADDRESS, 0, a.allocateFrom(source));
            MemorySegment program = (MemorySegment) cl.createProgramWithSource.invokeExact(context, 1, strings, MemorySegment.NULL, err);
            OpenCl.check("clCreateProgramWithSource", err.get(JAVA_INT, 0), "building " + what);
            releases.push(() -> release(cl.releaseProgram, program));
            MemorySegment devs = a.allocate(ADDRESS);
            devs.set(ADDRESS, 0, device.id());
            int rc = (int) cl.buildProgram.invokeExact(program, 1, devs, a.allocateFrom(options == null ? "" : options), MemorySegment.NULL, MemorySegment.NULL);
            OpenCl.afterCompiler();
            if (rc != 0) throw new ClException("clBuildProgram", rc, "building " + what + " for " + device.name(), buildLog(program));
            return new Program(program, what, buildLog(program));
        } catch (ClException e) {
            throw e;
        } catch (Throwable t) {
            throw new ClException("building " + what + ": " + t);
        }
    }

    private String buildLog(MemorySegment program) throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment size = a.allocate(JAVA_LONG);
            int rc = (int) cl.getProgramBuildInfo.invokeExact(program, device.id(), OpenCl.PROGRAM_BUILD_LOG, 0L, MemorySegment.NULL, size);
            if (rc != 0) return "(no build log: " + ClException.name(rc) + ")";
            MemorySegment buf = a.allocate(Math.max(1, size.get(JAVA_LONG, 0)));
            rc = (int) cl.getProgramBuildInfo.invokeExact(program, device.id(), OpenCl.PROGRAM_BUILD_LOG, buf.byteSize(), buf, MemorySegment.NULL);
            return rc != 0 ? "(no build log: " + ClException.name(rc) + ")" : buf.getString(0);
        }
    }

    /** A built program. */
    public final class Program {
        private final MemorySegment handle;
        private final String what, log;

        Program(MemorySegment handle, String what, String log) {
            this.handle = handle;
            this.what = what;
            this.log = log;
        }

        /** What the device's compiler said while building it (warnings; often empty). */
        public String buildLog() {
            return log;
        }

        /** The program's kernel of that name. */
        public Kernel kernel(String name) {
            synchronized (ClContext.this) {
                return make(name);
            }
        }

        private Kernel make(String name) {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment err = a.allocate(JAVA_INT);
                MemorySegment k = (MemorySegment) cl.createKernel.invokeExact(handle, a.allocateFrom(name), err);
                OpenCl.afterCompiler();
                OpenCl.check("clCreateKernel", err.get(JAVA_INT, 0), "kernel " + name + " of " + what);
                releases.push(() -> release(cl.releaseKernel, k));
                return new Kernel(k, name);
            } catch (ClException e) {
                throw e;
            } catch (Throwable t) {
                throw new ClException("kernel " + name + ": " + t);
            }
        }
    }

    /** A kernel: arguments set by index, then launched over a range. */
    public final class Kernel {
        private final MemorySegment handle;
        private final String name;
        private final Arena args = Arena.ofAuto();
        /** Work-group sizes launched so far, null for the device's choice (a platform may compile a kernel anew for each). */
        private final java.util.List<long[]> shapes = new java.util.ArrayList<>();

        Kernel(MemorySegment handle, String name) {
            this.handle = handle;
            this.name = name;
        }

        public String name() {
            return name;
        }

        public Kernel arg(int i, Buffer b) {
            MemorySegment v = args.allocate(ADDRESS);
            v.set(ADDRESS, 0, b.handle);
            return set(i, ADDRESS.byteSize(), v);
        }

        public Kernel arg(int i, int value) {
            return set(i, 4, args.allocateFrom(JAVA_INT, value));
        }

        public Kernel arg(int i, float value) {
            return set(i, 4, args.allocateFrom(JAVA_FLOAT, value));
        }

        public Kernel arg(int i, double value) {
            return set(i, 8, args.allocateFrom(JAVA_DOUBLE, value));
        }

        private Kernel set(int i, long size, MemorySegment value) {
            try {
                OpenCl.check("clSetKernelArg", (int) cl.setKernelArg.invokeExact(handle, i, size, value), "argument " + i + " of kernel " + name);
            } catch (ClException e) {
                throw e;
            } catch (Throwable t) {
                throw new ClException("argument " + i + " of kernel " + name + ": " + t);
            }
            return this;
        }

        /** Queues the kernel over {@code global} work-items in work-groups of {@code local} (null: the device's choice). */
        public void launch(long[] global, long[] local) {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment g = a.allocateFrom(JAVA_LONG, global);
                MemorySegment l = local == null ? MemorySegment.NULL : a.allocateFrom(JAVA_LONG, local);
                OpenCl.check("clEnqueueNDRangeKernel", (int) cl.enqueueNDRangeKernel.invokeExact(queue, handle, global.length, MemorySegment.NULL, g, l, 0,
                        MemorySegment.NULL, MemorySegment.NULL), "launching kernel " + name);
                // the platform may compile it for this shape when it runs (PoCL does, on its own thread): the JVM's
                // signal handlers are put back once a wait has seen it run
                if (newShape(local)) compiling = true;
            } catch (ClException e) {
                throw e;
            } catch (Throwable t) {
                throw new ClException("launching kernel " + name + ": " + t);
            }
        }

        /** Whether no launch of this kernel had work-groups of {@code local} before (then noted). */
        private boolean newShape(long[] local) {
            for (long[] s : shapes) if (java.util.Arrays.equals(s, local)) return false;
            shapes.add(local == null ? null : local.clone());
            return true;
        }
    }

    /** A device buffer of {@code bytes}, read-write, uninitialised. */
    public synchronized Buffer buffer(long bytes, String what) {
        long size = Math.max(4, bytes);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment err = a.allocate(JAVA_INT);
            MemorySegment b = (MemorySegment) cl.createBuffer.invokeExact(context, OpenCl.MEM_READ_WRITE, size, MemorySegment.NULL, err);
            OpenCl.check("clCreateBuffer", err.get(JAVA_INT, 0), "allocating " + size + " bytes for " + what + " on " + device.name());
            Buffer buf = new Buffer(b, size);
            bufferBytes += size;
            buffers.add(buf);
            return buf;
        } catch (ClException e) {
            throw e;
        } catch (Throwable t) {
            throw new ClException("allocating " + what + ": " + t);
        }
    }

    /** A device buffer: write and read whole or in part; {@link #free} gives its memory back before the context closes. */
    public final class Buffer {
        final MemorySegment handle;
        private final long bytes;
        private boolean freed;

        Buffer(MemorySegment handle, long bytes) {
            this.handle = handle;
            this.bytes = bytes;
        }

        public long bytes() {
            return bytes;
        }

        /** Copies {@code src} to this buffer at {@code offset} bytes, waiting for the copy. */
        public void write(long offset, MemorySegment src) {
            transfer(cl.enqueueWriteBuffer, offset, src, true, "clEnqueueWriteBuffer");
        }

        /**
         * Queues a copy of {@code src}, native memory that must stay as it is until a later blocking call (a read,
         * {@link #finish}) returns: the queue is in order, so that call waits for this copy too.
         */
        public void writeQueued(long offset, MemorySegment src) {
            if (!src.isNative()) throw new IllegalArgumentException("a queued write takes native memory");
            transfer(cl.enqueueWriteBuffer, offset, src, false, "clEnqueueWriteBuffer");
        }

        /** Copies {@code dst.byteSize()} bytes at {@code offset} into {@code dst}, waiting for them. */
        public void read(long offset, MemorySegment dst) {
            transfer(cl.enqueueReadBuffer, offset, dst, true, "clEnqueueReadBuffer");
        }

        public void write(float[] src) {
            try (Arena a = Arena.ofConfined()) {
                write(0, a.allocateFrom(JAVA_FLOAT, src));
            }
        }

        public void write(int[] src) {
            try (Arena a = Arena.ofConfined()) {
                write(0, a.allocateFrom(JAVA_INT, src));
            }
        }

        public void write(double[] src) {
            try (Arena a = Arena.ofConfined()) {
                write(0, a.allocateFrom(JAVA_DOUBLE, src));
            }
        }

        public void read(double[] dst) {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment s = a.allocate(JAVA_DOUBLE, Math.max(1, dst.length));
                read(0, s.asSlice(0, 8L * dst.length));
                MemorySegment.copy(s, JAVA_DOUBLE, 0, dst, 0, dst.length);
            }
        }

        public void read(float[] dst) {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment s = a.allocate(JAVA_FLOAT, Math.max(1, dst.length));
                read(0, s.asSlice(0, 4L * dst.length));
                MemorySegment.copy(s, JAVA_FLOAT, 0, dst, 0, dst.length);
            }
        }

        /** Copies {@code bytes} of this buffer from {@code offset} to {@code dst} at {@code dstOffset}, on the device (queued). */
        public void copyTo(Buffer dst, long offset, long dstOffset, long bytes) {
            if (freed || dst.freed) throw new IllegalStateException("buffer already freed");
            if (bytes == 0) return;
            try {
                OpenCl.check("clEnqueueCopyBuffer", (int) cl.enqueueCopyBuffer.invokeExact(queue, handle, dst.handle, offset, dstOffset, bytes, 0,
                        MemorySegment.NULL, MemorySegment.NULL), "copying " + bytes + " bytes on the device");
            } catch (ClException e) {
                throw e;
            } catch (Throwable t) {
                throw new ClException("clEnqueueCopyBuffer: " + t);
            }
        }

        private void transfer(java.lang.invoke.MethodHandle h, long offset, MemorySegment host, boolean blocking, String call) {
            if (freed) throw new IllegalStateException("buffer already freed");
            if (host.byteSize() == 0) return;
            if (!host.isNative()) {
                // heap memory cannot be passed to a native call: staged through native memory
                try (Arena a = Arena.ofConfined()) {
                    MemorySegment staged = a.allocate(host.byteSize(), 8);
                    boolean write = h == cl.enqueueWriteBuffer;
                    if (write) staged.copyFrom(host);
                    transfer(h, offset, staged, true, call);
                    if (!write) host.copyFrom(staged);
                }
                return;
            }
            if (offset < 0 || offset + host.byteSize() > bytes) {
                throw new IndexOutOfBoundsException(host.byteSize() + " bytes at " + offset + " in a buffer of " + bytes);
            }
            try {
                OpenCl.check(call, (int) h.invokeExact(queue, handle, blocking ? 1 : 0, offset, host.byteSize(), host, 0, MemorySegment.NULL,
                        MemorySegment.NULL), "copying " + host.byteSize() + " bytes");
                if (blocking) settled();
            } catch (ClException e) {
                throw e;
            } catch (Throwable t) {
                throw new ClException(call + ": " + t);
            }
        }

        public void free() {
            synchronized (ClContext.this) {
                if (freed) return;
                freed = true;
                bufferBytes -= bytes;
                release(cl.releaseMemObject, handle);
            }
        }
    }

    /** Waits for everything queued. */
    public void finish() {
        try {
            OpenCl.check("clFinish", (int) cl.finish.invokeExact(queue), "waiting for " + device.name());
            settled();
        } catch (ClException e) {
            throw e;
        } catch (Throwable t) {
            throw new ClException("clFinish: " + t);
        }
    }

    /** After a wait: every kernel queued before it has run, so any compile it needed is done. */
    private void settled() {
        if (compiling) {
            compiling = false;
            OpenCl.afterCompiler();
        }
    }

    private static void release(java.lang.invoke.MethodHandle h, MemorySegment handle) {
        try {
            int rc = (int) h.invokeExact(handle);
            if (rc != 0) System.err.println("kvpc: releasing an OpenCL object failed: " + ClException.name(rc));
        } catch (Throwable t) {
            System.err.println("kvpc: releasing an OpenCL object failed: " + t);
        }
    }

    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        for (Buffer b : buffers) b.free();
        buffers.clear();
        while (!releases.isEmpty()) releases.pop().run();
    }
}
