package dev.kvpc.compiler.api;

import dev.kvpc.compiler.ast.KvpFile;
import dev.kvpc.compiler.check.CheckedProgram;
import dev.kvpc.compiler.check.Checker;
import dev.kvpc.compiler.check.Loader;
import dev.kvpc.compiler.check.Program;
import dev.kvpc.compiler.diag.Diagnostics;
import dev.kvpc.compiler.diag.Renderer;
import dev.kvpc.compiler.model.ModelShape;

import java.nio.file.Path;
import java.util.Map;

/** The front end in one call: read, parse, resolve imports, check. What the CLI and in-process hosts use. */
public final class Frontend {
    private Frontend() {}

    /** Result of checking one root file: the checked program (null on errors), diagnostics, and file texts. */
    public record Result(CheckedProgram program, Program parsed, Diagnostics diagnostics, Map<String, String> sources) {
        public boolean ok() {
            return program != null && !diagnostics.hasErrors();
        }

        public Renderer renderer() {
            return new Renderer(sources::get);
        }
    }

    public static Result check(Path file, ModelShape model) {
        return check(file, model, null, Map.of());
    }

    /**
     * As {@link #check(Path, ModelShape)}, with the file's declaration {@code root} checked with the {@code given}
     * parameter values instead of their defaults (what {@code --param} gives): a default that does not fit the model is
     * then no error when a value that does is given.
     */
    public static Result check(Path file, ModelShape model, String root, Map<String, Object> given) {
        Diagnostics diags = new Diagnostics();
        Loader loader = new Loader(diags);
        Program program = loader.load(file);
        CheckedProgram checked = program == null ? null : Checker.check(program, model, diags, root, given);
        return new Result(checked, program, diags, loader.sources());
    }

    /** Checks source text as if it were the file {@code name} in folder {@code dir} (may be null). */
    public static Result checkText(String name, String text, Path dir, ModelShape model) {
        Diagnostics diags = new Diagnostics();
        Loader loader = new Loader(diags);
        Program program = loader.loadText(name, text, dir);
        CheckedProgram checked = program == null ? null : Checker.check(program, model, diags);
        return new Result(checked, program, diags, loader.sources());
    }

    /** Parses only (no imports, no checks); for the formatter. Returns null on syntax errors. */
    public static KvpFile parse(String name, String text, Diagnostics diags) {
        return dev.kvpc.compiler.parse.KvpParsing.parse(name, text, diags);
    }
}
