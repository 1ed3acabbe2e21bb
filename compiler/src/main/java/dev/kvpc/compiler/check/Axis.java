package dev.kvpc.compiler.check;

import java.util.Locale;

/** The named axes of KVP values, in the order they are printed. */
public enum Axis {
    LAYER, HEAD, QUERY, GROUP, PAGE, TOKEN, CHANNEL;

    public String word() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static Axis of(String word) {
        for (Axis a : values()) if (a.word().equals(word)) return a;
        return null;
    }
}
