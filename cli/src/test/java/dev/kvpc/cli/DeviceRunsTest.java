package dev.kvpc.cli;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Every stdlib policy under {@code kvpc run --device opencl} on kvpc-tiny and stories260K, with parameters that make
 * it compress within the run (its loop nests and rankings on the device too): the greedy text equals the CPU run's,
 * and the KV bytes on the device equal
 * {@code kvpc memory}'s prediction for the same scenario (a one-token prompt, then decode steps) within 5% where the
 * prediction is exact, and at most 5% over it where it is an upper bound.
 */
class DeviceRunsTest {
    static final int STEPS = 96;

    /** Parameters that make each policy evict, merge or quantise within {@value #STEPS} positions. */
    static final Map<String, List<String>> PARAMS = new LinkedHashMap<>();

    static {
        PARAMS.put("adakv", List.of("budget=40", "window=8"));
        PARAMS.put("cake", List.of("total=40", "window=8"));
        PARAMS.put("cam", List.of("budget=40", "recent=8"));
        PARAMS.put("d2o", List.of("budget=40"));
        PARAMS.put("double_sparsity", List.of("tokens=24", "recent=4"));
        PARAMS.put("duo_attention", List.of("sinks=4", "recent=24"));
        PARAMS.put("full", List.of());
        PARAMS.put("h2o", List.of("budget=40"));
        PARAMS.put("keydiff", List.of("budget=40"));
        PARAMS.put("keyformer", List.of("budget=40", "window=8"));
        PARAMS.put("kivi", List.of("group=16", "residual=16"));
        PARAMS.put("knorm", List.of());
        PARAMS.put("llama_h2o", List.of());
        PARAMS.put("mixed", List.of());
        PARAMS.put("nacl", List.of("budget=40", "window=8"));
        PARAMS.put("pyramidkv", List.of("total=48", "window=8"));
        PARAMS.put("quest", List.of("page=8", "pages=4"));
        PARAMS.put("razor", List.of("sinks=4", "window=24"));
        PARAMS.put("scissorhands", List.of("budget=40", "history=16", "recent=8"));
        PARAMS.put("snapkv", List.of("budget=40", "window=8"));
        PARAMS.put("sparq", List.of("tokens=24", "recent=4"));
        PARAMS.put("streaming_llm", List.of("sinks=4", "window=28"));
        PARAMS.put("tova", List.of("budget=40"));
        PARAMS.put("window", List.of("size=32"));
    }

    @TestFactory
    List<DynamicTest> everyStdlibPolicyOnTheDevice() throws Exception {
        DeviceCliTest.requireOpenCl();
        List<Path> models = new ArrayList<>(List.of(CliRunner.root().resolve("models/kvpc-tiny")));
        Path stories = storiesOrNull();
        if (stories != null) models.add(stories);
        List<String> files = new ArrayList<>();
        try (var s = Files.list(CliRunner.root().resolve("stdlib-policies"))) {
            s.map(p -> p.getFileName().toString()).filter(f -> f.endsWith(".kvp") && !f.equals("variants.kvp")).sorted().forEach(files::add);
        }
        List<DynamicTest> tests = new ArrayList<>();
        for (String f : files) {
            String name = f.substring(0, f.length() - 4);
            assertTrue(PARAMS.containsKey(name), "DeviceRunsTest.PARAMS has no entry for stdlib policy " + name);
            for (Path m : models) tests.add(DynamicTest.dynamicTest(name + " on " + m.getFileName(), () -> run(m, name)));
        }
        return tests;
    }

    static Path storiesOrNull() {
        for (Path p = CliRunner.root(); p != null && p.getParent() != null; p = p.getParent()) {
            Path m = p.resolveSibling("shared").resolve("models").resolve("stories260K");
            if (Files.isDirectory(m)) return m;
        }
        return null;
    }

    static void run(Path model, String policy) throws Exception {
        Path file = CliRunner.root().resolve("stdlib-policies/" + policy + ".kvp");
        List<String> args = new ArrayList<>(List.of("run", "--model", model.toString(), "--policy", file.toString(), "-n", Integer.toString(STEPS)));
        for (String p : PARAMS.get(policy)) args.addAll(List.of("--param", p));
        CliRunner cpu = CliRunner.run(args.toArray(String[]::new));
        args.addAll(List.of("--device", "opencl"));
        CliRunner cl = CliRunner.run(args.toArray(String[]::new));
        assertEquals(0, cpu.code(), cpu.err());
        assertEquals(0, cl.code(), cl.err());
        assertEquals(cpu.out(), cl.out(), "greedy text");
        // the policy ran on the device: its loop nests and rankings (these policies rank entries once over budget)
        Matcher launches = Pattern.compile("the policy's loop nests and rankings: (\\d+) kernel launches on the device").matcher(cl.err());
        assertTrue(launches.find(), cl.err());
        if (List.of("h2o", "keydiff", "tova", "snapkv", "keyformer").contains(policy)) {
            assertTrue(Long.parseLong(launches.group(1)) > 0, policy + " launched nothing on the device: " + cl.err());
        }
        Matcher dm = Pattern.compile("KV pages on the device: [^(]*\\((\\d+) bytes; the runtime's: (\\d+) bytes").matcher(cl.err());
        assertTrue(dm.find(), cl.err());
        long device = Long.parseLong(dm.group(1)), runtime = Long.parseLong(dm.group(2));
        Matcher pm = Pattern.compile("pages of (\\d+) entries").matcher(cl.err());
        assertTrue(pm.find(), cl.err());
        // the prediction for the same scenario: a one-token prompt (BOS), decode steps up to STEPS positions
        Path modelFile = Files.isDirectory(model) ? RunCommand.resolveModel(model) : model;
        List<String> margs = new ArrayList<>(List.of("memory", file.toString(), "--model", modelFile.toString(), "--context", Integer.toString(STEPS),
                "--prompt", "1", "--dtype", "f32", "--page-rows", pm.group(1), "--json"));
        for (String p : PARAMS.get(policy)) margs.addAll(List.of("--param", p));
        CliRunner mem = CliRunner.run(margs.toArray(String[]::new));
        assertEquals(0, mem.code(), mem.err());
        long predicted = 0;
        Matcher lm = Pattern.compile("\"kv_bytes\": ?(\\d+), ?\"scale_bytes\": ?(\\d+)").matcher(mem.out());
        int lanes = 0;
        while (lm.find()) {
            predicted += Long.parseLong(lm.group(1)) + Long.parseLong(lm.group(2));
            lanes++;
        }
        assertTrue(lanes > 0, mem.out());
        boolean exact = mem.out().contains("\n  \"exact\": true,");
        assertEquals(runtime, device, "the device holds the runtime's KV pages, byte for byte");
        String what = "KV bytes on the device, " + device + ", against kvpc memory's prediction, " + predicted + " (" + lanes + " lanes, "
                + (exact ? "exact" : "an upper bound") + ")";
        if (exact) assertEquals(predicted, device, 0.05 * predicted, what);
        else assertTrue(device <= predicted * 1.05, what);
    }
}
