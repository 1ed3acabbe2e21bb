package dev.kvpc.runtime.exec;

import dev.kvpc.ir.Axis;
import dev.kvpc.ir.Op;
import dev.kvpc.ir.PolicyIr;

import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@code per model} states of one lane class in one sequence, and the rules that read them, stated once for every
 * engine. A model state has one cell per layer ({@code [layer]}), per KV head ({@code [head]}), per lane
 * ({@code [layer, head]}) or one for the whole model (no axes), laid out layer-major. Every cell starts at zero; a
 * cell with an initial value takes it at the first event of a lane the cell belongs to. A lane reads and writes its
 * own cell (under per-layer selection with a {@code head} axis, its layer's cells, one per lane); {@link #stat} reads
 * them all. A state over tokens ({@code [token]} or {@code [head, token]}) has, per cell, one value per text
 * position: a lane reads and writes the values at its entries' positions, and a position nothing has written holds
 * the cell's initial value (0 without one).
 */
public final class ModelCells {
    private final int layers, heads;
    private final Map<String, double[]> values = new HashMap<>();
    /** A state over tokens: per cell, a value per text position, and what a position nothing wrote holds. */
    private final Map<String, double[][]> positions = new HashMap<>();
    private final Map<String, double[]> fills = new HashMap<>();
    private final Map<String, BitSet> initialised = new HashMap<>();

    public ModelCells(int layers, int heads) {
        this.layers = layers;
        this.heads = heads;
    }

    /** The cells of a state (zeros until written). */
    public double[] cells(PolicyIr.State s) {
        return values.computeIfAbsent(s.name(), k -> new double[count(s)]);
    }

    private int count(PolicyIr.State s) {
        List<Axis> a = s.modelAxes();
        return (a.contains(Axis.LAYER) ? layers : 1) * (a.contains(Axis.HEAD) ? heads : 1);
    }

    /**
     * What an event's lanes read of a state, in the order of their view ({@link PolicyIr.State#axes}): their cells,
     * or for a state over tokens the values at the lane's entries' {@code positions} (-1 for the compensation entry;
     * null for a state of cells).
     */
    public double[] read(PolicyIr.State s, int layer, int[] kvHeads, boolean perLayer, int[] positions) {
        int[] view = view(s, layer, kvHeads, perLayer);
        double[] out;
        if (s.overTokens()) {
            out = new double[positions.length];
            for (int i = 0; i < out.length; i++) out[i] = at(s, view[0], positions[i]);
        } else {
            double[] cells = cells(s);
            out = new double[view.length];
            for (int i = 0; i < out.length; i++) out[i] = cells[view[i]];
        }
        return out;
    }

    /** Writes {@code values} (in the order {@link #read} gives, as the state holds them) to what the lanes read. */
    public void write(PolicyIr.State s, int layer, int[] kvHeads, boolean perLayer, int[] positions, double[] values) {
        int[] view = view(s, layer, kvHeads, perLayer);
        if (s.overTokens()) {
            for (int i = 0; i < values.length; i++) set(s, view[0], positions[i], values[i]);
        } else {
            double[] cells = cells(s);
            for (int i = 0; i < view.length; i++) cells[view[i]] = values[i];
        }
    }

    /**
     * An event's initial values: each lane whose cell has not had its initial value yet gets {@code init}'s (one value,
     * or one per lane; computed only when some lane needs it, null without an initial value). A state over tokens
     * takes it as what its positions hold until written.
     */
    public void initialise(PolicyIr.State s, int layer, int[] kvHeads, java.util.function.Supplier<double[]> init) {
        boolean[] claimed = new boolean[kvHeads.length];
        boolean any = false;
        for (int i = 0; i < kvHeads.length; i++) any |= claimed[i] = claimInit(s, layer, kvHeads[i]);
        if (init == null || !any) return;
        double[] v = init.get();
        for (int i = 0; i < kvHeads.length; i++) {
            if (!claimed[i]) continue;
            int cell = cell(s, layer, kvHeads[i]);
            double x = s.type().elem().stored(v.length == 1 ? v[0] : v[i]);
            if (s.overTokens()) fill(s, cell, x);
            else cells(s)[cell] = x;
        }
    }

    /** The value of a state over tokens at a text position (0 at the compensation entry's, -1). */
    public double at(PolicyIr.State s, int cell, int position) {
        if (position < 0) return 0;
        double[] row = row(s, cell, -1);
        return position < row.length ? row[position] : fill(s, cell);
    }

    /** Sets the value of a state over tokens at a text position (the compensation entry's, -1, holds none). */
    private void set(PolicyIr.State s, int cell, int position, double v) {
        if (position >= 0) row(s, cell, position)[position] = v;
    }

    /** What a position of a state over tokens holds until written: the cell's initial value. */
    private void fill(PolicyIr.State s, int cell, double v) {
        fills.computeIfAbsent(s.name(), k -> new double[count(s)])[cell] = v;
    }

    private double fill(PolicyIr.State s, int cell) {
        double[] f = fills.get(s.name());
        return f == null ? 0 : f[cell];
    }

    /** A cell's values by position, grown (with its fill) to hold {@code position}. */
    private double[] row(PolicyIr.State s, int cell, int position) {
        double[][] rows = positions.computeIfAbsent(s.name(), k -> new double[count(s)][0]);
        double[] row = rows[cell];
        if (position >= row.length) {
            double[] grown = java.util.Arrays.copyOf(row, Math.max(position + 1, 2 * row.length));
            java.util.Arrays.fill(grown, row.length, grown.length, fill(s, cell));
            rows[cell] = row = grown;
        }
        return row;
    }

    /** The cell of the lane at ({@code layer}, {@code kvHead}). */
    public int cell(PolicyIr.State s, int layer, int kvHead) {
        List<Axis> a = s.modelAxes();
        int l = a.contains(Axis.LAYER) ? layer : 0;
        return a.contains(Axis.HEAD) ? l * heads + kvHead : l;
    }

    /**
     * The cells an event's lanes see, in the order of its view ({@link PolicyIr.State#axes}): one per lane when the
     * view has the head axis, else the first lane's.
     */
    public int[] view(PolicyIr.State s, int layer, int[] kvHeads, boolean perLayer) {
        if (perLayer && s.modelAxes().contains(Axis.HEAD)) {
            int[] out = new int[kvHeads.length];
            for (int i = 0; i < kvHeads.length; i++) out[i] = cell(s, layer, kvHeads[i]);
            return out;
        }
        return new int[] {cell(s, layer, kvHeads[0])};
    }

    /**
     * Whether the lane's cell still needs its initial value: true once per cell, at the first event of a lane it
     * belongs to (the caller then writes it).
     */
    private boolean claimInit(PolicyIr.State s, int layer, int kvHead) {
        BitSet done = initialised.computeIfAbsent(s.name(), k -> new BitSet());
        int c = cell(s, layer, kvHead);
        if (done.get(c)) return false;
        done.set(c);
        return true;
    }

    /** {@link Op.CellStat} {@code stat} over a state's cells, seen from the lane at ({@code layer}, {@code kvHead}). */
    public double stat(Op.CellStat stat, PolicyIr.State s, int layer, int kvHead) {
        return stat(stat, cells(s), cell(s, layer, kvHead));
    }

    /**
     * The rule: a reduction of {@link Op.Red}'s table over the cells, in cell order; or {@link Op.CellStat#SHARE},
     * {@code max(own, 0) / sum(max(cell, 0))}, and {@code 1 / cells} when no cell is positive (a NaN cell counts as 0).
     */
    public static double stat(Op.CellStat stat, double[] cells, int own) {
        if (stat == Op.CellStat.SHARE) {
            double total = 0;
            for (double c : cells) total += positive(c);
            return total > 0 ? positive(cells[own]) / total : 1.0 / cells.length;
        }
        return stat.red.all(cells);
    }

    private static double positive(double c) {
        return c > 0 ? c : 0;
    }
}
