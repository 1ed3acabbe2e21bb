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
    private ClContext.Buffer cs;
    private Rope rope;
    private int d, positions, capacity;

    DeviceRope(ClContext cl) {
        this.cl = cl;
    }

    /** Whether positions below {@code positions} have a table (the runtime's ends somewhere). */
    static boolean covers(Rope r, int d, int positions) {
        return r.cosSinTable(d, positions) != null;
    }

    /** The table of {@code r} for heads of {@code d} channels holding positions below {@code upTo}, on the device. */
    ClContext.Buffer table(Rope r, int d, int upTo) {
        if (!r.equals(rope) || d != this.d) {
            rope = r;
            this.d = d;
            positions = 0;
        }
        if (upTo <= positions) return cs;
        double[] all = r.cosSinTable(d, upTo);
        if (all == null) throw new IllegalStateException("position " + (upTo - 1) + " is past the RoPE table");
        if (upTo > capacity) {
            int cap = Math.max(upTo, Math.max(256, 2 * capacity));
            ClContext.Buffer b = cl.buffer(8L * cap * d, "RoPE cosines and sines (double)");
            if (cs != null) {
                cs.copyTo(b, 0, 0, 8L * positions * d);
                cs.free();
            }
            cs = b;
            capacity = cap;
        }
        try (Arena a = Arena.ofConfined()) {
            cs.write(8L * positions * d, a.allocateFrom(ValueLayout.JAVA_DOUBLE, java.util.Arrays.copyOfRange(all, positions * d, upTo * d)));
        }
        positions = upTo;
        return cs;
    }
}
