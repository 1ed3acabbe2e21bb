package dev.kvpc.fuzz;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The reliability run ({@link Reliability}) on a sample: {@code kvpc.reliability.programs} generated programs (default
 * 200) and {@code kvpc.reliability.files} mutated files (default 160), from seed {@code kvpc.reliability.seed}.
 * tools/reliability runs it at full size. The table goes to report.md (and tallies.tsv) in
 * {@code kvpc.reliability.out} (default target/reliability), failing inputs to its failures/.
 */
class ReliabilityTest {
    @Test
    void noRunEndsOutside0_64_65OrPrintsATraceOrRunsPast30Seconds() throws Exception {
        int programs = Integer.getInteger("kvpc.reliability.programs", 200);
        int files = Integer.getInteger("kvpc.reliability.files", 160);
        long seed = Long.getLong("kvpc.reliability.seed", 1);
        Path out = Path.of(System.getProperty("kvpc.reliability.out", "target/reliability"));
        Files.createDirectories(out);
        Path work = Files.createTempDirectory("kvpc-reliability");
        Reliability r = new Reliability(work, out.resolve("failures"));
        r.files(files, seed);
        r.programs(programs, seed);
        String report = "Programs: " + programs + ", files: " + files + ", seed " + seed + ".\n\n" + r.report();
        Files.writeString(out.resolve("report.md"), report);
        Files.writeString(out.resolve("tallies.tsv"), r.tsv());
        System.out.println(report);
        assertTrue(r.failures().isEmpty(), () -> r.failures().size() + " failures:\n" + String.join("\n", r.failures()));
        // the sample reaches past the checks: some programs ran every command, some files were read and ran
        for (String kind : new String[] {"program: trace", "program: compile", "gguf: run", "jar manifest: run"}) {
            var t = r.tallies().get(kind);
            assertTrue(t != null && t.exits.getOrDefault(0, 0) > 0, () -> "no run of " + kind + " succeeded: " + r.report());
        }
    }
}
