package dev.kvpc.gpu.cl;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Locale;
import java.util.Optional;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * The process's signal handlers as they were before the OpenCL library first ran, put back where LLVM replaced them.
 *
 * <p>An OpenCL platform that compiles kernels with LLVM inside the process (PoCL does, at every program build and at a
 * kernel's first launch with a work-group size) lets LLVM install its own handlers for SIGSEGV, SIGBUS, SIGILL,
 * SIGUSR2 and others over the JVM's: one-shot handlers ({@code SA_RESETHAND}) that put the old ones back when they
 * fire. The JVM takes SIGSEGV in normal running (an implicit null check, a stack bang) and SIGUSR2 to suspend threads;
 * while LLVM's handler is installed, two threads taking such a signal at once find the default action, and the
 * process dies of "Segmentation fault" with no error report. {@link #restore} undoes exactly LLVM's replacements: a
 * handler that changed since {@link #save} and lies in a library whose file name says LLVM (another library's, such
 * as the platform's own SIGFPE handler, stays).
 *
 * <p>Launched by {@code ./kvpc} or the build's tests, the JVM also has {@code libjsig} preloaded, its signal chaining:
 * LLVM's handlers then never displace the JVM's, and what this class reads and puts back is the chained handler.
 * A host that embeds kvpc gets this class's repair either way. Where the C library has no {@code sigaction} or
 * {@code dladdr}, it does nothing.
 */
final class SignalHandlers {
    /** Bytes reserved for a {@code struct sigaction}: 152 on Linux (x86-64, AArch64), 16 on macOS. Only copied, never read. */
    private static final long ACTION = 256;
    private static final int SIGNALS = 31, SIGKILL = 9, SIGSTOP_LINUX = 19, SIGSTOP_BSD = 17;

    private final MethodHandle sigaction, dladdr;
    private final MemorySegment saved;
    private final boolean[] have = new boolean[SIGNALS + 1];
    private long restored;

    private SignalHandlers(MethodHandle sigaction, MethodHandle dladdr) {
        this.sigaction = sigaction;
        this.dladdr = dladdr;
        this.saved = Arena.global().allocate(ACTION * (SIGNALS + 1), 16);
        for (int s = 1; s <= SIGNALS; s++) have[s] = catchable(s) && get(s, slot(s));
    }

    /** The handlers now, or null where the C library lacks the calls. */
    static SignalHandlers save() {
        Linker linker = Linker.nativeLinker();
        Optional<MemorySegment> sa = linker.defaultLookup().find("sigaction"), dl = linker.defaultLookup().find("dladdr");
        if (sa.isEmpty() || dl.isEmpty()) return null;
        try {
            return new SignalHandlers(linker.downcallHandle(sa.get(), FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS)),
                    linker.downcallHandle(dl.get(), FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS)));
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    private static boolean catchable(int s) {
        return s != SIGKILL && s != SIGSTOP_LINUX && s != SIGSTOP_BSD;
    }

    private MemorySegment slot(int s) {
        return saved.asSlice(ACTION * s, ACTION);
    }

    private boolean get(int s, MemorySegment into) {
        try {
            return (int) sigaction.invokeExact(s, MemorySegment.NULL, into) == 0;
        } catch (Throwable t) {
            return false;
        }
    }

    /** Puts back every saved handler that LLVM replaced; returns how many it put back. */
    synchronized int restore() {
        int n = scan(true);
        restored += n;
        return n;
    }

    /** Signals whose handler lies in LLVM now (-1 where they cannot be read). */
    synchronized int inLlvm() {
        return scan(false);
    }

    /** Signals whose handler lies in LLVM, each put back as saved where {@code restore} (then counted if that worked). */
    private int scan(boolean restore) {
        int n = 0;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment now = a.allocate(ACTION, 16);
            for (int s = 1; s <= SIGNALS; s++) {
                if (!have[s]) continue;
                now.fill((byte) 0);
                // a handler unchanged since the save is the JVM's (or the chained one's), wherever it lies
                if (!get(s, now) || now.mismatch(slot(s)) < 0 || !inLlvm(now.get(ADDRESS, 0), a)) continue;
                if (!restore || (int) sigaction.invokeExact(s, slot(s), MemorySegment.NULL) == 0) n++;
            }
        } catch (Throwable t) {
            // a handler that cannot be read or put back stays as it is
            return restore ? n : -1;
        }
        return n;
    }

    /** Handlers put back so far. */
    synchronized long restored() {
        return restored;
    }

    /** Whether the code at {@code handler} lies in a library whose file name says LLVM. */
    private boolean inLlvm(MemorySegment handler, Arena a) throws Throwable {
        if (handler.address() < 4096) return false; // SIG_DFL, SIG_IGN
        MemorySegment info = a.allocate(ADDRESS.byteSize() * 4, 8);
        if ((int) dladdr.invokeExact(handler, info) == 0) return false;
        MemorySegment name = info.get(ADDRESS, 0);
        if (name.address() == 0) return false;
        String file = name.reinterpret(4096).getString(0);
        return file.toLowerCase(Locale.ROOT).contains("llvm");
    }
}
