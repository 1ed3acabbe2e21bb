package dev.kvpc.gpu.kernels;

import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.runtime.Rope;

import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;

/**
 * RoPE on the device as the runtime's {@link Rope#rotate} computes it, bit for bit: the fragment every kernel that
 * rotates a channel pair inserts ({@link #ROTATE}), and the doubles it reads ({@link Rope#cosSinTable}), kept in a
 * device buffer to which only new positions are sent.
 */
final class DeviceRope {
    /**
     * Rotates the pair {@code (x0, x1)} (floats) of channel {@code c} (even) by position {@code p} (-1: not rotated)
     * into {@code y0, y1}, from the table {@code cs} of heads of {@code D} channels: {@code x0 * c - x1 * s} and
     * {@code x0 * s + x1 * c} in double, each product a statement of its own (C contracts a product into a sum only
     * within one expression), rounded to float.
     */
    static final String ROTATE = """
            let float y0 = x0;
            let float y1 = x1;
            if (p >= 0) {
              let double co = cs[((p * D) + c)];
              let double si = cs[(((p * D) + c) + 1)];
              let double a = (double(x0) * co);
              let double b = (double(x1) * si);
              y0 = float((a - b));
              let double e = (double(x0) * si);
              let double f = (double(x1) * co);
              y1 = float((e + f));
            }
            """;

    private final ClContext cl;
    /** Whether the table holds {@link Rope#cosSinTable}'s doubles, or the floats of a unit pair rotated. */
    private final boolean doubles;
    private ClContext.Buffer cs;
    private Rope rope;
    private int d, positions, capacity;

    private DeviceRope(ClContext cl, boolean doubles) {
        this.cl = cl;
        this.doubles = doubles;
    }

    /** {@link Rope#cosSinTable}'s doubles, which {@link #ROTATE} reads. */
    static DeviceRope doubles(ClContext cl) {
        return new DeviceRope(cl, true);
    }

    /**
     * Per position the cosines and sines as {@code Rope.rotate} gives them in float (a unit pair rotated), which a
     * kernel rotating keys by slot in float reads ({@link RowFormats#rotatedKey}).
     */
    static DeviceRope floats(ClContext cl) {
        return new DeviceRope(cl, false);
    }

    /** Whether positions below {@code positions} have a table of doubles (the runtime's ends somewhere). */
    static boolean covers(Rope r, int d, int positions) {
        return r.cosSinTable(d, positions) != null;
    }

    /**
     * The table of {@code r} for heads of {@code d} channels holding positions below {@code upTo}, on the device
     * (position {@code p}'s pairs from index {@code p * d}); only positions new since the last call are sent.
     */
    ClContext.Buffer table(Rope r, int d, int upTo) {
        if (!r.equals(rope) || d != this.d) {
            rope = r;
            this.d = d;
            positions = 0;
        }
        if (upTo <= positions) return cs;
        try (Arena a = Arena.ofConfined()) {
            java.lang.foreign.MemorySegment rows;
            if (doubles) {
                double[] all = r.cosSinTable(d, upTo);
                if (all == null) throw new IllegalStateException("position " + (upTo - 1) + " is past the RoPE table");
                rows = a.allocateFrom(ValueLayout.JAVA_DOUBLE, java.util.Arrays.copyOfRange(all, positions * d, upTo * d));
            } else {
                float[] f = new float[(upTo - positions) * d];
                for (int p = positions; p < upTo; p++) {
                    int off = (p - positions) * d;
                    for (int i = 0; i < d; i += 2) f[off + i] = 1f;
                    r.rotate(f, off, d, p);
                }
                rows = a.allocateFrom(ValueLayout.JAVA_FLOAT, f);
            }
            long elem = doubles ? 8 : 4;
            if (upTo > capacity) {
                int cap = Math.max(upTo, Math.max(256, 2 * capacity));
                ClContext.Buffer b = cl.buffer(elem * cap * d, doubles ? "RoPE cosines and sines (double)" : "RoPE cosines and sines");
                if (cs != null) {
                    cs.copyTo(b, 0, 0, elem * positions * d);
                    cs.free();
                }
                cs = b;
                capacity = cap;
            }
            cs.write(elem * positions * d, rows);
        }
        positions = upTo;
        return cs;
    }
}
