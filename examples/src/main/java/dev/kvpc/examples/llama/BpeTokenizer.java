package dev.kvpc.examples.llama;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Byte-level BPE, read from a GGUF file: the project's own model's ({@code tools/train/train.py}'s {@code Tokenizer},
 * from the file {@code tools/train/export.py} writes, encoding exactly as the Python does), or a vocabulary with
 * llama.cpp's GPT-2, Llama 3 or Qwen2 pre-tokenizer ({@link Pre}). The text is split into pieces by the
 * pre-tokenizer (the project's is {@link #PATTERN}, Python {@code re} semantics: {@code \s} is Python's Unicode
 * whitespace), each piece's UTF-8 bytes start as one token per byte, and the adjacent pair with the lowest merge
 * rank (the leftmost among equals) is merged until no pair has a rank. A BOS if the file asks for one; no end token.
 *
 * <p>In the file, tokens and merges are spelled with the byte-level alphabet: each byte one printable character
 * (printable Latin-1 bytes themselves, the other 68 bytes U+0100 upwards in byte order), a merge as "A B".
 */
public final class BpeTokenizer implements Tokenizer {
    /** The pre-tokenizer this class implements, as train.py writes it to {@code kvpc.tokenizer.pattern}. */
    public static final String PATTERN = " ?[A-Za-z]+| ?[0-9]| ?[^A-Za-z0-9\\s]+|\\s+";

    private record Pair(String a, String b) {
    }

    /**
     * The pre-tokenizers this class implements, by their {@code tokenizer.ggml.pre} names: the project's own
     * ({@link #PATTERN}, written out), and llama.cpp's GPT-2, Llama 3 and Qwen2 rules as regular expressions over
     * Unicode classes. Llama 3 also takes a pre-token that is itself in the vocabulary as one token, unmerged, as
     * llama.cpp does for it ({@code ignore_merges}).
     */
    enum Pre {
        KVPC(null, false, "kvpc"),
        GPT2("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", false, "gpt-2"),
        LLAMA3("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
                true, "llama-bpe", "llama3", "llama-v3"),
        QWEN2("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
                false, "qwen2");

        final java.util.regex.Pattern regex;
        final boolean wholeWords;
        final List<String> names;

        Pre(String regex, boolean wholeWords, String... names) {
            this.regex = regex == null ? null : java.util.regex.Pattern.compile(regex, java.util.regex.Pattern.UNICODE_CHARACTER_CLASS);
            this.wholeWords = wholeWords;
            this.names = List.of(names);
        }

        /** The regular expression that splits text into pieces (the project's {@link #PATTERN} for {@link #KVPC}). */
        String pattern() {
            return regex == null ? PATTERN : regex.pattern();
        }

        static Pre named(Object name) {
            for (Pre p : values()) if (p.names.contains(name)) return p;
            return null;
        }

        static List<String> allNames() {
            List<String> l = new ArrayList<>();
            for (Pre p : values()) l.addAll(p.names);
            return l;
        }

        List<String> split(String text) {
            if (regex == null) return pieces(text);
            List<String> out = new ArrayList<>();
            java.util.regex.Matcher m = regex.matcher(text);
            while (m.find()) out.add(m.group());
            return out;
        }
    }

    /** Token bytes, each byte a char 0-255 (ISO-8859-1), which keeps maps of byte strings cheap. */
    private final String[] pieces;
    private final Map<String, Integer> ids = new HashMap<>();
    private final Map<Pair, Integer> ranks = new HashMap<>();
    /** Each pre-token's ids once merged; concurrent because kvpc eval encodes on several threads with one tokenizer. */
    private final Map<String, int[]> cache = new java.util.concurrent.ConcurrentHashMap<>();
    private final int bos;
    private final Pre pre;

    private BpeTokenizer(String[] pieces, List<Pair> merges, int bos, Pre pre) {
        this.pieces = pieces;
        this.bos = bos;
        this.pre = pre;
        // As train.py's dicts: a repeated piece or pair keeps its last index.
        for (int i = 0; i < pieces.length; i++) ids.put(pieces[i], i);
        for (int i = 0; i < merges.size(); i++) ranks.put(merges.get(i), i);
    }

    /** The byte each character of the byte-level alphabet stands for, -1 for characters outside it. */
    private static final int[] BYTE_OF = new int[0x100 + 68];

    static {
        java.util.Arrays.fill(BYTE_OF, -1);
        int extra = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = b >= 0x21 && b <= 0x7e || b >= 0xa1 && b <= 0xac || b >= 0xae;
            BYTE_OF[printable ? b : 0x100 + extra++] = b;
        }
    }

    /** A token spelled in the byte-level alphabet, as bytes in an ISO-8859-1 string; null if a character is outside it. */
    private static String unspell(String s) {
        StringBuilder out = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c >= BYTE_OF.length || BYTE_OF[c] < 0) return null;
            out.append((char) BYTE_OF[c]);
        }
        return out.toString();
    }

    public static BpeTokenizer fromGguf(GgufFile g, int vocab) throws ModelFormatException {
        String f = g.file() + ": ";
        Object model = g.metadata().get("tokenizer.ggml.model");
        if (!"gpt2".equals(model)) throw new ModelFormatException(f + "tokenizer.ggml.model is " + model + ", not 'gpt2' (byte-level BPE)");
        Object preName = g.metadata().get("tokenizer.ggml.pre");
        Pre pre = Pre.named(preName);
        if (pre == null)
            throw new ModelFormatException(f + "tokenizer.ggml.pre is " + (preName == null ? "missing" : "'" + preName + "'")
                    + "; this reader implements the pre-tokenizers " + String.join(", ", Pre.allNames()));
        Object pattern = g.metadata().get("kvpc.tokenizer.pattern");
        if (pre == Pre.KVPC && !PATTERN.equals(pattern))
            throw new ModelFormatException(f + "kvpc.tokenizer.pattern is " + (pattern == null ? "missing" : "/" + pattern + "/")
                    + "; this reader implements /" + PATTERN + "/");
        List<String> tokens = g.strings("tokenizer.ggml.tokens");
        if (tokens.size() != vocab)
            throw new ModelFormatException(f + "shape mismatch: " + tokens.size() + " tokens in the vocabulary, " + vocab + " rows in token_embd.weight");
        String[] pieces = new String[vocab];
        for (int i = 0; i < vocab; i++) {
            pieces[i] = unspell(tokens.get(i));
            if (pieces[i] == null || pieces[i].isEmpty())
                throw new ModelFormatException(f + "token " + i + " '" + tokens.get(i) + "' is empty or spelled outside the byte-level alphabet");
        }
        List<String> spelled = g.strings("tokenizer.ggml.merges");
        List<Pair> merges = new ArrayList<>(spelled.size());
        java.util.Set<String> known = new java.util.HashSet<>(java.util.Arrays.asList(pieces));
        for (int i = 0; i < spelled.size(); i++) {
            String m = spelled.get(i);
            int sp = m.indexOf(' ');
            String a = sp > 0 ? unspell(m.substring(0, sp)) : null, b = sp > 0 ? unspell(m.substring(sp + 1)) : null;
            if (a == null || b == null || b.isEmpty())
                throw new ModelFormatException(f + "merge " + i + " '" + m + "' is not two byte-level tokens separated by one space");
            if (!known.contains(a) || !known.contains(b) || !known.contains(a + b))
                throw new ModelFormatException(f + "merge " + i + " '" + m + "' joins or makes a piece that is not in the vocabulary");
            merges.add(new Pair(a, b));
        }
        for (int b = 0; b < 256; b++)
            if (!known.contains(String.valueOf((char) b)))
                throw new ModelFormatException(f + "byte 0x" + String.format("%02x", b) + " has no token; byte-level BPE needs one for each of the 256 bytes");
        // a BOS only where the file asks for one to be added (tokenizer.ggml.add_bos_token; for this vocabulary type
        // the default is not to)
        int bos = -1;
        if (Boolean.TRUE.equals(g.metadata().get("tokenizer.ggml.add_bos_token"))) {
            Object id = g.metadata().get("tokenizer.ggml.bos_token_id");
            if (!(id instanceof Number n) || n.longValue() < 0 || n.longValue() >= vocab)
                throw new ModelFormatException(f + "tokenizer.ggml.add_bos_token is true but tokenizer.ggml.bos_token_id is " + (id == null ? "missing" : id + ", not a token"));
            bos = n.intValue();
        }
        return new BpeTokenizer(pieces, merges, bos, pre);
    }

    @Override
    public int size() {
        return pieces.length;
    }

    /** The token ids of {@code text}, as train.py's {@code Tokenizer.encode} gives them. */
    public int[] encode(String text) {
        List<int[]> parts = new ArrayList<>();
        int n = 0;
        for (String p : pre.split(text)) {
            int[] ids = cache.computeIfAbsent(p, this::merge);
            parts.add(ids);
            n += ids.length;
        }
        int[] out = new int[n];
        int at = 0;
        for (int[] ids : parts) {
            System.arraycopy(ids, 0, out, at, ids.length);
            at += ids.length;
        }
        return out;
    }

    private int[] merge(String piece) {
        byte[] bytes = piece.getBytes(StandardCharsets.UTF_8);
        if (pre.wholeWords) {
            Integer whole = ids.get(new String(bytes, StandardCharsets.ISO_8859_1));
            if (whole != null) return new int[] {whole};
        }
        List<String> s = new ArrayList<>(bytes.length);
        for (byte b : bytes) s.add(String.valueOf((char) (b & 0xff)));
        while (s.size() > 1) {
            int best = Integer.MAX_VALUE, at = -1;
            for (int i = 0; i + 1 < s.size(); i++) {
                Integer r = ranks.get(new Pair(s.get(i), s.get(i + 1)));
                if (r != null && r < best) {
                    best = r;
                    at = i;
                }
            }
            if (at < 0) break;
            s.set(at, s.get(at) + s.remove(at + 1));
        }
        int[] out = new int[s.size()];
        for (int i = 0; i < out.length; i++) out[i] = ids.get(s.get(i));
        return out;
    }

    /**
     * The pre-tokenizer: Python's {@code re.findall(PATTERN, text)}, written out. At each position the first
     * alternative that matches wins, greedily: a space and letters, or letters; a space and a digit, or a digit; a
     * space and other characters, or other characters; else a run of whitespace. Every character is one of these,
     * so the pieces cover the text.
     */
    static List<String> pieces(String text) {
        List<String> out = new ArrayList<>();
        int n = text.length();
        for (int i = 0; i < n; ) {
            int c = text.codePointAt(i);
            int next = i + Character.charCount(c) < n ? text.codePointAt(i + Character.charCount(c)) : -1;
            int j;
            if (letter(c) || c == ' ' && letter(next)) {
                j = c == ' ' ? i + 1 : i;
                while (j < n && letter(text.charAt(j))) j++;
            } else if (digit(c) || c == ' ' && digit(next)) {
                j = (c == ' ' ? i + 1 : i) + 1;
            } else if (other(c) || c == ' ' && other(next)) {
                j = c == ' ' ? i + 1 : i;
                while (j < n && other(text.codePointAt(j))) j += Character.charCount(text.codePointAt(j));
            } else {
                j = i;
                while (j < n && space(text.codePointAt(j))) j += Character.charCount(text.codePointAt(j));
            }
            out.add(text.substring(i, j));
            i = j;
        }
        return out;
    }

    private static boolean letter(int c) {
        return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z';
    }

    private static boolean digit(int c) {
        return c >= '0' && c <= '9';
    }

    private static boolean other(int c) {
        return c >= 0 && !letter(c) && !digit(c) && !space(c);
    }

    /** Python's {@code \s} in a str pattern (str.isspace): the characters Unicode calls whitespace, bidi class B, S or WS, or category Zs. */
    static boolean space(int c) {
        return c >= 0x09 && c <= 0x0d || c >= 0x1c && c <= 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680
                || c >= 0x2000 && c <= 0x200a || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
    }

    /** The file's BOS when it asks for one to be added ({@code tokenizer.ggml.add_bos_token}), else -1. */
    @Override
    public int bos() {
        return bos;
    }

    /**
     * The prompt's tokens, after the BOS if the model has one; an empty prompt without a BOS starts from a newline
     * (training documents are separated by blank lines).
     */
    @Override
    public int[] start(String prompt) {
        if (bos < 0) return encode(prompt.isEmpty() ? "\n" : prompt);
        int[] t = encode(prompt), out = new int[t.length + 1];
        out[0] = bos;
        System.arraycopy(t, 0, out, 1, t.length);
        return out;
    }

    /** The token's bytes; a BOS prints nothing. */
    @Override
    public byte[] decode(int prev, int token) {
        return token == bos ? new byte[0] : pieces[token].getBytes(StandardCharsets.ISO_8859_1);
    }

    @Override
    public boolean ends(int token) {
        return false;
    }
}
