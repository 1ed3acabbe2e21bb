package dev.kvpc.cli;

import dev.kvpc.gpu.cl.OpenCl;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code kvpc devices} and {@code kvpc run --device opencl}: decode attention and the matrix products on the OpenCL
 * device give the CPU's greedy text on stories260K, with the full cache and under policies that read the kernel's column sums (H2O) and
 * quantised lanes (KIVI). Skipped without an OpenCL device, except under CI or KVPC_REQUIRE_OPENCL.
 */
class DeviceCliTest {
    static void requireOpenCl() {
        if (OpenCl.available()) return;
        if (System.getenv("CI") != null || System.getenv("KVPC_REQUIRE_OPENCL") != null) fail("no OpenCL device, and CI or KVPC_REQUIRE_OPENCL is set");
        // a developer's machine without OpenCL skips these, saying why; CI sets KVPC_REQUIRE_OPENCL and fails above
        Assumptions.assumeTrue(false, "no OpenCL device");
    }

    @Test
    void listsDevices() {
        requireOpenCl();
        CliRunner r = CliRunner.run("devices");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("OpenCL library: "), r.out());
        assertTrue(r.out().matches("(?s).*\\n\\* 0 \\(0:0\\) (CPU|GPU|ACCELERATOR|OTHER) .*compute units.*"), r.out());
    }

    @Test
    void decodeAttentionOnTheDeviceGivesTheCpuText() {
        requireOpenCl();
        Path model = RunCliTest.models();
        String[][] policies = {{}, {"--policy", CliRunner.root().resolve("stdlib-policies/h2o.kvp").toString(), "--param", "budget=32"},
                               {"--policy", CliRunner.root().resolve("stdlib-policies/kivi.kvp").toString()}};
        for (String[] policy : policies) {
            String[] base = {"run", "--model", model.toString(), "--prompt", "Once upon a time", "-n", "64"};
            CliRunner cpu = CliRunner.run(concat(base, policy));
            CliRunner cl = CliRunner.run(concat(concat(base, policy), new String[] {"--device", "opencl"}));
            assertEquals(0, cpu.code(), cpu.err());
            assertEquals(0, cl.code(), cl.err());
            assertEquals(cpu.out(), cl.out(), "greedy text, policy " + String.join(" ", policy));
            assertTrue(cl.err().contains("kvpc: decode attention, the engine's arithmetic and the policy's kernels on OpenCL device "), cl.err());
            java.util.regex.Matcher mm = java.util.regex.Pattern.compile(", and ([1-9]\\d*) matrix products with the norms, gates and residual adds between "
                    + "them \\(weights on the device: [^;]*; (\\d+) activation transfers\\)").matcher(cl.err());
            assertTrue(mm.find(), cl.err());
            // activations stay on the device: per layer 4 crossings (queries, keys and values back, the attention
            // output there) where products that send and fetch their activations make 14 for the layer's 7
            assertTrue(Long.parseLong(mm.group(2)) < Long.parseLong(mm.group(1)), "fewer transfers than products: " + cl.err());
            assertTrue(cl.err().matches("(?s).*\\n\\d+ attention calls ran on .*"), cl.err());
            assertFalse(cl.err().contains("\n0 attention calls"), "the device ran the attention: " + cl.err());
        }
    }

    /** Every stdlib attention variant, lowered into the device's kernel, gives the CPU's greedy text on kvpc-tiny. */
    @Test
    void attentionVariantsOnTheDeviceGiveTheCpuText() {
        requireOpenCl();
        String model = CliRunner.root().resolve("models/kvpc-tiny").toString();
        for (String v : new String[] {"softcap(cap = 5.0)", "alibi", "sliding(w = 16)", "sigmoid"}) {
            String[] base = {"run", "--model", model, "--attention", v, "--prompt", "The whale", "-n", "64"};
            CliRunner cpu = CliRunner.run(base);
            CliRunner cl = CliRunner.run(concat(base, new String[] {"--device", "opencl"}));
            assertEquals(0, cpu.code(), cpu.err());
            assertEquals(0, cl.code(), cl.err());
            assertEquals(cpu.out(), cl.out(), "greedy text under " + v);
            // every lane's attention at every step ran on the device: 4 layers and 2 KV heads, the prompt's step and
            // each decode step
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("\n(\\d+) attention calls ran on ").matcher(cl.err());
            assertTrue(m.find(), cl.err());
            int calls = Integer.parseInt(m.group(1));
            assertTrue(calls % 8 == 0 && calls > 8 * 50 && calls < 8 * 64, v + ": " + calls + " calls");
        }
    }

    @Test
    void badDevicesAreClearErrors() {
        Path model = RunCliTest.models();
        CliRunner r = CliRunner.run("run", "--model", model.toString(), "--device", "cuda");
        assertEquals(Main.USAGE, r.code(), r.err());
        assertTrue(r.err().contains("--device is cpu, opencl or opencl:DEVICE, not 'cuda'"), r.err());
        requireOpenCl();
        r = CliRunner.run("run", "--model", model.toString(), "--device", "opencl:no-such-card");
        assertEquals(Main.UNAVAILABLE, r.code(), r.err());
        assertTrue(r.err().startsWith("kvpc: OpenCL: no OpenCL device matches 'no-such-card'; the devices are:\n  0 (0:0) "), r.err());
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
    }

    /**
     * {@code kvpc trace --backend opencl} and {@code --backend jvm} print the interpreter's report, line for line,
     * for policies whose loop nests score, pool and quantise (budgets small enough that they evict); a bad backend or
     * a device for a host backend is a usage error.
     */
    @Test
    void traceOnEveryBackendGivesTheInterpretersReport() {
        requireOpenCl();
        String trace = "random:seed=3,prefill=48,decode=12,heavy=2";
        for (String[] p : new String[][] {{"snapkv.kvp", "budget=20", "window=8"}, {"keydiff.kvp", "budget=24"}, {"h2o.kvp", "budget=24"}}) {
            java.util.List<String> args = new java.util.ArrayList<>(java.util.List.of("trace", CliRunner.root().resolve("stdlib-policies/" + p[0]).toString(), "--trace", trace));
            for (int i = 1; i < p.length; i++) {
                args.add("--param");
                args.add(p[i]);
            }
            CliRunner ref = CliRunner.run(args.toArray(String[]::new));
            assertEquals(0, ref.code(), p[0] + ": " + ref.err());
            assertTrue(ref.out().contains("step 12 (decode"), ref.out());
            for (String backend : new String[] {"jvm", "opencl"}) {
                CliRunner r = CliRunner.run(concat(args.toArray(String[]::new), new String[] {"--backend", backend}));
                assertEquals(0, r.code(), p[0] + " on " + backend + ": " + r.err());
                assertEquals(ref.out(), r.out(), p[0] + " on " + backend);
            }
        }
        String h2o = CliRunner.root().resolve("stdlib-policies/h2o.kvp").toString();
        CliRunner r = CliRunner.run("trace", h2o, "--trace", trace, "--backend", "cuda");
        assertEquals(Main.USAGE, r.code(), r.err());
        assertTrue(r.err().contains("--backend cuda: no such backend; there are interp, jvm, opencl"), r.err());
        r = CliRunner.run("trace", h2o, "--trace", trace, "--device", "0");
        assertEquals(Main.USAGE, r.code(), r.err());
        assertTrue(r.err().contains("--device: backend interp runs on the host"), r.err());
    }

    static String[] concat(String[] a, String[] b) {
        String[] c = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }
}
