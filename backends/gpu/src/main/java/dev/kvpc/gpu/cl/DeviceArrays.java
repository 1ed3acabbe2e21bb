package dev.kvpc.gpu.cl;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;

/**
 * Device copies of a host's float arrays (an engine's activations), by array identity, in one context: who computes
 * on the device reads a copy ({@link #read}, sent only when the host's is newer) and writes one ({@link #write}, then
 * newer than the host's); the host says where it reads ({@link #toHost}) and writes ({@link #fromHost}) an array. An
 * array that is gone gives its buffer back. Thread-safe.
 */
public final class DeviceArrays implements dev.kvpc.runtime.engine.HostArrays {
    private final ClContext cl;
    /** Arrays compare by identity (a float[] does not override equals). */
    private final Map<float[], Mirror> mirrors = new WeakHashMap<>();
    private final List<Map.Entry<WeakReference<float[]>, Mirror>> held = new ArrayList<>();
    private long transfers;

    DeviceArrays(ClContext cl) {
        this.cl = cl;
    }

    /** An array's device copy: {@code device} floats of the host's are there; {@code written} floats are newer there. */
    private static final class Mirror {
        ClContext.Buffer buf;
        int device, written;
    }

    private Mirror mirror(float[] a) {
        Mirror m = mirrors.get(a);
        if (m != null) return m;
        held.removeIf(e -> {
            if (e.getKey().get() != null) return false;
            e.getValue().buf.free();
            return true;
        });
        m = new Mirror();
        m.buf = cl.buffer(4L * Math.max(1, a.length), "engine activations");
        mirrors.put(a, m);
        held.add(Map.entry(new WeakReference<>(a), m));
        return m;
    }

    /** Whether {@code a} has a device copy here (a kernel of this context wrote or read it). */
    public synchronized boolean holds(float[] a) {
        return mirrors.containsKey(a);
    }

    /** The device copy of the first {@code count} floats of {@code a}, current (sent if the host's is newer). */
    public synchronized ClContext.Buffer read(float[] a, int count) {
        Mirror m = mirror(a);
        if (m.written == 0 && m.device < count) {
            try (Arena ar = Arena.ofConfined()) {
                m.buf.write(0, ar.allocateFrom(ValueLayout.JAVA_FLOAT, java.util.Arrays.copyOf(a, count)));
            }
            m.device = count;
            transfers++;
        }
        return m.buf;
    }

    /** The device copy of {@code a}, about to be written (its first {@code count} floats): newer than the host's. */
    public synchronized ClContext.Buffer write(float[] a, int count) {
        Mirror m = mirror(a);
        m.written = Math.max(count, m.written);
        m.device = m.written;
        return m.buf;
    }

    /** Makes the host's copy of {@code a} current: reads back what the device wrote. */
    @Override
    public synchronized void toHost(float[] a) {
        Mirror m = mirrors.get(a);
        if (m == null || m.written == 0) return;
        try (Arena ar = Arena.ofConfined()) {
            MemorySegment o = ar.allocate(ValueLayout.JAVA_FLOAT, m.written);
            m.buf.read(0, o);
            MemorySegment.copy(o, ValueLayout.JAVA_FLOAT, 0, a, 0, m.written);
        }
        m.written = 0;
        transfers++;
    }

    /** The host wrote {@code a}: its device copy is stale. */
    @Override
    public synchronized void fromHost(float[] a) {
        Mirror m = mirrors.get(a);
        if (m == null) return;
        m.device = 0;
        m.written = 0;
    }

    /** Arrays sent to or read back from the device so far. */
    public synchronized long transfers() {
        return transfers;
    }
}
