package dev.kvpc.cli;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code kvpc trace --backend opencl} for every stdlib policy (with {@link DeviceRunsTest#PARAMS}' parameters, which
 * make each compress) and under every stdlib attention variant, on random traces of kvpc-tiny's and stories260K's
 * shapes: the report is the interpreter's, line for line (kept sets, attend sets, precisions, states as printed).
 */
class DeviceTraceTest {
    static final String TRACE = "random:seed=5,prefill=48,decode=24,heavy=2";
    static final List<String> VARIANTS = List.of("softcap(cap = 5.0)", "alibi", "sliding(w = 40)", "sigmoid");

    @TestFactory
    List<DynamicTest> everyPolicyAndVariantThroughTraceOnTheDevice() throws Exception {
        DeviceCliTest.requireOpenCl();
        List<Path> models = new ArrayList<>(List.of(CliRunner.root().resolve("models/kvpc-tiny")));
        Path stories = DeviceRunsTest.storiesOrNull();
        if (stories != null) models.add(stories);
        List<DynamicTest> tests = new ArrayList<>();
        for (String policy : DeviceRunsTest.PARAMS.keySet()) {
            Path file = CliRunner.root().resolve("stdlib-policies/" + policy + ".kvp");
            for (Path m : models) {
                List<String> args = new ArrayList<>(List.of("trace", file.toString(), "--model", model(m), "--trace", TRACE, "--lanes", "64"));
                for (String p : DeviceRunsTest.PARAMS.get(policy)) args.addAll(List.of("--param", p));
                tests.add(DynamicTest.dynamicTest(policy + " on " + m.getFileName(), () -> same(args)));
            }
        }
        Path dir = Files.createTempDirectory("kvpc-trace-variants");
        for (String f : List.of("variants.kvp", "h2o.kvp")) Files.copy(CliRunner.root().resolve("stdlib-policies/" + f), dir.resolve(f));
        for (String v : VARIANTS) {
            Path f = dir.resolve("v_" + v.replaceAll("[^a-z]", "") + ".kvp");
            Files.writeString(f, "import \"variants.kvp\"\nimport \"h2o.kvp\"\n\nconfig c {\n    attention " + v + "\n    layers 0.. use h2o(budget = 24)\n}\n");
            for (Path m : models) {
                List<String> args = List.of("trace", f.toString(), "--model", model(m), "--trace", TRACE, "--lanes", "64");
                tests.add(DynamicTest.dynamicTest("h2o under " + v + " on " + m.getFileName(), () -> same(args)));
            }
        }
        return tests;
    }

    private static String model(Path m) throws Exception {
        return (Files.isDirectory(m) ? RunCommand.resolveModel(m) : m).toString();
    }

    private static void same(List<String> args) {
        CliRunner ref = CliRunner.run(args.toArray(String[]::new));
        assertEquals(0, ref.code(), ref.err());
        assertTrue(ref.out().contains("step 24 (decode"), ref.out());
        List<String> device = new ArrayList<>(args);
        device.addAll(List.of("--backend", "opencl"));
        CliRunner r = CliRunner.run(device.toArray(String[]::new));
        assertEquals(0, r.code(), r.err());
        assertEquals(ref.out(), r.out(), String.join(" ", args));
    }
}
