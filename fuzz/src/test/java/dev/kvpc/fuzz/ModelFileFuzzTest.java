package dev.kvpc.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.kvpc.examples.llama.GgufFile;
import dev.kvpc.examples.llama.Llama2cModel;
import dev.kvpc.examples.llama.ModelFormatException;
import dev.kvpc.examples.llama.Tokenizer;

/**
 * The model readers on any file: GGUF (header, metadata, tensor table, the model and tokenizer built from it) and
 * llama2.c checkpoints. A file is read or refused with a {@link ModelFormatException}; the scan for non-finite
 * weights runs on whatever is read.
 */
class ModelFileFuzzTest {
    @FuzzTest(maxDuration = "30s")
    void gguf(byte[] input) {
        try {
            GgufFile g = GgufFile.open(Fuzzing.file("model.gguf", input));
            Llama2cModel m = Llama2cModel.fromGguf(g);
            m.nonFinite();
            Tokenizer.fromGguf(g, m.vocab);
        } catch (ModelFormatException e) {
            // refused, with a message
        }
    }

    @FuzzTest(maxDuration = "30s")
    void llama2c(byte[] input) {
        try {
            Llama2cModel.load(Fuzzing.file("model.bin", input)).nonFinite();
        } catch (ModelFormatException e) {
            // refused, with a message
        }
    }
}
