package dev.kvpc.compiler.check;

import dev.kvpc.compiler.ast.Expr;
import dev.kvpc.compiler.ast.Span;
import dev.kvpc.compiler.diag.Code;
import dev.kvpc.compiler.diag.Diagnostic.Note;
import dev.kvpc.compiler.diag.Diagnostics;
import dev.kvpc.compiler.model.ModelShape;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Calibration tables ({@code [layer, head]} numbers in TSV: one row per layer, one column per KV head, {@code #}
 * comment lines; a channel table, {@code table[channel]}, has one row per (layer, KV head) pair, layer-major, and one
 * column per channel). Resolved relative to the file that names them, then in the bundled standard library; with a model
 * shape known, {@code NAME.LxK.tsv} (L layers, K KV heads) is looked for before {@code NAME.tsv} in each place, so
 * that a table computed for a model of that shape ({@code kvpc heads}) is what a default names.
 */
public final class Tables {
    private final Diagnostics diags;
    private final Program program;
    private final ModelShape model;
    private final Map<String, Val> cache = new HashMap<>();

    Tables(Diagnostics diags, Program program, ModelShape model) {
        this.diags = diags;
        this.program = program;
        this.model = model;
    }

    /** A table type's name: {@code table}, or {@code table[channel]} for a channel table. */
    public static boolean isTableType(String typeName) {
        return typeName.equals("table") || isChannelTable(typeName);
    }

    /** A table's type: float [layer, head], with {@code channels} float [layer, head, channel]. */
    static Type type(boolean channels) {
        return channels ? Type.tensor(Type.Elem.FLOAT, Axis.LAYER, Axis.HEAD, Axis.CHANNEL) : Type.tensor(Type.Elem.FLOAT, Axis.LAYER, Axis.HEAD);
    }

    /** The message for {@code table[AXIS]} with an axis other than channel (E102). */
    static String badAxis(String axis) {
        return "a table's cells are its layers and KV heads, with one value per channel as 'table[channel]'; not 'table[" + axis + "]'";
    }

    /** Whether a type's name is a channel table's, {@code table[channel]}. */
    public static boolean isChannelTable(String typeName) {
        return typeName.equals("table[channel]");
    }

    /** Loads the table named by {@code name}; problems are reported at the string (or at {@code useSite}). */
    Val load(Expr.StringLit name, Span useSite) {
        return load(name, useSite, false);
    }

    /** Loads a table, a channel table when {@code channels}; problems are reported at the string. */
    Val load(Expr.StringLit name, Span useSite, boolean channels) {
        String key = name.span().file() + "|" + name.value() + "|" + channels;
        Val cached = cache.get(key);
        if (cached != null) return cached;
        Val v = read(name, channels ? Kind.CHANNELS : Kind.CELLS);
        cache.put(key, v);
        return v;
    }

    /**
     * Reads a table for code generation (after checking): relative to any file of the program, then the bundled
     * standard library. Throws IllegalArgumentException when it is missing or malformed.
     */
    public static double[][] readForProgram(Program program, String file, ModelShape model) {
        Diagnostics d = new Diagnostics();
        for (Map.Entry<String, Path> e : program.dirs().entrySet()) {
            if (e.getValue() == null) continue;
            for (String name : names(file, model)) {
                if (!Files.isRegularFile(e.getValue().resolve(name))) continue;
                Tables t = new Tables(d, program, model);
                Val v = t.read(new Expr.StringLit(file, new Span(e.getKey(), 1, 1, 1, 1, 0, 0)), Kind.UNCHECKED);
                if (v instanceof Val.Table tab) return tab.rows();
            }
        }
        Tables t = new Tables(d, program, model);
        Val v = t.read(new Expr.StringLit(file, new Span("<none>", 1, 1, 1, 1, 0, 0)), Kind.UNCHECKED);
        if (v instanceof Val.Table tab) return tab.rows();
        throw new IllegalArgumentException(d.all().isEmpty() ? "cannot read table " + file : d.all().getFirst().message());
    }

    /** The names a table is looked for under: for a model's shape {@code NAME.LxK.tsv} first, then as given. */
    static List<String> names(String file, ModelShape model) {
        if (model == null) return List.of(file);
        int dot = file.lastIndexOf('.'), slash = Math.max(file.lastIndexOf('/'), file.lastIndexOf('\\'));
        String stem = dot > slash ? file.substring(0, dot) : file, ext = dot > slash ? file.substring(dot) : "";
        return List.of(stem + "." + model.layers() + "x" + model.kvHeads() + ext, file);
    }

    /** What a table's shape is checked against: a cell per lane, a row of channels per lane, or nothing (checked before). */
    private enum Kind { CELLS, CHANNELS, UNCHECKED }

    private Val read(Expr.StringLit name, Kind kind) {
        Span at = name.span();
        Path dir = program.dirs().get(at.file());
        String text = null;
        String shown = name.value();
        if (dir != null) {
            for (String candidate : names(name.value(), model)) {
                Path p = dir.resolve(candidate).normalize();
                if (!Files.isRegularFile(p)) continue;
                try {
                    text = Files.readString(p, StandardCharsets.UTF_8);
                    shown = Loader.displayName(p);
                    break;
                } catch (IOException | RuntimeException e) {
                    diags.error(Code.E502, at, "cannot read table " + candidate + ": " + e.getMessage());
                    return Val.UNKNOWN;
                }
            }
        }
        if (text == null) {
            for (String candidate : names(name.value(), model)) {
                String fileName = Path.of(candidate).getFileName() == null ? candidate : Path.of(candidate).getFileName().toString();
                text = Loader.readBundled(fileName);
                shown = Loader.STDLIB_PREFIX + fileName;
                if (text != null) break;
            }
        }
        if (text == null) {
            diags.error(Code.E502, at, "table file '" + name.value() + "' not found next to this file nor in the standard library");
            return Val.UNKNOWN;
        }
        List<double[]> rows = new ArrayList<>();
        String[] lines = text.split("\n", -1);
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i].strip();
            if (line.isEmpty() || line.startsWith("#")) continue;
            String[] cells = line.split("[\\t ,]+");
            double[] row = new double[cells.length];
            for (int j = 0; j < cells.length; j++) {
                try {
                    row[j] = Double.parseDouble(cells[j]);
                    if (!Double.isFinite(row[j])) throw new NumberFormatException();
                } catch (NumberFormatException e) {
                    diags.error(Code.E502, at, "table " + shown + " line " + (i + 1) + " column " + (j + 1) + ": '" + cells[j] + "' is not a number");
                    return Val.UNKNOWN;
                }
            }
            if (!rows.isEmpty() && rows.getFirst().length != row.length) {
                diags.error(Code.E502, at, "table " + shown + " line " + (i + 1) + " has " + row.length + " values, the first row has " + rows.getFirst().length,
                        new Note(kind == Kind.CHANNELS ? "a channel table has one row per layer and KV head, and one column per channel"
                                : "a table has one row per layer and one column per KV head", null));
                return Val.UNKNOWN;
            }
            rows.add(row);
        }
        if (rows.isEmpty()) {
            diags.error(Code.E502, at, "table " + shown + " is empty");
            return Val.UNKNOWN;
        }
        double[][] data = rows.toArray(double[][]::new);
        if (model != null && kind == Kind.CHANNELS && (data.length != model.layers() * model.kvHeads() || data[0].length != model.headDim())) {
            diags.error(Code.E503, at, "channel table " + shown + " is " + data.length + " x " + data[0].length + " but " + model.name() + " has "
                    + model.layers() + " layers x " + model.kvHeads() + " KV heads = " + model.layers() * model.kvHeads() + " rows of "
                    + model.headDim() + " channels",
                    new Note("rows are (layer, KV head) pairs, layer 0 head 0 first, then layer 0 head 1; check against the model with --model", null));
            return Val.UNKNOWN;
        }
        if (model != null && kind == Kind.CELLS && (data.length != model.layers() || data[0].length != model.kvHeads())) {
            diags.error(Code.E503, at, "table " + shown + " is " + data.length + " x " + data[0].length + " but " + model.name() + " has "
                    + model.layers() + " layers x " + model.kvHeads() + " KV heads",
                    new Note("check against the model with --model, or give a table computed for it", null));
            return Val.UNKNOWN;
        }
        return new Val.Table(data, kind == Kind.CHANNELS, at);
    }
}
