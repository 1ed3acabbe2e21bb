package dev.kvpc.examples.llama;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * llama2.c's tokenizer file: a max token length, then per token a float score, an int length and the bytes. Token 1 is
 * BOS: every generation starts from it, and choosing it ends one.
 */
public final class Llama2cTokenizer implements Tokenizer {
    /** llama2.c's BOS: every story of its training data starts with it. */
    private static final int BOS = 1;
    private final byte[][] pieces;
    private final float[] scores;

    private Llama2cTokenizer(byte[][] pieces, float[] scores) {
        this.pieces = pieces;
        this.scores = scores;
        // built here, not on first use: one tokenizer is shared by kvpc eval's threads
        java.util.Map<String, Integer> ix = new java.util.HashMap<>();
        for (int i = pieces.length - 1; i >= 0; i--) ix.put(new String(pieces[i], StandardCharsets.ISO_8859_1), i);
        this.index = ix;
    }

    public static Llama2cTokenizer load(Path file, int vocab) throws ModelFormatException {
        Llama2cModel.regularFile(file);
        byte[] bytes;
        try {
            // a real vocabulary file is under a few MiB: 256 bytes for each of Llama2cModel.MAX_VOCAB tokens is plenty
            long size = Files.size(file);
            if (size > 256L * Llama2cModel.MAX_VOCAB) {
                throw new ModelFormatException(file + ": " + size + " bytes, too large for a tokenizer of at most " + Llama2cModel.MAX_VOCAB + " tokens");
            }
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot read: " + e.getMessage());
        }
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        try {
            b.getInt(); // max token length
            byte[][] pieces = new byte[vocab][];
            float[] scores = new float[vocab];
            for (int i = 0; i < vocab; i++) {
                scores[i] = b.getFloat();
                int len = b.getInt();
                if (len < 0 || len > b.remaining()) throw new ModelFormatException(file + ": token " + i + " has a bad length " + len);
                pieces[i] = new byte[len];
                b.get(pieces[i]);
            }
            return new Llama2cTokenizer(pieces, scores);
        } catch (java.nio.BufferUnderflowException e) {
            throw new ModelFormatException(file + ": truncated: fewer than " + vocab + " tokens");
        }
    }

    /**
     * The SentencePiece vocabulary a GGUF file carries ({@code tokenizer.ggml.tokens} and {@code .scores}), with its
     * word-boundary mark U+2581 read as a space, the form llama2.c's tokenizer files hold.
     */
    public static Llama2cTokenizer fromGguf(GgufFile g, int vocab) throws ModelFormatException {
        Object model = g.metadata().get("tokenizer.ggml.model");
        if (!"llama".equals(model))
            throw new ModelFormatException(g.file() + ": tokenizer.ggml.model is " + model + "; this reader takes SentencePiece ('llama') vocabularies");
        java.util.List<String> tokens = g.strings("tokenizer.ggml.tokens");
        if (tokens.size() != vocab)
            throw new ModelFormatException(g.file() + ": shape mismatch: " + tokens.size() + " tokens in the vocabulary, " + vocab + " rows in token_embd.weight");
        float[] scores = g.floatsOrNull("tokenizer.ggml.scores");
        if (scores == null) scores = new float[vocab];
        if (scores.length != vocab) throw new ModelFormatException(g.file() + ": shape mismatch: " + scores.length + " token scores for " + vocab + " tokens");
        byte[][] pieces = new byte[vocab][];
        for (int i = 0; i < vocab; i++) pieces[i] = tokens.get(i).replace('\u2581', ' ').getBytes(StandardCharsets.UTF_8);
        return new Llama2cTokenizer(pieces, scores);
    }

    /** Piece to id, the first id where a piece repeats; read only after the constructor. */
    private final java.util.Map<String, Integer> index;

    /**
     * llama2.c's encoding: BOS, a dummy-prefix space when the text is not empty, one token per UTF-8 character
     * (its bytes + 3 where the vocabulary lacks it), then repeatedly the adjacent pair whose merge has the best score.
     */
    public int[] encode(String text, boolean bos) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        int[] t = new int[bytes.length + 2]; // BOS, the dummy prefix, at most a token per byte
        int n = 0;
        if (bos) t[n++] = BOS;
        if (bytes.length > 0) {
            Integer sp = index.get(" ");
            if (sp != null) t[n++] = sp;
        }
        for (int i = 0; i < bytes.length; ) {
            int j = i + 1;
            while (j < bytes.length && j - i < 4 && (bytes[j] & 0xC0) == 0x80) j++;
            Integer id = index.get(new String(bytes, i, j - i, StandardCharsets.ISO_8859_1));
            if (id != null) t[n++] = id;
            // byte fallback: byte b is token b + 3 (<0x00>..<0xFF> follow <unk>, <s>, </s>); a vocabulary too small to
            // hold the byte tokens gives <unk> (0), not an id past its end
            else for (int b = i; b < j; b++) t[n++] = (bytes[b] & 0xff) + 3 < pieces.length ? (bytes[b] & 0xff) + 3 : 0;
            i = j;
        }
        // llama2.c's merge loop: repeatedly merge the adjacent pair whose merged piece scores highest (the first such
        // pair on ties). The merged id of each adjacent pair is kept in pair[] and only the neighbours of a merge are
        // looked up again, so a step is one scan instead of a string per pair.
        int[] pair = new int[Math.max(1, n)];
        for (int i = 0; i + 1 < n; i++) pair[i] = merged(t[i], t[i + 1]);
        while (true) {
            float best = -1e10f;
            int bestAt = -1;
            for (int i = 0; i + 1 < n; i++) {
                int id = pair[i];
                if (id >= 0 && scores[id] > best) {
                    best = scores[id];
                    bestAt = i;
                }
            }
            if (bestAt < 0) break;
            t[bestAt] = pair[bestAt];
            System.arraycopy(t, bestAt + 2, t, bestAt + 1, n - bestAt - 2);
            System.arraycopy(pair, bestAt + 2, pair, bestAt + 1, Math.max(0, n - bestAt - 3));
            n--;
            if (bestAt > 0) pair[bestAt - 1] = merged(t[bestAt - 1], t[bestAt]);
            if (bestAt + 1 < n) pair[bestAt] = merged(t[bestAt], t[bestAt + 1]);
        }
        return java.util.Arrays.copyOf(t, n);
    }

    byte[] piece(int id) {
        return pieces[id];
    }

    /** The id of the piece made of {@code a}'s and {@code b}'s bytes, or -1; remembered by pair. */
    private int merged(int a, int b) {
        return mergedPairs.computeIfAbsent((long) a << 32 | b, k -> {
            Integer id = index.get(new String(pieces[a], StandardCharsets.ISO_8859_1) + new String(pieces[b], StandardCharsets.ISO_8859_1));
            return id == null ? -1 : id;
        });
    }

    /** {@link #merged} by pair of ids ({@code a << 32 | b}): encoding a text asks for the same pairs again and again. */
    private final java.util.concurrent.ConcurrentHashMap<Long, Integer> mergedPairs = new java.util.concurrent.ConcurrentHashMap<>();

    @Override
    public int size() {
        return pieces.length;
    }

    /** Token 1, as in llama2.c. */
    @Override
    public int bos() {
        return BOS;
    }

    /** BOS and the prompt's tokens. */
    @Override
    public int[] start(String prompt) {
        return encode(prompt, true);
    }

    @Override
    public boolean ends(int token) {
        return token == BOS;
    }

    /**
     * The bytes printed for {@code token} following {@code prev}, as llama2.c's decode and safe_printf do: the first
     * token (BOS) prints nothing, a piece after BOS loses its leading space, {@code <0xHH>} pieces are that raw byte,
     * and single bytes that are neither printable ASCII nor whitespace are not printed.
     */
    @Override
    public byte[] decode(int prev, int token) {
        if (prev < 0) return new byte[0];
        byte[] p = pieces[token];
        String s = new String(p, StandardCharsets.ISO_8859_1);
        if (prev == BOS && s.startsWith(" ")) s = s.substring(1);
        byte[] out = s.getBytes(StandardCharsets.ISO_8859_1);
        if (s.length() == 6 && s.startsWith("<0x") && s.endsWith(">")) {
            try {
                out = new byte[] {(byte) Integer.parseInt(s.substring(3, 5), 16)};
            } catch (NumberFormatException ignored) {
                // not a byte token after all
            }
        }
        boolean printable = out.length != 1 || (out[0] & 0xff) >= 32 && (out[0] & 0xff) < 127 || Character.isWhitespace(out[0]);
        return printable ? out : new byte[0];
    }

    public float score(int token) {
        return scores[token];
    }
}
