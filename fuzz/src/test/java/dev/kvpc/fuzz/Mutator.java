package dev.kvpc.fuzz;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * Blind mutations of valid inputs for the reliability run: byte-level for binary files (flips, interesting integers
 * written over header fields and offsets, cuts, splices) and token- and line-level for text (numbers replaced by
 * extremes, tokens dropped, swapped and inserted). Each call applies one to three mutations; the same {@link Random}
 * gives the same result.
 */
final class Mutator {
    private Mutator() {
    }

    /** Integers that break sizes, counts and offsets. */
    private static final long[] INTERESTING = {0, 1, -1, 2, 7, 8, 31, 32, 127, 128, 255, 256, 4095, 4096, 65535, 65536, Integer.MAX_VALUE,
        Integer.MIN_VALUE, 0x80000000L, 0xFFFFFFFFL, 1L << 32, 1L << 40, Long.MAX_VALUE, Long.MIN_VALUE, 1_000_000_000};
    /** Words and numbers that text mutations insert or put in place of a number. */
    private static final String[] TOKENS = {"0", "-1", "1", "2147483647", "2147483648", "-2147483649", "9223372036854775808", "1e308", "-1e308",
        "1e-320", "NaN", "Infinity", "-0.0", "0.5", "65536", "4096", "\"", "\\", "(", ")", "[", "]", "{", "}", ",", ":", "=", ";", "#", "\n", "\t",
        "..", "over:", "query", "token", "group", "channel", "page", "layer", "head", "let", "state", "policy", "config", "fn", "on", "keep",
        "evict", "attend", "merge", "store", "top", "last", "first", "all", "within", "sum", "max", "quantile", "rank", "where", "member",
        "observe", "prefill", "decode", "overflow", "budget", "int", "float", "bool", "f32", "int4", "per", "\u2581", "\u00e9", "\ud83d\ude00"};

    /**
     * A binary trace (docs: runtime/trace/TraceIO) mutated past its checksums: one time in three bytes anywhere, as
     * {@link #bytes}; one in three the text header mutated; one in three bytes of the step records changed in place.
     * The last two have their checksums written again ({@link #withCrcs}), so they reach the checks behind them.
     */
    static byte[] trace(byte[] in, Random r) {
        int mode = r.nextInt(3);
        if (mode == 0) return bytes(in, r);
        int headerEnd = headerEnd(in);
        if (headerEnd < 0) return bytes(in, r);
        if (mode == 1) {
            String header = new String(in, 0, headerEnd, java.nio.charset.StandardCharsets.ISO_8859_1);
            byte[] h = (r.nextBoolean() ? text(header, r) : numbers(header, r)).getBytes(java.nio.charset.StandardCharsets.ISO_8859_1);
            byte[] out = new byte[h.length + in.length - headerEnd];
            System.arraycopy(h, 0, out, 0, h.length);
            System.arraycopy(in, headerEnd, out, h.length, in.length - headerEnd);
            return withCrcs(out);
        }
        List<int[]> records = records(in, headerEnd);
        if (records.isEmpty()) return bytes(in, r);
        byte[] out = in.clone();
        int n = 1 + r.nextInt(3);
        for (int i = 0; i < n; i++) {
            int[] rec = records.get(r.nextInt(records.size()));
            int pos = rec[0] + r.nextInt(rec[1] - rec[0]);
            switch (r.nextInt(3)) {
                case 0 -> out[pos] ^= (byte) (1 << r.nextInt(8));
                case 1 -> out[pos] = (byte) r.nextInt();
                default -> {
                    // a float of the record replaced by an extreme one, or the step's kind or token count by another
                    if (pos + 4 <= rec[1]) ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN).putInt(pos, (int) INTERESTING[r.nextInt(INTERESTING.length)]);
                }
            }
        }
        return withCrcs(out);
    }

    /**
     * {@code in} with the CRC-32 after its header, and after each step record as far as the records can be followed
     * from the header's shape and their token counts, written again: a binary trace whose checksums hold whatever its
     * other bytes say. Bytes that cannot be followed are left as they are.
     */
    static byte[] withCrcs(byte[] in) {
        byte[] out = in.clone();
        int headerEnd = headerEnd(out);
        if (headerEnd < 0) return out;
        putCrc(out, 0, headerEnd);
        for (int[] rec : records(out, headerEnd)) putCrc(out, rec[0], rec[1]);
        return out;
    }

    /** Where the header ends (after "end\n"), or -1 when it does not end with room for its checksum. */
    private static int headerEnd(byte[] in) {
        String all = new String(in, 0, Math.min(in.length, 1 << 16), java.nio.charset.StandardCharsets.ISO_8859_1);
        int end = all.indexOf("\nend\n");
        return end < 0 || end + 5 + 4 > in.length ? -1 : end + 5;
    }

    /** The step records' bounds [kind byte, CRC), from the header's shape and each record's token count. */
    private static List<int[]> records(byte[] in, int headerEnd) {
        List<int[]> records = new ArrayList<>();
        String header = new String(in, 0, headerEnd, java.nio.charset.StandardCharsets.ISO_8859_1);
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("layers=(\\d{1,9}) heads=(\\d{1,9}) kv_heads=(\\d{1,9}) head_dim=(\\d{1,9})").matcher(header);
        if (!m.find()) return records;
        long layers = Long.parseLong(m.group(1)), heads = Long.parseLong(m.group(2)), kv = Long.parseLong(m.group(3)), dim = Long.parseLong(m.group(4));
        ByteBuffer b = ByteBuffer.wrap(in).order(ByteOrder.LITTLE_ENDIAN);
        long at = headerEnd + 4;
        while (at + 5 <= in.length) {
            long tokens = b.getInt((int) at + 1);
            long end = at + 5 + layers * tokens * (2 * kv + heads) * dim * 4;
            if (tokens < 0 || end < at || end + 4 > in.length) break;
            records.add(new int[] {(int) at, (int) end});
            at = end + 4;
        }
        return records;
    }

    /** The CRC-32 of {@code b[from, to)} written at {@code to}. */
    private static void putCrc(byte[] b, int from, int to) {
        java.util.zip.CRC32 crc = new java.util.zip.CRC32();
        crc.update(b, from, to - from);
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(to, (int) crc.getValue());
    }

    static byte[] bytes(byte[] in, Random r) {
        byte[] b = in.clone();
        int n = 1 + r.nextInt(3);
        for (int i = 0; i < n; i++) b = once(b, r);
        return b;
    }

    private static byte[] once(byte[] b, Random r) {
        if (b.length == 0) return new byte[] {(byte) r.nextInt()};
        int at = r.nextInt(b.length);
        switch (r.nextInt(8)) {
            case 0 -> b[at] ^= (byte) (1 << r.nextInt(8));
            case 1 -> b[at] = (byte) r.nextInt();
            case 2, 3 -> {
                // an interesting integer over a 4- or 8-byte field, aligned as header fields are
                int width = r.nextBoolean() ? 4 : 8;
                int pos = Math.min(at & ~(width - 1), b.length - width);
                if (pos < 0) return b;
                ByteBuffer w = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
                long v = INTERESTING[r.nextInt(INTERESTING.length)];
                if (width == 4) w.putInt(pos, (int) v);
                else w.putLong(pos, v);
            }
            case 4 -> {
                return Arrays.copyOf(b, at);
            }
            case 5 -> {
                // a span removed
                int len = Math.min(b.length - at, 1 + r.nextInt(64));
                byte[] c = new byte[b.length - len];
                System.arraycopy(b, 0, c, 0, at);
                System.arraycopy(b, at + len, c, at, b.length - at - len);
                return c;
            }
            case 6 -> {
                // a span of the file repeated at another place
                int from = r.nextInt(b.length), len = Math.min(b.length - from, 1 + r.nextInt(256));
                byte[] c = new byte[b.length + len];
                System.arraycopy(b, 0, c, 0, at);
                System.arraycopy(b, from, c, at, len);
                System.arraycopy(b, at, c, at + len, b.length - at);
                return c;
            }
            default -> {
                // random bytes appended
                byte[] c = Arrays.copyOf(b, b.length + 1 + r.nextInt(64));
                for (int i = b.length; i < c.length; i++) c[i] = (byte) r.nextInt();
                return c;
            }
        }
        return b;
    }

    static String text(String in, Random r) {
        String t = in;
        int n = 1 + r.nextInt(3);
        for (int i = 0; i < n; i++) t = once(t, r);
        return t;
    }

    /** Plausible numbers: what a gentle mutation puts in place of an integer, or of a decimal. */
    private static final String[] INTS = {"0", "1", "2", "3", "4", "7", "8", "16", "31", "32", "64", "100", "1000", "4096", "65535", "1048576", "2147483647"};
    private static final String[] DECIMALS = {"0.0", "0.001", "0.25", "0.5", "1.0", "1.5", "2.0", "100.0", "1e9", "-0.5", "-1.0"};

    /**
     * One to three numbers replaced by other plausible numbers of the same kind (an integer by an integer, a decimal by
     * a decimal): the text keeps its shape, so it gets past the parser more often than {@link #text} does and reaches
     * the checks of values (budgets, ranges, sizes).
     */
    static String numbers(String in, Random r) {
        String t = in;
        int n = 1 + r.nextInt(3);
        for (int i = 0; i < n; i++) {
            List<int[]> numbers = new ArrayList<>();
            for (int[] x : tokens(t)) if (Character.isDigit(t.charAt(x[0]))) numbers.add(x);
            if (numbers.isEmpty()) return t;
            int[] x = numbers.get(r.nextInt(numbers.size()));
            String old = t.substring(x[0], x[1]);
            String[] pool = old.contains(".") || old.contains("e") ? DECIMALS : INTS;
            t = t.substring(0, x[0]) + pool[r.nextInt(pool.length)] + t.substring(x[1]);
        }
        return t;
    }

    private static String once(String t, Random r) {
        List<int[]> tokens = tokens(t);
        if (tokens.isEmpty()) return t + TOKENS[r.nextInt(TOKENS.length)];
        int[] tok = tokens.get(r.nextInt(tokens.size()));
        String word = TOKENS[r.nextInt(TOKENS.length)];
        switch (r.nextInt(7)) {
            case 0 -> {
                // a number replaced by an extreme one
                List<int[]> numbers = new ArrayList<>();
                for (int[] x : tokens) if (Character.isDigit(t.charAt(x[0]))) numbers.add(x);
                int[] x = numbers.isEmpty() ? tok : numbers.get(r.nextInt(numbers.size()));
                return t.substring(0, x[0]) + TOKENS[r.nextInt(16)] + t.substring(x[1]);
            }
            case 1 -> {
                return t.substring(0, tok[0]) + t.substring(tok[1]);
            }
            case 2 -> {
                return t.substring(0, tok[0]) + word + t.substring(tok[1]);
            }
            case 3 -> {
                return t.substring(0, tok[0]) + word + " " + t.substring(tok[0]);
            }
            case 4 -> {
                // two lines swapped, or one repeated
                String[] lines = t.split("\n", -1);
                int a = r.nextInt(lines.length), b = r.nextInt(lines.length);
                if (r.nextBoolean()) {
                    String s = lines[a];
                    lines[a] = lines[b];
                    lines[b] = s;
                } else {
                    lines[a] = lines[a] + "\n" + lines[b];
                }
                return String.join("\n", lines);
            }
            case 5 -> {
                return t.substring(0, tok[0]);
            }
            default -> {
                // a token copied from elsewhere
                int[] other = tokens.get(r.nextInt(tokens.size()));
                return t.substring(0, tok[0]) + t.substring(other[0], other[1]) + t.substring(tok[1]);
            }
        }
    }

    /** Spans of words, numbers and single other characters (not whitespace); a surrogate pair is one character. */
    private static List<int[]> tokens(String t) {
        List<int[]> out = new ArrayList<>();
        int i = 0;
        while (i < t.length()) {
            char c = t.charAt(i);
            if (Character.isWhitespace(c)) {
                i++;
                continue;
            }
            int j = i + Character.charCount(t.codePointAt(i));
            if (Character.isLetterOrDigit(c) || c == '_' || c == '.') {
                while (j < t.length() && (Character.isLetterOrDigit(t.charAt(j)) || t.charAt(j) == '_' || t.charAt(j) == '.')) j++;
            }
            out.add(new int[] {i, j});
            i = j;
        }
        return out;
    }
}
