package dev.kvpc.cli;

import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.ast.KvpFile;
import dev.kvpc.compiler.diag.Diagnostic;
import dev.kvpc.compiler.diag.Diagnostics;
import dev.kvpc.compiler.diag.Renderer;
import dev.kvpc.compiler.fmt.Formatter;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "fmt", description = {"Print KVP files in canonical form (comments are kept).",
        "A file with syntax errors is left untouched and its errors are reported."})
final class FmtCommand implements Callable<Integer> {
    @Parameters(arity = "1..*", paramLabel = "FILE", description = "KVP files to format.")
    List<Path> files;

    @CommandLine.ArgGroup(exclusive = true)
    Mode mode;

    static final class Mode {
        @Option(names = {"-w", "--write"}, description = "Rewrite the files in place instead of printing them.")
        boolean write;

        @Option(names = "--check", description = "Print nothing; list files that are not formatted and exit 65 if any.")
        boolean check;
    }

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        var out = spec.commandLine().getOut();
        var err = spec.commandLine().getErr();
        boolean failed = false, unformatted = false;
        for (Path f : files) {
            String text;
            try {
                text = Files.readString(f, StandardCharsets.UTF_8);
            } catch (IOException | RuntimeException e) {
                err.println(f + ":1:1: error[E012]: cannot read " + f + ": " + e.getMessage());
                failed = true;
                continue;
            }
            Diagnostics diags = new Diagnostics();
            KvpFile ast = Frontend.parse(f.toString(), text, diags);
            if (ast == null) {
                Renderer r = new Renderer(name -> text);
                for (Diagnostic d : diags.all()) err.print(r.render(d));
                failed = true;
                continue;
            }
            String formatted = Formatter.format(ast);
            boolean same = formatted.equals(text);
            if (mode != null && mode.check) {
                if (!same) {
                    err.println(f + ": not formatted (run kvpc fmt --write " + f + ")");
                    unformatted = true;
                }
            } else if (mode != null && mode.write) {
                if (!same) {
                    try {
                        Commands.writeFile(f, formatted.getBytes(StandardCharsets.UTF_8));
                        err.println("formatted " + f);
                    } catch (IOException | RuntimeException e) {
                        err.println(f + ":1:1: error[E012]: cannot write " + f + ": " + e.getMessage());
                        failed = true;
                    }
                }
            } else {
                if (files.size() > 1) out.println("// ==> " + f + " <==");
                out.print(formatted);
            }
        }
        out.flush();
        err.flush();
        return failed || unformatted ? Main.INVALID : Main.OK;
    }
}
