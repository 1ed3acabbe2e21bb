package dev.kvpc.cli;

import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.diag.Diagnostic;
import dev.kvpc.compiler.model.ModelShape;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Map;

/** What the compiling commands share: reading --model, checking a file, finding the policy to compile. */
final class Commands {
    /** The most threads an option takes: more than any machine kvpc runs on has cores to use. */
    static final int MAX_THREADS = 256;

    /**
     * Writes {@code bytes} to {@code target} as the CLI writes every output file: through a symbolic link, to the file it
     * names; never over something that is not a regular file (a device, a FIFO, a folder), which is refused; into a
     * temporary file beside the target, then moved into place, so that a failure leaves the old file whole; with the
     * permissions the replaced file had, or rw-r--r-- for a new one (a temporary file is created rw-------).
     */
    static void writeFile(java.nio.file.Path target, byte[] bytes) throws java.io.IOException {
        java.nio.file.Path t = target;
        if (java.nio.file.Files.isSymbolicLink(t)) {
            if (!java.nio.file.Files.exists(t)) throw new java.io.IOException(target + " is a symbolic link to nothing (" + java.nio.file.Files.readSymbolicLink(t) + ")");
            t = t.toRealPath();
        }
        boolean exists = java.nio.file.Files.exists(t, java.nio.file.LinkOption.NOFOLLOW_LINKS);
        if (exists && !java.nio.file.Files.isRegularFile(t, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            throw new java.io.IOException(target + " is not a regular file (a device, FIFO or folder); it is left as it is");
        }
        java.nio.file.Path dir = t.toAbsolutePath().getParent();
        if (dir != null) java.nio.file.Files.createDirectories(dir);
        java.util.Set<java.nio.file.attribute.PosixFilePermission> perms = null;
        try {
            perms = exists ? java.nio.file.Files.getPosixFilePermissions(t) : java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--");
        } catch (UnsupportedOperationException notPosix) {
            // a file system without POSIX permissions: the temporary file's own stand
        }
        java.nio.file.Path tmp = java.nio.file.Files.createTempFile(dir, ".kvpc-", ".part");
        try {
            java.nio.file.Files.write(tmp, bytes);
            if (perms != null) java.nio.file.Files.setPosixFilePermissions(tmp, perms);
            java.nio.file.Files.move(tmp, t, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        } finally {
            java.nio.file.Files.deleteIfExists(tmp);
        }
    }

    /**
     * Refuses a model with a NaN or an infinity among its weights (every figure it gives would be NaN), or, with
     * {@code allow} ({@code --allow-nonfinite}), warns and goes on.
     */
    static void requireFinite(dev.kvpc.examples.llama.Llama2cModel m, java.nio.file.Path file, boolean allow, java.io.PrintWriter err)
            throws dev.kvpc.examples.llama.ModelFormatException {
        String bad = m.nonFinite();
        if (bad == null) return;
        if (!allow) throw new dev.kvpc.examples.llama.ModelFormatException(file + ": " + bad + "; --allow-nonfinite loads it anyway");
        err.println("kvpc: warning: " + file + ": " + bad + "; its outputs may be NaN");
    }

    /** {@code value} of option {@code name} if within [lo, hi], else a usage error that states the range. */
    static long range(CommandLine.Model.CommandSpec spec, String name, long value, long lo, long hi) {
        if (value < lo || value > hi) {
            throw new CommandLine.ParameterException(spec.commandLine(), name + " must be " + (hi >= Integer.MAX_VALUE ? "at least " + lo : "from " + lo + " to " + hi)
                    + ", not " + value);
        }
        return value;
    }

    private Commands() {}

    static ModelShape shape(CommandLine.Model.CommandSpec spec, String model, String fallback) {
        try {
            return model != null ? shape(model) : fallback != null ? ModelShape.parse(fallback) : ModelShape.REFERENCE;
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--model: " + e.getMessage());
        }
    }

    /**
     * A parameter value written on a command line ({@code --param}, a core policy's arguments in {@code --policies}):
     * {@code true}, {@code false}, a whole number (long), a number with a point or an exponent (double), or a string in
     * double quotes.
     */
    static Object literal(String v) {
        if (v.equals("true") || v.equals("false")) return Boolean.parseBoolean(v);
        if (v.length() >= 2 && v.startsWith("\"") && v.endsWith("\"")) {
            // a string names a table file: one given on the command line is read from where the command runs (a
            // name with no file there is looked for next to the policy and in the standard library, as a default is)
            String s = v.substring(1, v.length() - 1);
            Path p = s.isEmpty() ? null : Path.of(s);
            return p != null && java.nio.file.Files.isRegularFile(p) ? p.toAbsolutePath().normalize().toString() : s;
        }
        if (v.matches("[+-]?\\d+")) return Long.parseLong(v);
        if (v.matches("[+-]?(\\d+\\.\\d*|\\.\\d+|\\d+(\\.\\d*)?[eE][+-]?\\d+)")) return Double.parseDouble(v);
        throw new IllegalArgumentException("'" + v + "' is not a number, true, false or a \"string\"");
    }

    /**
     * A preset, {@code layers=L,...}, or a model that kvpc run and eval take (a .gguf, a llama2.c .bin, or a folder
     * holding one), whose shape is read from it. A preset wins over a file of the same name.
     */
    static ModelShape shape(String model) {
        return described(model).shape();
    }

    /** A model's shape, and its context length when it was read from a model file (0 for a preset or a shape). */
    record Described(ModelShape shape, int context) {}

    /** As {@link #shape(String)}, with the trained context of a model file. */
    static Described described(String model) {
        if (model.contains("=") || ModelShape.presets().containsKey(model.strip())) return new Described(ModelShape.parse(model), 0);
        Path p = Path.of(model);
        if (!java.nio.file.Files.exists(p)) {
            try {
                return new Described(ModelShape.parse(model), 0);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(e.getMessage() + ", or a model file or folder (no file or folder '" + model + "')");
            }
        }
        try {
            Path file = RunCommand.resolveModel(p);
            dev.kvpc.examples.llama.Llama2cModel m = file.getFileName().toString().endsWith(".gguf")
                    ? dev.kvpc.examples.llama.Llama2cModel.fromGguf(dev.kvpc.examples.llama.GgufFile.open(file))
                    : dev.kvpc.examples.llama.Llama2cModel.load(file);
            String name = file.getFileName().toString().replaceFirst("\\.(gguf|bin)$", "");
            return new Described(new ModelShape(name, m.layers, m.heads, m.kvHeads, m.headSize), m.seqLen);
        } catch (dev.kvpc.examples.llama.ModelFormatException e) {
            // a model file that cannot be read is invalid input (65), as kvpc run says of it, not a usage error
            throw new InvalidModel(e.getMessage(), e);
        }
    }

    /** A model file given as {@code --model} that cannot be read: Main reports its message, exit 65. */
    static final class InvalidModel extends RuntimeException {
        private static final long serialVersionUID = 1L;

        InvalidModel(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /**
     * Checks {@code file}, printing its diagnostics; null when it has errors. The policy {@code root} (null: the file's
     * last) is checked with the {@code given} parameter values in place of its defaults.
     */
    static Frontend.Result check(Path file, ModelShape shape, String root, Map<String, Object> given, PrintWriter err) {
        Frontend.Result r = Frontend.check(file, shape, root, given);
        for (Diagnostic d : r.diagnostics().all()) err.print(r.renderer().render(d));
        return r.ok() ? r : null;
    }

    /**
     * Parameters of {@code root} that have no default and no value in {@code given}, or values given for parameters it
     * does not have: reported as a usage error, true when there are any.
     */
    static boolean missingParams(Frontend.Result r, String root, java.util.Set<String> given, PrintWriter err) {
        java.util.List<String> missing = new java.util.ArrayList<>();
        var d = r.program().decls().get(root);
        java.util.List<dev.kvpc.compiler.ast.Decl.Param> params = switch (d) {
            case dev.kvpc.compiler.ast.Decl.Policy p -> p.paramList();
            case dev.kvpc.compiler.ast.Decl.Config c -> c.paramList();
            default -> java.util.List.of();
        };
        for (var p : params) if (p.defaultValue() == null && !given.contains(p.name().text())) missing.add(p.name().text());
        java.util.Set<String> known = new java.util.TreeSet<>();
        for (var p : params) known.add(p.name().text());
        java.util.List<String> unknown = given.stream().filter(g -> !known.contains(g)).sorted().toList();
        if (!unknown.isEmpty()) {
            err.println("kvpc: " + root + " has no parameter " + String.join(", ", unknown)
                    + (known.isEmpty() ? " (it takes none)" : " (its parameters: " + String.join(", ", known) + ")"));
            return true;
        }
        if (missing.isEmpty()) return false;
        err.println("kvpc: " + root + " needs a value for " + String.join(", ", missing) + ": give it with "
                + String.join(" ", missing.stream().map(m -> "--param " + m + "=VALUE").toList()));
        return true;
    }

    /** The policy to compile: {@code named}, or the last policy or config of the file; null (reported) if none. */
    static String root(Frontend.Result r, Path file, String named, PrintWriter err) {
        String root = named != null ? named : Compilation.defaultRoot(r.program());
        if (root == null || r.program().decls().get(root) == null) {
            err.println("kvpc: " + (root == null ? file + " declares no policy or config" : "no policy or config named '" + root + "'"));
            return null;
        }
        return root;
    }
}
