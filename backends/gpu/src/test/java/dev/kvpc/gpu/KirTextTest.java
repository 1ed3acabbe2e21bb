package dev.kvpc.gpu;

import dev.kvpc.gpu.emit.CEmitter;
import dev.kvpc.gpu.emit.Dialect;
import dev.kvpc.gpu.kernels.DecodeAttention;
import dev.kvpc.gpu.kernels.KernelTemplates;
import dev.kvpc.gpu.kir.KirException;
import dev.kvpc.gpu.kir.KirModule;
import dev.kvpc.gpu.kir.KirText;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The kernel IR's text form: round trips, golden dumps of the shipped kernels in IR and both C dialects, parse errors. */
class KirTextTest {
    @Test
    void everyShippedKernelRoundTrips() {
        for (int d : new int[] {8, 64, 128}) {
            for (int g : new int[] {1, 4, 8}) {
                KirModule m = DecodeAttention.module(d, g, 64, 256);
                String text = KirText.print(m);
                assertEquals(m, KirText.parse(text), "d" + d + " g" + g);
                assertEquals(text, KirText.print(KirText.parse(text)));
            }
        }
    }

    /**
     * The kernels at one shape, as IR and OpenCL C: a change to the template or an emitter shows as a diff (the CUDA C
     * text is held the same way by {@code ExportCudaTest}, as benchmarks/gpu/kernels).
     */
    @Test
    void goldenDumps() throws Exception {
        KirModule m = DecodeAttention.module(64, 4, 64, 256);
        Golden.check("decode_attention_d64_g4_wg64.kir", KirText.print(m));
        Golden.check("decode_attention_d64_g4_wg64.cl", CEmitter.emit(m, Dialect.OPENCL));
        // the resident form: rows read in place from device pages, a lane of f16 rows with int4 rows re-stored in it
        KirModule r = dev.kvpc.gpu.kernels.ResidentDecodeKernel.module(64, 4, 64, 256, List.of(dev.kvpc.runtime.store.QuantSpec.of(dev.kvpc.runtime.store.Precision.F16),
                dev.kvpc.runtime.store.QuantSpec.resolve(dev.kvpc.runtime.store.Precision.INT4, dev.kvpc.runtime.store.QuantSpec.Axis.TOKEN, 32, 64)), 16);
        Golden.check("decode_resident_d64_g4_f16_int4.kir", KirText.print(r));
        // the engine's norms, gate and adds: floats with double steps (the CUDA text is benchmarks/gpu/kernels/engine.cu)
        KirModule e = KernelTemplates.module("engine", java.util.Map.of("WG", 64, "LOGWG", 6));
        Golden.check("engine_wg64.cl", CEmitter.emit(e, Dialect.OPENCL));
    }

    @Test
    void literalsRoundTripExactly() {
        String src = "kernel k (out buffer float y, int n) {\n  store y[0] = ((1.0E-5f + -inf) * (0.1f - -3.5f));\n  store y[1] = float((n % -7));\n}\n";
        KirModule m = KirText.parse(src);
        assertEquals(src, KirText.print(m));
        String c = CEmitter.emit(m, Dialect.OPENCL);
        assertTrue(c.contains("((1.0E-5f + (-INFINITY)) * (0.1f - (-3.5f)))"), c);
        assertTrue(c.contains("(float) (n % (-7))"), c);
    }

    @Test
    void constantsBindAsTheyAreRead() {
        KirModule m = KirText.parse("kernel k [group (W * 2)] (out buffer float y) {\n  local float t[(W + 1)];\n  store y[W] = 1.0f;\n}\n", Map.of("W", 32));
        assertEquals(64, m.kernels().get(0).groupSize());
        assertEquals(33, m.kernels().get(0).locals().get(0).size());
        assertEquals("kernel k [group 64] (out buffer float y) {\n  local float t[33];\n  store y[32] = 1.0f;\n}\n", KirText.print(m));
    }

    @Test
    void parseErrorsSayWhere() {
        record Case(String src, String message) {
        }
        for (Case c : List.of(
                new Case("kernel k (buffer float x) {\n  let int i = (1 +);\n}", "2:19: expected an expression, found ')'"),
                new Case("kernel k (buffer float x) {\n  let int i = frob(1);\n}", "2:15: frob is not an operation of the kernel IR"),
                new Case("kernel k (buffer float x) {\n  let int i = global_id(3);\n}", "2:25: global_id takes a dimension 0, 1 or 2"),
                new Case("kernel k (buffer quad x) {}", "1:18: expected a type (bool, int, float, half, uchar), found 'quad'"),
                new Case("kernel k () {\n  barrier;\n", "3:1: expected a '}' closes the block at the end"),
                new Case("kernel k [group (4 / 0)] () {}", "1:24: expected the work-group size without a division by zero, found ']'"),
                new Case("kernel k () { let int i = exp(1.0f, 2.0f); }", "1:27: exp takes 1 operands, not 2"))) {
            KirException e = assertThrows(KirException.class, () -> KirText.parse(c.src()), c.src());
            assertEquals(c.message(), e.getMessage(), c.src());
        }
    }

    @Test
    void templatesAreFoundByName() {
        assertTrue(KernelTemplates.text("decode_attention").contains("kernel decode_partial"));
        assertThrows(IllegalArgumentException.class, () -> KernelTemplates.text("nothing"));
    }

    /** Golden files under src/test/resources/golden; {@code -Dkvpc.bless=true} writes them. */
    static final class Golden {
        static void check(String name, String actual) throws Exception {
            Path p = Path.of("src/test/resources/golden", name);
            if (Boolean.getBoolean("kvpc.bless")) {
                Files.createDirectories(p.getParent());
                Files.writeString(p, actual);
                return;
            }
            assertTrue(Files.exists(p), p + " is missing: run with -Dkvpc.bless=true to write it");
            assertEquals(Files.readString(p), actual, name + " differs from its golden dump (-Dkvpc.bless=true rewrites it)");
        }
    }
}
