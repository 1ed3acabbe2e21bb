package dev.kvpc.compiler.check;

import dev.kvpc.compiler.ast.Decl;
import dev.kvpc.compiler.diag.Code;
import dev.kvpc.compiler.diag.Diagnostic.Note;
import dev.kvpc.compiler.diag.Diagnostics;
import dev.kvpc.compiler.model.ModelShape;

import java.util.LinkedHashMap;
import java.util.Map;

/** The front end's entry point after parsing: names, types and shapes, then the value-dependent checks. */
public final class Checker {
    private Checker() {}

    /** Checks {@code program} for {@code model}; returns null when there were errors (all reported to {@code diags}). */
    public static CheckedProgram check(Program program, ModelShape model, Diagnostics diags) {
        return check(program, model, diags, null, Map.of());
    }

    /**
     * As above, with the declaration {@code root} of the file checked with the {@code given} parameter values in
     * place of its defaults (a command line's {@code --param}).
     */
    public static CheckedProgram check(Program program, ModelShape model, Diagnostics diags, String root, Map<String, Object> given) {
        Map<String, Decl> decls = new LinkedHashMap<>();
        for (Decl d : program.decls()) {
            Decl prev = decls.putIfAbsent(d.name().text(), d);
            if (prev != null && prev != d) {
                diags.error(Code.E103, d.name().span(), "'" + d.name().text() + "' is already declared",
                        new Note("first declared here", prev.name().span()));
            }
        }
        Diagnostics local = new Diagnostics();
        TypeChecker types = new TypeChecker(local, decls);
        for (Decl d : program.decls()) types.checkDecl(d);
        types.finish();
        boolean typeErrors = local.hasErrors();
        diags.addAll(local);
        if (!typeErrors) {
            Tables tables = new Tables(diags, program, model);
            InstanceChecker instances = new InstanceChecker(diags, decls, model, tables);
            // declarations of imported files are checked where they are used, with the arguments given there: their
            // defaults (a placeholder table, a budget for another model) need not fit this model on their own
            // the values given are for the named declaration, else for the file's last policy or config
            String target = root != null ? root : program.defaultRoot();
            boolean targetHere = false;
            for (Decl d : program.root().decls()) {
                boolean isTarget = d.name().text().equals(target);
                targetHere |= isTarget;
                instances.check(d, isTarget ? given : Map.of());
            }
            // the named declaration is imported (compile FILE --policy NAME of a file that imports it): the values
            // given for it are checked there, as they would be in its own file
            if (!targetHere && !given.isEmpty() && decls.get(target) != null) instances.check(decls.get(target), given);
        }
        if (diags.hasErrors()) return null;
        return new CheckedProgram(program, decls, types.types, types.symbols, model);
    }
}
