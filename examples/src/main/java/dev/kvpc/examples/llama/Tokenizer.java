package dev.kvpc.examples.llama;

/**
 * Text to tokens and back, as a generation loop needs it: llama2.c's SentencePiece-style vocabulary
 * ({@link Llama2cTokenizer}) or the byte-level BPE of the project's own model ({@link BpeTokenizer}). One instance may
 * be used by several threads at once (kvpc eval runs its rows in parallel with one model).
 */
public interface Tokenizer {
    /** Tokens in the vocabulary. */
    int size();

    /** The tokens a generation starts from for {@code prompt}: never empty (a BOS, or a start for an empty prompt). */
    int[] start(String prompt);

    /**
     * The token the model was trained to see first in every sequence (BOS), which a host puts before a prompt; -1 if
     * it has none.
     */
    int bos();

    /**
     * The bytes printed for {@code token} following {@code prev}; {@code prev} is -1 for the first token of a
     * generation. A piece may end inside a UTF-8 character; the next one completes it.
     */
    byte[] decode(int prev, int token);

    /** Whether choosing {@code token} ends the generation. */
    boolean ends(int token);

    /**
     * The vocabulary a GGUF file carries, by its {@code tokenizer.ggml.model}: {@code llama} (SentencePiece scores)
     * or {@code gpt2} (byte-level BPE merges, with the {@code kvpc}, {@code gpt-2}, {@code llama-bpe} or {@code qwen2} pre-tokenizer).
     */
    static Tokenizer fromGguf(GgufFile g, int vocab) throws ModelFormatException {
        Object model = g.metadata().get("tokenizer.ggml.model");
        if ("llama".equals(model)) return Llama2cTokenizer.fromGguf(g, vocab);
        if ("gpt2".equals(model)) return BpeTokenizer.fromGguf(g, vocab);
        throw new ModelFormatException(g.file() + ": tokenizer.ggml.model is " + (model == null ? "missing" : "'" + model + "'")
                + "; this reader takes 'llama' (SentencePiece) and 'gpt2' (byte-level BPE) vocabularies");
    }
}
