package dev.kvpc.cli;

import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.memory.MemoryModel;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "memory", description = {"Predict the KV-cache memory a policy takes on a model at a context length:",
        "per layer and head, entries at their precision, quantisation scales, state, and the transient peaks of",
        "prefill and decode, with totals and the ratio to the full cache. The scenario: a prompt of --prompt tokens",
        "(default: the whole context) in one prefill step, then decode steps up to --context tokens."})
final class MemoryCommand implements Callable<Integer> {
    @Parameters(paramLabel = "FILE", description = "A KVP file.")
    Path file;

    @Option(names = "--policy", paramLabel = "NAME", description = "The policy or config (default: the last one in FILE).")
    String policy;

    @Option(names = "--model", paramLabel = "SHAPE", description = "A preset, layers=L,heads=H,kv-heads=G,head-dim=D, or a model file or folder (.gguf, llama2.c .bin) to read the shape from (default: reference).")
    String model;

    @Option(names = "--layers", description = "Model layers (overrides --model).")
    Integer layers;

    @Option(names = "--heads", description = "Query heads (overrides --model).")
    Integer heads;

    @Option(names = "--kv-heads", description = "KV heads (overrides --model).")
    Integer kvHeads;

    @Option(names = "--head-dim", description = "Head dimension (overrides --model).")
    Integer headDim;

    @Option(names = "--dtype", defaultValue = "f16", description = "Host precision of keys and values: f32, f16 or bf16 (default f16).")
    String dtype;

    @Option(names = "--context", paramLabel = "N", description = "Context length in tokens (default: the trained context of a --model file).")
    Long context;

    @Option(names = "--prompt", paramLabel = "N", description = "Prompt tokens, run as one prefill step; the rest of the context is decoded token by token (default: the whole context is the prompt).")
    Long prompt;

    @Option(names = "--slack", defaultValue = "0", description = "Amortised-eviction slack, 0 or more, as for kvpc ir.")
    int slack;

    @Option(names = "--json", description = "Print JSON (every lane) instead of the table.")
    boolean json;

    @Option(names = "--param", paramLabel = "NAME=VALUE", description = "Give a parameter of the policy a value (repeatable).")
    Map<String, String> params = new LinkedHashMap<>();

    @Option(names = "--page-rows", paramLabel = "N", description = "Rows of a page of the runtime's lanes, a key row and a value row per entry "
            + "(default: the runtime's, ${DEFAULT-VALUE}); each chain of rows takes whole pages.")
    int pageRows = dev.kvpc.runtime.KvRuntime.DEFAULT_ROWS_PER_PAGE;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        Commands.range(spec, "--slack", slack, 0, Integer.MAX_VALUE);
        ModelShape shape;
        try {
            Commands.Described described = model == null ? new Commands.Described(ModelShape.REFERENCE, 0) : Commands.described(model);
            shape = described.shape();
            if (context == null && described.context() > 0) context = (long) described.context();
            if (layers != null || heads != null || kvHeads != null || headDim != null) {
                shape = new ModelShape("custom", layers != null ? layers : shape.layers(), heads != null ? heads : shape.heads(),
                        kvHeads != null ? kvHeads : shape.kvHeads(), headDim != null ? headDim : shape.headDim());
            }
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), "model: " + e.getMessage());
        }
        if (context == null) throw new CommandLine.ParameterException(spec.commandLine(), "--context is needed (or a --model file, whose trained context is the default)");
        if (context < 1) throw new CommandLine.ParameterException(spec.commandLine(), "--context must be at least 1");
        if (prompt != null && (prompt < 1 || prompt > context)) throw new CommandLine.ParameterException(spec.commandLine(), "--prompt must be 1.." + context + " (the context)");
        if (!dtype.matches("f32|f16|bf16")) throw new CommandLine.ParameterException(spec.commandLine(), "--dtype must be f32, f16 or bf16");
        if (pageRows < 1) throw new CommandLine.ParameterException(spec.commandLine(), "--page-rows must be at least 1");
        Map<String, Object> values = new LinkedHashMap<>();
        params.forEach((k, v) -> values.put(k, IrCommand.parseValue(spec, v)));
        Frontend.Result r = Commands.check(file, shape, policy, values, err);
        if (r == null) return Main.INVALID;
        String root = Commands.root(r, file, policy, err);
        if (root == null) return Main.INVALID;
        if (Commands.missingParams(r, root, params.keySet(), err)) return Main.USAGE;
        Specialized s = Compilation.optimise(r.program(), root, values, new Pipeline.Options(slack, true), (p, x) -> { });
        MemoryModel.Report rep = MemoryModel.predict(s, prompt == null ? context : prompt, context, dtype, dev.kvpc.runtime.lane.Lane.entriesPerPage(pageRows));
        out.print(json ? json(rep) : table(rep, shape));
        out.flush();
        return Main.OK;
    }

    static String table(MemoryModel.Report rep, ModelShape shape) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%s on %s, context %d%s, %s%n", rep.policy(), shape, rep.context(),
                rep.prompt() == rep.context() ? "" : " (prompt " + rep.prompt() + ", then " + (rep.context() - rep.prompt()) + " decoded)", rep.dtype()));
        sb.append(String.format(Locale.ROOT, "%-8s %-5s %9s %12s %10s %10s %12s %12s %12s  %s%n", "layers", "heads", "entries", "k+v", "scales",
                "state", "steady", "prefill pk", "decode pk", "precision k/v"));
        // group identical consecutive rows
        MemoryModel.LaneMemory[][] lanes = rep.lanes();
        for (int l = 0; l < lanes.length; ) {
            int end = l;
            while (end + 1 < lanes.length && java.util.Arrays.equals(lanes[end + 1], lanes[l])) end++;
            Map<MemoryModel.LaneMemory, String> heads = new LinkedHashMap<>();
            for (int h = 0; h < lanes[l].length; h++) heads.merge(lanes[l][h], Integer.toString(h), (a, b) -> a + "," + b);
            for (var e : heads.entrySet()) {
                MemoryModel.LaneMemory m = e.getKey();
                String hs = e.getValue().split(",").length == lanes[l].length ? "all" : compress(e.getValue());
                String most = m.exact() ? "" : "<= ";
                sb.append(String.format(Locale.ROOT, "%-8s %-5s %9s %12s %10s %10s %12s %12s %12s  %s%s%n", end > l ? l + ".." + end : Integer.toString(l), hs,
                        (m.entriesExact() ? "" : "<= ") + m.entries(), most + bytes(m.kvBytes()), most + bytes(m.scaleBytes()), bytes(m.stateBytes()), most + bytes(m.steadyBytes()),
                        bytes(m.prefillPeak()), bytes(m.decodePeak()), m.precision(), m.sharedInLayer() ? " (layer-shared budget: mean per head)" : ""));
            }
            l = end + 1;
        }
        sb.append(String.format(Locale.ROOT, "total steady %s%s (per lane figures above are per KV head); full cache %s; ratio %s%.4f%n",
                rep.exact() ? "" : "at most ", bytes(rep.totalSteady()), bytes(rep.totalFull()), rep.exact() ? "" : "<= ", rep.ratioToFull()));
        if (!rep.exact()) {
            sb.append("figures marked <= are upper bounds: which entries the policy keeps, or at which precision, depends on the data\n"
                    + "or on when its handlers ran; the runtime's lanes stay within them (docs/ir.md, Memory accounting)\n");
        }
        if (rep.modelStateBytes() > 0) {
            sb.append("per model states: " + bytes(rep.modelStateBytes()) + " for the sequence, beside the lanes (not in the totals)\n");
        }
        if (rep.shareCap() >= 0 && rep.shareCap() < rep.lanesTotal()) {
            sb.append("the lanes' budgets are shares of one total (share(...)): together they hold at most the total above, less than\n"
                    + "the lanes' own bounds add up to (" + bytes(rep.lanesTotal()) + ")\n");
        }
        sb.append(String.format(Locale.ROOT, "peak during prefill %s, during a decode step %s%n", bytes(rep.peak(true)), bytes(rep.peak(false))));
        return sb.toString();
    }

    private static String compress(String list) {
        return list.length() > 5 ? list.substring(0, 4) + "…" : list;
    }

    static String bytes(long b) {
        if (b < 1024) return b + " B";
        if (b < 1024 * 1024) return String.format(Locale.ROOT, "%.1f KiB", b / 1024.0);
        if (b < 1024L * 1024 * 1024) return String.format(Locale.ROOT, "%.2f MiB", b / 1048576.0);
        return String.format(Locale.ROOT, "%.2f GiB", b / 1073741824.0);
    }

    static String json(MemoryModel.Report rep) {
        StringBuilder sb = new StringBuilder();
        sb.append("{\n  \"policy\": \"").append(rep.policy()).append("\",\n");
        sb.append("  \"model\": {\"layers\": ").append(rep.shape().layers()).append(", \"heads\": ").append(rep.shape().heads())
                .append(", \"kv_heads\": ").append(rep.shape().kvHeads()).append(", \"head_dim\": ").append(rep.shape().headDim()).append("},\n");
        sb.append("  \"prompt\": ").append(rep.prompt()).append(",\n");
        sb.append("  \"context\": ").append(rep.context()).append(",\n  \"dtype\": \"").append(rep.dtype()).append("\",\n");
        sb.append("  \"exact\": ").append(rep.exact()).append(",\n");
        if (rep.shareCap() >= 0) sb.append("  \"share_bound_bytes\": ").append(rep.shareCap()).append(",\n");
        sb.append("  \"model_state_bytes\": ").append(rep.modelStateBytes()).append(",\n");
        sb.append("  \"total_steady_bytes\": ").append(rep.totalSteady()).append(",\n  \"full_cache_bytes\": ").append(rep.totalFull())
                .append(",\n  \"ratio_to_full\": ").append(String.format(Locale.ROOT, "%.6f", rep.ratioToFull())).append(",\n");
        sb.append("  \"peak_prefill_bytes\": ").append(rep.peak(true)).append(",\n  \"peak_decode_bytes\": ").append(rep.peak(false)).append(",\n");
        sb.append("  \"lanes\": [\n");
        var lanes = rep.lanes();
        for (int l = 0; l < lanes.length; l++) {
            for (int h = 0; h < lanes[l].length; h++) {
                var m = lanes[l][h];
                sb.append("    {\"layer\": ").append(l).append(", \"head\": ").append(h).append(", \"entries\": ").append(m.entries())
                        .append(", \"kv_bytes\": ").append(m.kvBytes()).append(", \"scale_bytes\": ").append(m.scaleBytes())
                        .append(", \"state_bytes\": ").append(m.stateBytes()).append(", \"steady_bytes\": ").append(m.steadyBytes())
                        .append(", \"prefill_peak_bytes\": ").append(m.prefillPeak()).append(", \"decode_peak_bytes\": ").append(m.decodePeak())
                        .append(", \"precision\": \"").append(m.precision()).append("\", \"entries_exact\": ").append(m.entriesExact()).append(", \"exact\": ").append(m.exact()).append("}")
                        .append(l == lanes.length - 1 && h == lanes[l].length - 1 ? "\n" : ",\n");
            }
        }
        sb.append("  ]\n}\n");
        return sb.toString();
    }
}
