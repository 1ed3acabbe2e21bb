package dev.kvpc.cli;

import dev.kvpc.runtime.load.ModelShapeSpec;
import dev.kvpc.runtime.load.PolicyJarLoader;
import dev.kvpc.runtime.load.PolicyManifest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/** kvpc compile: jars the runtime's loader accepts, one per stdlib policy, the bytecode listing, clear failures. */
class CompileCliTest {
    @TempDir
    Path dir;

    @Test
    void compilesAJarTheLoaderAccepts() throws Exception {
        Path jar = dir.resolve("h2o.jar");
        CliRunner r = CliRunner.run("compile", CliRunner.root().resolve("stdlib-policies/h2o.kvp").toString(), "--model", "layers=2,heads=4,kv-heads=2,head-dim=32",
                "--param", "budget=24", "-o", jar.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("h2o -> "), r.out());
        var loaded = PolicyJarLoader.load(jar, new ModelShapeSpec(2, 4, 2, 32));
        PolicyManifest m = loaded.manifest();
        assertEquals("h2o", m.policyName());
        assertTrue(m.evidence().contains("attn"), m.evidence().toString());
        assertTrue(m.predictedBytesPerLane().get("kv") > 0);
        assertEquals("kvpc.gen.h2o.Policy", m.entryClass());
    }

    @Test
    void compilesTheWholeStdlibIntoADirectory() throws Exception {
        Path out = dir.resolve("jars");
        String[] files;
        try (Stream<Path> s = Files.list(CliRunner.root().resolve("stdlib-policies"))) {
            files = s.filter(p -> p.toString().endsWith(".kvp")).sorted().map(Path::toString).toArray(String[]::new);
        }
        String[] args = new String[files.length + 3];
        args[0] = "compile";
        System.arraycopy(files, 0, args, 1, files.length);
        args[files.length + 1] = "-o";
        args[files.length + 2] = out.toString();
        CliRunner r = CliRunner.run(args);
        // variants.kvp declares attention variants only: it has no policy to compile, which is not a failure
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("variants.kvp: no policy or config to compile"), r.err());
        try (Stream<Path> s = Files.list(out)) {
            assertEquals(files.length - 1, s.filter(p -> p.toString().endsWith(".jar")).count(), r.out() + r.err());
        }
        var loaded = PolicyJarLoader.load(out.resolve("kivi.jar"), new ModelShapeSpec(32, 32, 8, 128));
        assertEquals("kivi", loaded.manifest().policyName());
    }

    /** A file of attention variants only, compiled alone: nothing to compile is an error, and nothing is written. */
    @Test
    void aFileWithNoPolicyAloneIsAnError() throws Exception {
        Path jar = dir.resolve("variants.jar");
        CliRunner r = CliRunner.run("compile", CliRunner.root().resolve("stdlib-policies/variants.kvp").toString(), "-o", jar.toString());
        assertEquals(65, r.code(), r.err());
        assertTrue(r.err().contains("declares no policy or config") && r.err().contains("nothing to compile"), r.err());
        assertFalse(Files.exists(jar));
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(0, s.count(), "nothing written");
        }
    }

    /**
     * -o over what is not a regular file (a FIFO here) is refused and left as it is; through
     * a symbolic link the jar lands in the file it names, the link kept; a new jar is rw-r--r--, a replaced one keeps
     * its permissions. kvpc compile used to replace any of them with a rw------- regular file.
     */
    @Test
    void theOutputPathIsWrittenLikeAFileNotReplacedLikeOne() throws Exception {
        String window = CliRunner.root().resolve("stdlib-policies/window.kvp").toString();
        Path fresh = dir.resolve("fresh.jar");
        assertEquals(0, CliRunner.run("compile", window, "-o", fresh.toString()).code());
        assertEquals("rw-r--r--", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(fresh)));
        Files.setPosixFilePermissions(fresh, java.nio.file.attribute.PosixFilePermissions.fromString("rw-rw----"));
        assertEquals(0, CliRunner.run("compile", window, "-o", fresh.toString()).code());
        assertEquals("rw-rw----", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(fresh)), "kept");

        Path real = dir.resolve("real.jar"), link = dir.resolve("link.jar");
        Files.write(real, new byte[] {1});
        Files.createSymbolicLink(link, real.getFileName());
        CliRunner r = CliRunner.run("compile", window, "-o", link.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.isSymbolicLink(link), "the link stays a link");
        assertTrue(Files.size(real) > 1000, "the jar is where the link points");

        Path fifo = dir.resolve("out.fifo");
        // a FIFO needs mkfifo (coreutils, present on CI's Debian); the permission and link checks above ran either way
        org.junit.jupiter.api.Assumptions.assumeTrue(new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor() == 0, "mkfifo");
        r = CliRunner.run("compile", window, "-o", fifo.toString());
        assertEquals(Main.INVALID, r.code(), r.err());
        assertTrue(r.err().contains("is not a regular file (a device, FIFO or folder); it is left as it is"), r.err());
        assertTrue(Files.exists(fifo) && !Files.isRegularFile(fifo), "the FIFO is left as it is");
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(0, s.filter(p -> p.getFileName().toString().endsWith(".part")).count(), "no temporary file left");
        }
    }

    @Test
    void printsTheBytecodeListing() {
        CliRunner r = CliRunner.run("compile", "--emit=asm", CliRunner.root().resolve("stdlib-policies/window.kvp").toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("class kvpc/gen/window/L0 implements dev/kvpc/runtime/policy/CompiledLaneClass"), r.out());
        assertTrue(r.out().contains("INVOKEINTERFACE dev/kvpc/runtime/policy/LaneContext.keep"), r.out());
    }

    @Test
    void badInputIsReportedWithItsPosition() throws Exception {
        Path bad = dir.resolve("bad.kvp");
        Files.writeString(bad, "policy p {\n    on decode { keep last(x) }\n}\n");
        CliRunner r = CliRunner.run("compile", bad.toString(), "-o", dir.resolve("p.jar").toString());
        assertEquals(Main.INVALID, r.code());
        assertTrue(r.err().contains("bad.kvp:2:"), r.err());
        assertFalse(Files.exists(dir.resolve("p.jar")));
        r = CliRunner.run("compile", "--emit=bytes", bad.toString());
        assertEquals(Main.USAGE, r.code());
    }
}
