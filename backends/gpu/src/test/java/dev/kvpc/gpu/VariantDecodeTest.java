package dev.kvpc.gpu;

import dev.kvpc.backend.jvm.VariantCompiler;
import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.gpu.kernels.OpenClDecodeKernels;
import dev.kvpc.gpu.kernels.ResidentDecodeKernel;
import dev.kvpc.gpu.lane.DeviceLanes;
import dev.kvpc.ir.AttentionIr;
import dev.kvpc.ir.LaneShape;
import dev.kvpc.ir.pass.Pipeline;
import dev.kvpc.runtime.AttentionVariant;
import dev.kvpc.runtime.Rope;
import dev.kvpc.runtime.engine.AttentionKernel;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Every stdlib attention variant lowered into the device's decode kernel, against the runtime's
 * {@link AttentionKernel} running the variant as the JVM backend compiles it: softmax, sigmoid and no normalisation,
 * logits that read the head (ALiBi's slopes) and positions (a sliding window), lanes of f32 and int4 rows, keys rotated
 * by slot, attend subsets, a lane's first query head past 0. Tolerances as {@link DenseDecodeTest}, the device
 * computing in float what the JVM computes in double.
 */
class VariantDecodeTest {
    static final ModelShape MODEL = ModelShape.parse("layers=2,heads=8,kv-heads=2,head-dim=32");
    static final LaneShape SHAPE = new LaneShape(2, 8, 2, 32);
    private static ClContext cl;
    private static DeviceLanes lanes;

    static synchronized ClContext cl() {
        if (cl == null) {
            cl = Devices.context();
            lanes = OpenClDecodeKernels.deviceLanes(cl);
        }
        return cl;
    }

    @AfterAll
    static void close() {
        if (lanes != null) lanes.close();
        if (cl != null) cl.close();
        cl = null;
        lanes = null;
    }

    @TestFactory
    List<DynamicTest> stdlibVariantsOnTheDevice() throws Exception {
        Path dir = Files.createTempDirectory("kvpc-gpu-variants");
        Path root = Path.of("").toAbsolutePath();
        while (!Files.isDirectory(root.resolve("stdlib-policies"))) root = root.getParent();
        for (String f : List.of("variants.kvp", "window.kvp")) Files.copy(root.resolve("stdlib-policies/" + f), dir.resolve(f));
        List<DynamicTest> tests = new ArrayList<>();
        for (String v : List.of("softcap(cap = 5.0)", "alibi", "sliding(w = 40)", "sigmoid")) {
            Path f = dir.resolve("d_" + v.replaceAll("[^a-z]", "") + ".kvp");
            Files.writeString(f, "import \"variants.kvp\"\nimport \"window.kvp\"\n\nconfig d {\n    attention " + v + "\n    layers 0.. use window(size = 4096)\n}\n");
            for (Precision p : new Precision[] {Precision.F32, Precision.INT4}) {
                for (boolean rotate : new boolean[] {false, true}) {
                    tests.add(DynamicTest.dynamicTest(v + " " + p + (rotate ? " keys rotated by slot" : ""), () -> compare(f, p, rotate)));
                }
            }
        }
        return tests;
    }

    static void compare(Path file, Precision precision, boolean rotate) {
        Frontend.Result r = Frontend.check(file, MODEL);
        assertTrue(r.ok(), r.diagnostics().all().toString());
        AttentionIr ir = Compilation.optimise(r.program(), "d", Map.of(), Pipeline.Options.DEFAULT, (a, b) -> { }).variant();
        AttentionVariant jvm = VariantCompiler.compile(ir, SHAPE);
        int d = 32, group = 4, firstHead = 4;
        Random rnd = new Random(file.getFileName().toString().hashCode() * 31L + precision.ordinal() + (rotate ? 7 : 0));
        ResidentDecodeKernel kernel = new ResidentDecodeKernel(cl(), d, group, lanes, ir, SHAPE);
        Rope rope = rotate ? new Rope(10000.0) : null;
        QuantSpec spec = precision == Precision.F32 ? QuantSpec.of(precision) : QuantSpec.resolve(precision, QuantSpec.Axis.TOKEN, 32, d);
        try (PagePool pool = new PagePool()) {
            Lane lane = new Lane(pool, d, spec, 16);
            float[] k = new float[d], v = new float[d];
            for (int step = 0; step < 5; step++) {
                int add = step == 0 ? 300 : 1 + rnd.nextInt(20);
                for (int i = 0; i < add; i++) {
                    for (int c = 0; c < d; c++) {
                        k[c] = (float) (rnd.nextGaussian() * 1.5 + 0.3);
                        v[c] = (float) rnd.nextGaussian();
                    }
                    int pos = lane.size() == 0 ? 0 : lane.position(lane.size() - 1) + 1 + rnd.nextInt(2);
                    lane.append(pos, step, k, 0, v, 0);
                }
                if (step == 2) {
                    BitSet keep = new BitSet();
                    for (int j = 0; j < lane.size(); j++) if (rnd.nextInt(5) != 0) keep.set(j);
                    lane.retain(keep);
                }
                int n = lane.size();
                float[] q = new float[group * d];
                for (int i = 0; i < q.length; i++) q[i] = (float) rnd.nextGaussian();
                int qpos = step == 3 ? lane.position(n / 2) : lane.position(n - 1);
                BitSet attend = null;
                if (step == 4) {
                    attend = new BitSet();
                    for (int j = 0; j < n; j++) if (rnd.nextInt(3) != 0) attend.set(j);
                }
                float[] out = new float[group * d], outRef = new float[group * d], col = new float[n], colRef = new float[n];
                java.util.Arrays.fill(out, Float.NaN);
                String where = ir.name() + " " + spec + ", step " + step + ", " + n + " entries";
                kernel.attend(lane, q, qpos, attend, out, col, rope, firstHead);
                new AttentionKernel().attend(lane, q, new int[] {qpos}, group, attend, outRef, colRef, rope, jvm, firstHead, qpos + 1);
                DenseDecodeTest.assertClose(outRef, out, d, where);
                if (step == 0) {
                    // the variant changes the result: the comparison above is not one with standard attention
                    float[] std = new float[group * d];
                    new AttentionKernel().attend(lane, q, new int[] {qpos}, group, attend, std, null, rope);
                    double diff = 0;
                    for (int i = 0; i < std.length; i++) diff = Math.max(diff, Math.abs(std[i] - out[i]));
                    assertTrue(diff > 1e-2, where + ": the variant's output differs from standard attention's by only " + diff);
                }
                for (int j = 0; j < n; j++) assertEquals(colRef[j], col[j], Math.max(DenseDecodeTest.TOL * Math.abs(colRef[j]), 1e-9), where + ": column sum of entry " + j);
                if (step == 1) {
                    // a prefill of the last 7 positions in one launch (tiles of positions, the last one padded), each
                    // masked at its own position, against the reference one position at a time
                    int m = 7;
                    int[] qposAll = new int[m];
                    for (int i = 0; i < m; i++) qposAll[i] = lane.position(n - m + i);
                    float[] qAll = new float[m * group * d], outAll = new float[m * group * d], colAll = new float[n], colAllRef = new float[n];
                    for (int i = 0; i < qAll.length; i++) qAll[i] = (float) rnd.nextGaussian();
                    kernel.attendAll(lane, qAll, qposAll, null, outAll, colAll, rope, firstHead);
                    for (int i = 0; i < m; i++) {
                        float[] qi = java.util.Arrays.copyOfRange(qAll, i * group * d, (i + 1) * group * d), oi = new float[group * d];
                        new AttentionKernel().attend(lane, qi, new int[] {qposAll[i]}, group, null, oi, colAllRef, rope, jvm, firstHead, qposAll[i] + 1);
                        DenseDecodeTest.assertClose(oi, java.util.Arrays.copyOfRange(outAll, i * group * d, (i + 1) * group * d), d, where + ", prefill position " + i);
                    }
                    for (int j = 0; j < n; j++) {
                        assertEquals(colAllRef[j], colAll[j], Math.max(DenseDecodeTest.TOL * Math.abs(colAllRef[j]), 1e-9), where + ", prefill: column sum of entry " + j);
                    }
                }
            }
            lane.clear();
        }
    }
}
