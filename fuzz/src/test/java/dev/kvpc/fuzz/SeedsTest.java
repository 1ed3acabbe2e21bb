package dev.kvpc.fuzz;

import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.examples.llama.GgufFile;
import dev.kvpc.examples.llama.Llama2cModel;
import dev.kvpc.runtime.load.BytecodeVerifier;
import dev.kvpc.runtime.load.PolicyManifest;
import dev.kvpc.runtime.trace.TraceIO;
import dev.kvpc.runtime.trace.TraceText;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The seed inputs each fuzz target starts from are valid inputs of its reader (so fuzzing starts inside the format, not at
 * its first check). Files named {@code crash-*} are kept findings, not seeds.
 */
class SeedsTest {
    private static List<Path> seeds(String target) throws IOException {
        Path dir = Path.of("src/test/resources/dev/kvpc/fuzz").resolve(target);
        try (Stream<Path> s = Files.list(dir)) {
            List<Path> all = s.filter(p -> !p.getFileName().toString().startsWith("crash-")).sorted().toList();
            assertFalse(all.isEmpty(), "no seeds in " + dir);
            return all;
        }
    }

    @Test
    void programsCheckWithoutErrors() throws IOException {
        for (Path p : seeds("FrontendFuzzTestInputs/check")) {
            var r = Frontend.checkText(p.getFileName() + ".kvp", Files.readString(p), null, ModelShape.presets().get("reference"));
            assertTrue(r.ok(), p + ": " + r.diagnostics().all());
        }
    }

    @Test
    void manifestsParse() throws Exception {
        for (Path p : seeds("ManifestFuzzTestInputs/parse")) PolicyManifest.parse(Files.readAllBytes(p));
    }

    @Test
    void classFilesPassTheVerifier() throws Exception {
        BytecodeVerifier v = new BytecodeVerifier(getClass().getClassLoader());
        for (Path p : seeds("BytecodeVerifierFuzzTestInputs/verify")) {
            byte[] b = Files.readAllBytes(p);
            v.verify(Map.of(BytecodeVerifierFuzzTest.name(b), b));
        }
    }

    @Test
    void modelsLoadWithFiniteWeights() throws Exception {
        for (Path p : seeds("ModelFileFuzzTestInputs/gguf")) {
            GgufFile g = GgufFile.open(p);
            Llama2cModel m = Llama2cModel.fromGguf(g);
            assertNull(m.nonFinite(), p.toString());
            assertEquals(8, Llama2cModel.class.getField("vocab").getInt(m));
        }
        for (Path p : seeds("ModelFileFuzzTestInputs/llama2c")) assertNull(Llama2cModel.load(p).nonFinite(), p.toString());
    }

    @Test
    void tracesRead() throws Exception {
        for (Path p : seeds("TraceFuzzTestInputs/binary")) {
            try (InputStream in = Files.newInputStream(p)) {
                assertFalse(TraceIO.read(in).steps().isEmpty(), p.toString());
            }
        }
        for (Path p : seeds("TraceFuzzTestInputs/text")) assertFalse(TraceText.parse(Files.readString(p, StandardCharsets.UTF_8)).steps().isEmpty(), p.toString());
    }
}
