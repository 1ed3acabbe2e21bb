package dev.kvpc.fuzz;

import dev.kvpc.compiler.ast.Decl;
import dev.kvpc.compiler.check.CheckedProgram;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** What the fuzz targets share. */
final class Fuzzing {
    private Fuzzing() {
    }

    /** Whether every parameter of {@code root} has a default, so it compiles with no values given. */
    static boolean defaultsOnly(CheckedProgram p, String root) {
        Decl d = p.decls().get(root);
        if (d instanceof Decl.Policy policy) return policy.paramList().stream().allMatch(x -> x.defaultValue() != null);
        if (d instanceof Decl.Config config) return config.paramList().stream().allMatch(x -> x.defaultValue() != null);
        return false;
    }

    private static final ThreadLocal<Path> DIR = ThreadLocal.withInitial(() -> {
        try {
            Path dir = Files.createTempDirectory("kvpc-fuzz");
            dir.toFile().deleteOnExit();
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    });

    /** {@code bytes} written to a scratch file named {@code name} (the same file for every input of a target). */
    static Path file(String name, byte[] bytes) {
        Path f = DIR.get().resolve(name);
        try {
            Files.write(f, bytes);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        f.toFile().deleteOnExit();
        return f;
    }
}
