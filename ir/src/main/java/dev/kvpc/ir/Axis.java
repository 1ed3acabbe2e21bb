package dev.kvpc.ir;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;

/** Named axes of IR tensors, in canonical (printing) order. */
public enum Axis {
    LAYER, HEAD, QUERY, GROUP, PAGE, TOKEN, CHANNEL;

    public String word() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static Axis of(String word) {
        for (Axis a : values()) if (a.word().equals(word)) return a;
        throw new IllegalArgumentException("unknown axis '" + word + "'");
    }

    /** Axes as compiled code names them: bit {@code 1 << ordinal} for each axis. */
    public static int mask(Collection<Axis> axes) {
        int m = 0;
        for (Axis a : axes) m |= 1 << a.ordinal();
        return m;
    }

    private static final List<List<Axis>> BY_MASK = new ArrayList<>();

    static {
        Axis[] all = values();
        for (int m = 0; m < 1 << all.length; m++) {
            List<Axis> l = new ArrayList<>();
            for (Axis a : all) if ((m & 1 << a.ordinal()) != 0) l.add(a);
            BY_MASK.add(List.copyOf(l));
        }
    }

    /** The axes of a {@link #mask}, in canonical order (one shared list per mask). */
    public static List<Axis> of(int mask) {
        if (mask < 0 || mask >= BY_MASK.size()) throw new IllegalArgumentException("axis mask " + mask);
        return BY_MASK.get(mask);
    }
}
