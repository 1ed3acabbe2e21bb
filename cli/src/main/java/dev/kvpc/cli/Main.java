package dev.kvpc.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;

/** {@code kvpc}: the command-line front of the compiler. Exit codes: 0 ok, 64 usage, 65 invalid input, 69 device unavailable, 70 internal. */
@Command(name = "kvpc", mixinStandardHelpOptions = true, scope = CommandLine.ScopeType.INHERIT, versionProvider = Main.Version.class,
        description = "Compiler for KV-cache policies and attention variants written in KVP.",
        subcommands = {CheckCommand.class, FmtCommand.class, IrCommand.class, MemoryCommand.class, CompileCommand.class, EvalCommand.class, HeadsCommand.class,
                TraceCommand.class, RunCommand.class, DevicesCommand.class, SynthModelCommand.class, ExportHfCommand.class, ExplainCommand.class, CommandLine.HelpCommand.class},
        footer = {"", "Exit codes: 0 ok, 64 usage error, 65 invalid input, 69 device unavailable (no OpenCL library or device, a kernel the device refuses), 70 internal error.",
                "The language reference is docs/language.md."})
public final class Main implements Runnable {
    public static final int OK = 0, USAGE = 64, INVALID = 65, UNAVAILABLE = 69, INTERNAL = 70;

    @Option(names = "--debug", scope = CommandLine.ScopeType.INHERIT, description = "Show Java stack traces of internal errors.")
    boolean debug;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getErr());
        throw new CommandLine.ParameterException(spec.commandLine(), "a command is needed");
    }

    public static void main(String[] args) {
        System.exit(run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
    }

    /** Runs the CLI with the given streams; returns the exit code. */
    public static int run(String[] args, PrintWriter out, PrintWriter err) {
        boolean debug = java.util.Arrays.asList(args).contains("--debug");
        return guarded(() -> execute(args, out, err, debug), out, err, debug);
    }

    /** Runs {@code body}; a JVM error it throws (a StackOverflowError, OutOfMemoryError, ...) is a message and exit 70, not a raw trace. */
    static int guarded(java.util.function.IntSupplier body, PrintWriter out, PrintWriter err, boolean debug) {
        try {
            return body.getAsInt();
        } catch (Error e) {
            // a JVM error picocli lets through: a message and exit 70 rather than a raw trace and exit 1
            String what = e instanceof StackOverflowError ? "the stack overflowed"
                    : e instanceof OutOfMemoryError ? "out of memory (" + e.getMessage() + "); a larger heap (-Xmx) may help" : e.toString();
            err.println("kvpc: internal error: " + what);
            if (debug) e.printStackTrace(err);
            else err.println("This is a bug in kvpc. Run again with --debug for the stack trace, and report it.");
            out.flush();
            err.flush();
            return INTERNAL;
        }
    }

    private static int execute(String[] args, PrintWriter out, PrintWriter err, boolean debug) {
        CommandLine cl = new CommandLine(new Main());
        cl.setOut(out);
        cl.setErr(err);
        cl.setExitCodeExceptionMapper(e -> e instanceof CommandLine.ParameterException ? USAGE : INTERNAL);
        cl.setParameterExceptionHandler((ex, a) -> {
            String unknown = unknownWord(ex, a, cl);
            err.println("kvpc: " + (unknown != null ? unknown : ex.getMessage()));
            err.println("Try 'kvpc --help'" + (ex.getCommandLine() != cl ? " or 'kvpc help " + ex.getCommandLine().getCommandName() + "'" : "") + ".");
            return USAGE;
        });
        cl.setExecutionExceptionHandler((ex, c, parsed) -> {
            dev.kvpc.runtime.load.PolicyFault fault = policyFault(ex);
            if (fault != null) {
                // a loaded jar's code failed: the policy's fault, as invalid input is
                err.println("kvpc: " + fault.getMessage());
                if (debug) fault.printStackTrace(err);
                else err.println("The policy's own code failed, not kvpc. Run again with --debug for the stack trace.");
                return INVALID;
            }
            dev.kvpc.gpu.cl.ClException device = clFailure(ex);
            if (device != null) {
                // no OpenCL library or device, or a device that refused: the machine's, not kvpc's
                err.println("kvpc: OpenCL: " + device.getMessage());
                if (debug) device.printStackTrace(err);
                return UNAVAILABLE;
            }
            if (ex instanceof Commands.InvalidModel m) {
                err.println("kvpc: " + m.getMessage());
                return INVALID;
            }
            err.println("kvpc: internal error: " + ex);
            if (debug) ex.printStackTrace(err);
            else err.println("This is a bug in kvpc. Run again with --debug for the stack trace, and report it.");
            return INTERNAL;
        });
        int code = cl.execute(args);
        out.flush();
        err.flush();
        return code;
    }

    /**
     * A usage error about a word the user mistyped, with the nearest command or option ("did you mean"), or null: an
     * unknown command, or an option the command does not have (reported first even where picocli would report a
     * missing required option, since the misspelt one is usually the missing one).
     */
    static String unknownWord(CommandLine.ParameterException ex, String[] args, CommandLine top) {
        CommandLine sub = ex.getCommandLine();
        java.util.List<String> options = new java.util.ArrayList<>(sub.getCommandSpec().optionsMap().keySet());
        int at = java.util.Arrays.asList(args).indexOf(sub.getCommandName());
        var specs = sub.getCommandSpec().optionsMap();
        for (int i = sub == top ? 0 : Math.max(0, at + 1); i < args.length; i++) {
            String arg = args[i];
            if (arg.equals("--")) break;
            if (!arg.startsWith("-") || arg.equals("-")) continue;
            String name = arg.contains("=") ? arg.substring(0, arg.indexOf('=')) : arg;
            if (specs.containsKey(name)) {
                // the option's value, which may itself start with '-', is not an option
                if (!arg.contains("=") && specs.get(name).arity().max() > 0) i++;
                continue;
            }
            if (name.matches("-[A-Za-z]{2,}") && options.contains(name.substring(0, 2))) continue;
            if (name.matches("-\\d.*")) continue; // a negative number
            String near = dev.kvpc.compiler.diag.Suggest.nearest(name, options.stream().filter(o -> o.startsWith("--")).toList());
            return "no option '" + name + "' in " + (sub == top ? "kvpc" : "kvpc " + sub.getCommandName()) + (near != null ? "; did you mean '" + near + "'?" : "");
        }
        if (ex instanceof CommandLine.UnmatchedArgumentException u && sub == top && !u.getUnmatched().isEmpty()) {
            String word = u.getUnmatched().get(0);
            String near = dev.kvpc.compiler.diag.Suggest.nearest(word, top.getSubcommands().keySet());
            return "'" + word + "' is not a kvpc command" + (near != null ? "; did you mean 'kvpc " + near + "'?" : " (the commands: kvpc --help)");
        }
        return null;
    }

    /** The {@link dev.kvpc.runtime.load.PolicyFault} {@code t} is or was caused by, or null. */
    static dev.kvpc.runtime.load.PolicyFault policyFault(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
            if (c instanceof dev.kvpc.runtime.load.PolicyFault f) return f;
        }
        return null;
    }

    /** The {@link dev.kvpc.gpu.cl.ClException} {@code t} is or was caused by, or null. */
    static dev.kvpc.gpu.cl.ClException clFailure(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
            if (c instanceof dev.kvpc.gpu.cl.ClException e) return e;
        }
        return null;
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            String commit = "unknown";
            try (var in = Main.class.getResourceAsStream("build.properties")) {
                if (in != null) {
                    java.util.Properties p = new java.util.Properties();
                    p.load(in);
                    commit = p.getProperty("commit", commit);
                }
            } catch (java.io.IOException ignored) {
                // no build information: the commit stays unknown
            }
            return new String[] {"kvpc " + (v == null ? "(development build)" : v) + ", commit " + commit,
                "JDK " + Runtime.version() + " (" + System.getProperty("java.vendor", "?") + "), " + System.getProperty("os.name") + " "
                        + System.getProperty("os.arch")};
        }
    }
}
