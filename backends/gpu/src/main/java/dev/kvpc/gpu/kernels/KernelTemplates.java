package dev.kvpc.gpu.kernels;

import dev.kvpc.gpu.kir.KirModule;
import dev.kvpc.gpu.kir.KirText;
import dev.kvpc.gpu.kir.KirVerifier;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * The kernels kvpc ships, written in the kernel IR's text form as templates ({@code *.kir} beside this class) and
 * specialised by binding their constants (head dim, group, work-group size) when a host asks for a shape.
 */
public final class KernelTemplates {
    private KernelTemplates() {
    }

    /** The template's text. */
    public static String text(String name) {
        try (InputStream in = KernelTemplates.class.getResourceAsStream(name + ".kir")) {
            if (in == null) throw new IllegalArgumentException("no kernel template " + name);
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The template with its constants bound, verified. */
    public static KirModule module(String name, Map<String, Integer> constants) {
        return module(name, constants, Map.of());
    }

    /**
     * The template with each {@code {{NAME}}} replaced by {@code fragments.get(NAME)} (text: parameters, statements or an
     * expression, as the place wants), then its constants bound, verified.
     */
    public static KirModule module(String name, Map<String, Integer> constants, Map<String, String> fragments) {
        String text = text(name);
        StringBuilder sb = new StringBuilder();
        int at = 0;
        for (int open; (open = text.indexOf("{{", at)) >= 0; ) {
            int close = text.indexOf("}}", open);
            if (close < 0) throw new IllegalArgumentException(name + ": an unclosed {{");
            String key = text.substring(open + 2, close);
            String f = fragments.get(key);
            if (f == null) throw new IllegalArgumentException(name + ": no fragment " + key + " given");
            sb.append(text, at, open).append(f);
            at = close + 2;
        }
        sb.append(text.substring(at));
        KirModule m = KirText.parse(sb.toString(), constants);
        KirVerifier.verify(m);
        return m;
    }

    /** Kernel IR text (a kernel generated whole rather than from a template) with its constants bound, verified. */
    static KirModule parse(String text, Map<String, Integer> constants) {
        KirModule m = KirText.parse(text, constants);
        KirVerifier.verify(m);
        return m;
    }

    /** log2 of a power of two. */
    static int log2(int powerOfTwo) {
        if (Integer.bitCount(powerOfTwo) != 1) throw new IllegalArgumentException(powerOfTwo + " is not a power of two");
        return Integer.numberOfTrailingZeros(powerOfTwo);
    }
}
