package dev.kvpc.cli;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code kvpc eval --device opencl}: on kvpc-tiny, the perplexities of the full cache, H2O and KIVI with decode
 * attention, the engine and the policies' kernels on the OpenCL device equal the CPU run's within 1e-5 relative (the
 * device sums in float, in another order), and the measured KV bytes are the same.
 */
class EvalDeviceCliTest {
    @Test
    void perplexitiesOnTheDeviceEqualTheCpus() throws Exception {
        DeviceCliTest.requireOpenCl();
        Path dir = Files.createTempDirectory("kvpc-eval-device");
        List<String> json = new ArrayList<>();
        String notes = "";
        for (String device : new String[] {"cpu", "opencl"}) {
            Path out = dir.resolve(device);
            CliRunner r = CliRunner.run("eval", "--quick", "--model", CliRunner.root().resolve("models/kvpc-tiny").toString(), "--policies", "full,h2o,kivi",
                    "--tasks", "perplexity", "--device", device, "--out", out.toString());
            assertEquals(0, r.code(), r.err());
            json.add(Files.readString(out.resolve("results.json")));
            notes = Files.readString(out.resolve("results.md"));
        }
        assertTrue(notes.contains("- decode attention, the engine's arithmetic and the policies' kernels on the OpenCL device --device opencl names"), "the run's notes say where attention ran: " + notes);
        List<Double> a = numbers(json.get(0), "ppl"), b = numbers(json.get(1), "ppl");
        assertEquals(9, a.size(), json.get(0));
        assertEquals(a.size(), b.size());
        for (int i = 0; i < a.size(); i++) assertEquals(a.get(i), b.get(i), 1e-5 * a.get(i), "perplexity " + i);
        assertEquals(numbers(json.get(0), "measured_kv_bytes"), numbers(json.get(1), "measured_kv_bytes"));
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        }
    }

    static List<Double> numbers(String json, String key) {
        List<Double> l = new ArrayList<>();
        Matcher m = Pattern.compile("\"" + key + "\": ?([0-9.eE+-]+)").matcher(json);
        while (m.find()) l.add(Double.parseDouble(m.group(1)));
        return l;
    }
}
