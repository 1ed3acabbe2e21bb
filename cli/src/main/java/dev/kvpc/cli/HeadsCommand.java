package dev.kvpc.cli;

import dev.kvpc.examples.llama.ModelFormatException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

@Command(name = "heads", description = {"Score each layer and KV head of a model and write the tables DuoAttention, RazorAttention and Double Sparsity read:",
        "duo_gates.LxK.tsv (the share of a pass-key question's attention on the key), razor_heads.LxK.tsv (the --share",
        "of heads that attend most to the earlier copy of a repeated sequence) and ds_channels.LxK.tsv (the --channel-share of",
        "each head's channels with the largest |q_c| |k_c| on the pass-key documents). L and K are the model's layers and KV",
        "heads: a table named so is what duo_attention, razor and double_sparsity find by default for a model of that shape."})
final class HeadsCommand implements java.util.concurrent.Callable<Integer> {
    @Option(names = "--model", paramLabel = "M", description = "A model (.gguf with its tokenizer, a llama2.c .bin with tok*.bin beside it, or a folder holding one); repeatable (default: the embedded model, and stories260K when present).")
    List<Path> models = new ArrayList<>();

    @Option(names = "--out", paramLabel = "DIR", description = "Where the tables go (default: the current directory).")
    Path outDir = Path.of(".");

    @Option(names = "--allow-nonfinite", description = "Load a model whose weights hold NaN or infinite values (a warning, not an error).")
    boolean allowNonFinite;

    @Option(names = "--samples", paramLabel = "N", description = "Probe documents of each kind (default 8).")
    int samples = 8;

    @Option(names = "--share", paramLabel = "F", description = "The share of heads RazorAttention's table marks as retrieval heads, in (0, 1] (default 0.25).")
    double share = 0.25;

    @Option(names = "--channel-share", paramLabel = "F", description = "The share of each head's channels Double Sparsity's table marks, in (0, 1] (default 0.25).")
    double channelShare = 0.25;

    @Option(names = "--period", paramLabel = "N", description = "Length of the random sequence the copy probe repeats (default 64; at most half the trained context).")
    int period = 64;

    @Option(names = "--seed", paramLabel = "S", description = "Seed of the probe documents (default 1).")
    long seed = 1;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        if (period < 2) throw new CommandLine.ParameterException(spec.commandLine(), "--period must be at least 2");
        if (samples < 1) throw new CommandLine.ParameterException(spec.commandLine(), "--samples must be at least 1");
        if (!(share > 0 && share <= 1)) throw new CommandLine.ParameterException(spec.commandLine(), "--share is a fraction in (0, 1]");
        if (!(channelShare > 0 && channelShare <= 1)) throw new CommandLine.ParameterException(spec.commandLine(), "--channel-share is a fraction in (0, 1]");
        if (Files.exists(outDir) && !Files.isDirectory(outDir)) throw new CommandLine.ParameterException(spec.commandLine(), "--out: " + outDir + " is a file, not a directory");
        List<Eval.Model> ms = new ArrayList<>();
        Map<String, String> about = new LinkedHashMap<>();
        try {
            ms.addAll(EvalCommand.models(models, about, err, "kvpc heads", allowNonFinite));
        } catch (ModelFormatException e) {
            err.println("kvpc heads: " + e.getMessage());
            return Main.INVALID;
        }
        Files.createDirectories(outDir);
        for (Eval.Model m : ms) {
            EvalCommand.Progress progress = new EvalCommand.Progress(err, m.name(), 3L * samples);
            progress.status("probing heads");
            Heads.Scores s = Heads.probe(m, samples, period, seed, (done, total) -> progress.tick());
            progress.done();
            String shape = m.weights().layers + "x" + m.weights().kvHeads;
            String origin = "kvpc heads --samples " + samples + " --period " + period + " --share " + share + " --seed " + seed + " on " + m.name()
                    + " (" + m.weights().layers + " layers x " + m.weights().kvHeads + " KV heads); rows are layers, columns KV heads.";
            Path duo = outDir.resolve("duo_gates." + shape + ".tsv"), razor = outDir.resolve("razor_heads." + shape + ".tsv");
            Files.writeString(duo, Heads.tsv(List.of("DuoAttention gates for " + m.name() + ": the mean share of a pass-key question's attention",
                    "(each question token, each query head) on the statement of the key, over " + s.needleSamples() + " documents of "
                            + s.context() + " tokens.", origin), s.needle()), StandardCharsets.UTF_8);
            Files.writeString(razor, Heads.tsv(List.of("RazorAttention retrieval heads for " + m.name() + ": on " + s.copySamples()
                    + " random sequences of " + s.period() + " tokens repeated,", "the mean attention a second-copy query head puts on its token's "
                    + "earlier copy and the token after it; the top " + Math.round(share * 100) + "% of heads keep that score, the others 0.",
                    String.format(Locale.ROOT, "A head attending evenly would score %.4f; the best scores %.4f.", s.copyUniform(), s.bestCopy()), origin),
                    Heads.retrievalHeads(s.copy(), share)), StandardCharsets.UTF_8);
            Path ds = outDir.resolve("ds_channels." + shape + ".tsv");
            int d = m.weights().headSize, marked = Heads.markedCount(channelShare, d);
            Files.writeString(ds, Heads.tsv(List.of("Double Sparsity channels for " + m.name() + ": per layer and KV head, 1 marks the " + marked + " of " + d
                    + " channels with the largest |q_c| |k_c|", "averaged over every (query head, key) pair of " + s.needleSamples() + " pass-key documents of "
                    + s.context() + " tokens; 0 for the others.", origin.replace(" --share " + share, " --share " + share + " --channel-share " + channelShare)
                            .replace("rows are layers, columns KV heads.", "rows are (layer, KV head) pairs, layer 0 head 0 first; columns are channels.")),
                    Heads.markedChannels(s.channels(), channelShare)), StandardCharsets.UTF_8);
            out.println(m.name() + ": " + duo + ", " + razor + ", " + ds);
            out.println(table(s, Heads.markedChannels(s.channels(), channelShare)));
            out.printf(Locale.ROOT, "copy: %.4f for a head attending evenly; the best head %.4f%n", s.copyUniform(), s.bestCopy());
            if (s.bestCopy() < 2 * s.copyUniform()) {
                out.println("note: no head attends to the earlier copy clearly more than evenly: this model shows no induction or echo heads on random"
                        + " tokens, and razor's table picks among near-even heads");
            }
        }
        out.flush();
        return Main.OK;
    }

    /** Both scores per layer and head, and the channels Double Sparsity's table marks, for the terminal. */
    static String table(Heads.Scores s, double[][] marks) {
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "%-6s %-5s %10s %10s  %s%n", "layer", "head", "needle", "copy", "channels marked"));
        int row = 0;
        for (int l = 0; l < s.copy().length; l++) {
            for (int h = 0; h < s.copy()[l].length; h++) {
                StringBuilder ch = new StringBuilder();
                double[] m = marks[row++];
                for (int c = 0; c < m.length; c++) if (m[c] > 0) ch.append(ch.isEmpty() ? "" : " ").append(c);
                sb.append(String.format(Locale.ROOT, "%-6d %-5d %10.4f %10.4f  %s%n", l, h, s.needle()[l][h], s.copy()[l][h], ch));
            }
        }
        return sb.toString();
    }
}
