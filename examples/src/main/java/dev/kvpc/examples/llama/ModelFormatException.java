package dev.kvpc.examples.llama;

/** A model or tokenizer file that cannot be read, with the file and what is wrong. */
public final class ModelFormatException extends Exception {
    public ModelFormatException(String message) {
        super(message);
    }
}
