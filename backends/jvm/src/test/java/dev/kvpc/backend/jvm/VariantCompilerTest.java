package dev.kvpc.backend.jvm;

import dev.kvpc.backend.interp.InterpRunner;
import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.ir.AttentionIr;
import dev.kvpc.ir.IrProgram;
import dev.kvpc.ir.LaneShape;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.runtime.AttentionVariant;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.objectweb.asm.ClassReader;
import org.objectweb.asm.util.CheckClassAdapter;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Every stdlib attention variant compiled to bytecode: the class passes ASM's CheckClassAdapter, and its logits,
 * masks and normalisation equal the reference interpreter's bit for bit on random queries, keys and positions.
 */
class VariantCompilerTest {
    static final ModelShape SHAPE = ModelShape.parse("layers=2,heads=8,kv-heads=2,head-dim=32");

    @TestFactory
    Stream<DynamicTest> variantsAgreeWithTheInterpreter() throws Exception {
        Path dir = Files.createTempDirectory("kvpc-jvm");
        Path root = Path.of("").toAbsolutePath();
        while (!Files.isDirectory(root.resolve("stdlib-policies"))) root = root.getParent();
        for (String f : List.of("variants.kvp", "window.kvp")) Files.copy(root.resolve("stdlib-policies/" + f), dir.resolve(f));
        List<DynamicTest> tests = new ArrayList<>();
        for (String v : List.of("standard", "softcap", "alibi", "sliding", "sigmoid")) {
            Path f = dir.resolve("d_" + v + ".kvp");
            Files.writeString(f, "import \"variants.kvp\"\nimport \"window.kvp\"\n\nconfig d {\n    attention " + (v.equals("sliding") ? "sliding(w = 40)" : v)
                    + "\n    layers 0.. use window(size = 24)\n}\n");
            tests.add(DynamicTest.dynamicTest(v, () -> check(f, v)));
        }
        return tests.stream();
    }

    private static void check(Path f, String name) {
        Frontend.Result r = Frontend.check(f, SHAPE);
        assertTrue(r.ok(), r.diagnostics().all().toString());
        IrProgram ir = Compilation.lower(r.program());
        Specialized s = Compilation.optimise(r.program(), "d", Map.of(), Pipeline.Options.DEFAULT, (a, b) -> { });
        // the config's variant, its arguments bound (sliding(w = 40) is not the declaration's w = 4096)
        AttentionIr variant = s.variant();
        assertEquals(name.equals("sliding") ? "sliding_d" : name, variant.name());
        assertTrue(ir.variant(variant.name()).isPresent());
        LaneShape shape = Compilation.lanes(SHAPE);
        byte[] bytes = VariantCompiler.classFile(variant, shape);
        StringWriter problems = new StringWriter();
        CheckClassAdapter.verify(new ClassReader(bytes), VariantCompiler.class.getClassLoader(), false, new PrintWriter(problems));
        assertEquals("", problems.toString(), "CheckClassAdapter");
        AttentionVariant compiled = VariantCompiler.compile(variant, shape);
        AttentionVariant reference = new InterpRunner(s).variant();
        if (name.equals("standard")) {
            assertNull(reference, "the interpreter runs standard attention directly");
            // its direct path (VariantEval without a variant): sum of (double) q*k in order, times 1/sqrt(d), causal
            double scale = 1.0 / Math.sqrt(shape.headDim());
            reference = new AttentionVariant() {
                public double logit(float[] q, int qOff, float[] k, int qpos, int kpos, int head, int context) {
                    double s = 0;
                    for (int c = 0; c < k.length; c++) s += (double) q[qOff + c] * k[c];
                    return s * scale;
                }

                public boolean visible(float[] q, int qOff, float[] k, int qpos, int kpos, int head, int context) {
                    return kpos <= qpos;
                }

                public Normalize normalize() {
                    return Normalize.SOFTMAX;
                }
            };
        }
        assertEquals(reference.normalize(), compiled.normalize());
        Random rnd = new Random(name.hashCode());
        int d = shape.headDim();
        for (int i = 0; i < 2000; i++) {
            float[] q = new float[3 * d], k = new float[d];
            for (int c = 0; c < q.length; c++) q[c] = (float) (rnd.nextGaussian() * (i % 7 == 0 ? 40 : 1));
            for (int c = 0; c < d; c++) k[c] = (float) rnd.nextGaussian();
            int qOff = rnd.nextInt(3) * d, qpos = rnd.nextInt(200), kpos = rnd.nextInt(220) - 10, head = rnd.nextInt(shape.heads());
            double want = reference.logit(q, qOff, k, qpos, kpos, head, qpos + 1), got = compiled.logit(q, qOff, k, qpos, kpos, head, qpos + 1);
            assertEquals(Double.doubleToLongBits(want), Double.doubleToLongBits(got), name + ": logit " + want + " vs " + got);
            assertEquals(reference.visible(q, qOff, k, qpos, kpos, head, qpos + 1), compiled.visible(q, qOff, k, qpos, kpos, head, qpos + 1), name + ": mask");
        }
    }
}
