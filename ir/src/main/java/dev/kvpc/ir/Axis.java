package dev.kvpc.ir;

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
}
