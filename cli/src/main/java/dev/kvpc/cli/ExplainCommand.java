package dev.kvpc.cli;

import dev.kvpc.compiler.diag.Code;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

import java.io.PrintWriter;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "explain", description = {"Say what a diagnostic code means and what gives it, for example: kvpc explain E301.",
        "Without a code, list them all."})
final class ExplainCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Parameters(arity = "0..1", paramLabel = "CODE", description = "A code as kvpc check prints it (E301, W200; case does not matter).")
    String code;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        if (code == null) {
            for (Code c : Code.values()) out.printf(Locale.ROOT, "%s  %s%n", c.name(), c.title());
            out.flush();
            return Main.OK;
        }
        String wanted = code.strip().toUpperCase(Locale.ROOT);
        for (Code c : Code.values()) {
            if (!c.name().equals(wanted)) continue;
            out.printf(Locale.ROOT, "%s (%s): %s%n", c.name(), c.severity().word(), c.title());
            out.println("For example: " + c.example().replace("`", ""));
            out.println(c.severity() == dev.kvpc.compiler.diag.Severity.WARNING
                    ? "A warning: the file still compiles (kvpc check --Werror treats it as an error)."
                    : "An error: the file does not compile until it is fixed. The message kvpc check prints says where and why.");
            out.println("The checks, with the rules behind them: docs/language.md, section 16.");
            out.flush();
            return Main.OK;
        }
        java.util.List<String> names = java.util.Arrays.stream(Code.values()).map(Code::name).toList();
        String near = dev.kvpc.compiler.diag.Suggest.nearest(wanted, names);
        throw new CommandLine.ParameterException(spec.commandLine(), "'" + code + "' is not a kvpc diagnostic code" + (near != null ? "; did you mean " + near + "?" : "")
                + " (kvpc explain lists them)");
    }
}
