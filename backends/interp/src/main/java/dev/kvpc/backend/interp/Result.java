package dev.kvpc.backend.interp;

import dev.kvpc.ir.PolicyIr;

import java.util.*;

/** What every lane held after every step of a trace: the interpreter's output, compared across passes and backends. */
public record Result(List<Step> steps) {
    public Result {
        steps = List.copyOf(steps);
    }

    public record Step(int index, String event, Lane[][] lanes) {}

    /**
     * One lane after a step: positions of its entries (in order; the compensation entry as -1), their merge counts,
     * storage precisions ("k/v"), state values (per-token states in entry order), the attended positions when the
     * policy restricted attention (else null), the attention output of the step's last query per query head, and
     * each query head's attended positions where the attend set was per query head (else null).
     */
    public record Lane(int[] positions, double[] counts, String[] precisions, Map<String, double[]> states, int[] attended, double[] outputs,
                       int[][] attendedByQueryHead) {
        static Lane of(LaneState l, List<PolicyIr.State> declared, dev.kvpc.runtime.exec.ModelCells model, double[] outputs, int[] attended,
                       int[][] attendedByQueryHead) {
            int n = l.size();
            int[] pos = new int[n];
            double[] counts = new double[n];
            String[] prec = new String[n];
            for (int i = 0; i < n; i++) {
                LaneState.Entry e = l.entries.get(i);
                pos[i] = e.compensation ? -1 : e.pos;
                counts[i] = e.count;
                prec[i] = fmt(e.kFormat, e.kBits) + "/" + fmt(e.vFormat, e.vBits);
            }
            Map<String, double[]> states = new TreeMap<>();
            for (PolicyIr.State s : declared) {
                switch (s.scope()) {
                    case TOKEN -> {
                        List<Double> vals = new ArrayList<>();
                        for (LaneState.Entry e : l.entries) {
                            double[] v = e.state.get(s.name());
                            if (v != null) for (double x : v) vals.add(x);
                        }
                        states.put(s.name(), vals.stream().mapToDouble(Double::doubleValue).toArray());
                    }
                    case LANE -> {
                        Tensor t = l.laneState.get(s.name());
                        states.put(s.name(), t == null ? new double[0] : t.data.clone());
                    }
                    case MODEL -> {
                        int cell = model.cell(s, l.layer, l.kvHead);
                        if (s.overTokens()) {
                            // the values at the lane's entries' positions
                            double[] v = new double[n];
                            for (int i = 0; i < n; i++) v[i] = model.at(s, cell, pos[i]);
                            states.put(s.name(), v);
                        } else {
                            states.put(s.name(), new double[] {model.cells(s)[cell]});
                        }
                    }
                    case PAGE -> { }
                }
            }
            return new Lane(pos, counts, prec, states, attended, outputs == null ? new double[0] : outputs, attendedByQueryHead);
        }

        private static String fmt(dev.kvpc.ir.Instr.Format f, int bits) {
            if (f == null) return "host";
            return f == dev.kvpc.ir.Instr.Format.INT ? "int" + bits : f.word();
        }
    }

    /**
     * The first difference between two results, or null: sets, positions, precisions and counts exactly; states and
     * attention outputs within {@code tolerance} (absolute plus relative).
     */
    public static String difference(Result a, Result b, double tolerance) {
        return difference(a, b, tolerance, false);
    }

    /**
     * As {@link #difference(Result, Result, double)}; with {@code droppedStates}, {@code b} may lack states {@code a}
     * holds (a pass removed them as dead: specialisation can leave a state written where nothing reads it), and the
     * states both hold are compared.
     */
    public static String difference(Result a, Result b, double tolerance, boolean droppedStates) {
        if (a.steps.size() != b.steps.size()) return "step counts differ: " + a.steps.size() + " vs " + b.steps.size();
        for (int s = 0; s < a.steps.size(); s++) {
            Lane[][] x = a.steps.get(s).lanes(), y = b.steps.get(s).lanes();
            for (int l = 0; l < x.length; l++) {
                for (int h = 0; h < x[l].length; h++) {
                    String where = "step " + s + " (" + a.steps.get(s).event() + ") layer " + l + " head " + h + ": ";
                    Lane p = x[l][h], q = y[l][h];
                    if (!Arrays.equals(p.positions, q.positions)) return where + "kept " + Arrays.toString(p.positions) + " vs " + Arrays.toString(q.positions);
                    if (!Arrays.equals(p.precisions, q.precisions)) return where + "precisions " + Arrays.toString(p.precisions) + " vs " + Arrays.toString(q.precisions);
                    if (!Arrays.equals(p.attended, q.attended)) return where + "attended " + Arrays.toString(p.attended) + " vs " + Arrays.toString(q.attended);
                    if (!Arrays.deepEquals(p.attendedByQueryHead, q.attendedByQueryHead)) {
                        return where + "attended per query head " + Arrays.deepToString(p.attendedByQueryHead) + " vs " + Arrays.deepToString(q.attendedByQueryHead);
                    }
                    if (!close(p.counts, q.counts, 0)) return where + "merge counts " + Arrays.toString(p.counts) + " vs " + Arrays.toString(q.counts);
                    boolean same = droppedStates ? p.states.keySet().containsAll(q.states.keySet()) : p.states.keySet().equals(q.states.keySet());
                    if (!same) return where + "states " + p.states.keySet() + " vs " + q.states.keySet();
                    for (String k : q.states.keySet()) {
                        if (!close(p.states.get(k), q.states.get(k), tolerance)) return where + "state " + k + " differs";
                    }
                    if (!close(p.outputs, q.outputs, tolerance)) return where + "attention outputs differ";
                }
            }
        }
        return null;
    }

    private static boolean close(double[] a, double[] b, double tol) {
        if (a.length != b.length) return false;
        for (int i = 0; i < a.length; i++) {
            if (Double.isNaN(a[i]) && Double.isNaN(b[i])) continue;
            if (Math.abs(a[i] - b[i]) > tol * (1 + Math.abs(a[i]))) return false;
        }
        return true;
    }

    /** Human-readable dump of one step (for kvpc trace). */
    /**
     * {@code kvpc trace}'s report, for every backend: the trace's first line, then per step its event, the context
     * after it, and what the first {@code maxLanes} lanes hold ({@link #describe}).
     */
    public void report(dev.kvpc.runtime.trace.Trace t, int maxLanes, java.io.PrintWriter out) {
        out.println("trace: " + t.describe().lines().findFirst().orElse(""));
        for (int i = 0; i < steps().size(); i++) {
            out.println("step " + i + " (" + steps().get(i).event() + ", context " + (t.start(i) + t.steps().get(i).data().tokens()) + ")");
            out.print(describe(i, maxLanes));
        }
    }

    public String describe(int step, int maxLanes) {
        StringBuilder sb = new StringBuilder();
        Step st = steps.get(step);
        int shown = 0;
        for (int l = 0; l < st.lanes().length && shown < maxLanes; l++) {
            for (int h = 0; h < st.lanes()[l].length && shown < maxLanes; h++, shown++) {
                Lane lane = st.lanes()[l][h];
                sb.append("  layer ").append(l).append(" head ").append(h).append(": ").append(lane.positions.length).append(" entries ")
                        .append(ranges(lane.positions));
                if (lane.attended != null) sb.append(" attended ").append(ranges(lane.attended));
                if (lane.attendedByQueryHead != null) {
                    StringJoiner each = new StringJoiner(", ", " (query heads: ", ")");
                    for (int[] p : lane.attendedByQueryHead) each.add(ranges(p));
                    sb.append(each);
                }
                boolean merged = Arrays.stream(lane.counts).anyMatch(c -> c != 1);
                if (merged) sb.append(" merged-counts ").append(Arrays.toString(lane.counts));
                Set<String> precisions = new TreeSet<>(Arrays.asList(lane.precisions));
                if (!precisions.equals(Set.of("host/host"))) sb.append(" precisions ").append(precisions);
                for (var e : lane.states.entrySet()) {
                    double[] v = e.getValue();
                    sb.append(' ').append(e.getKey()).append('=');
                    sb.append(v.length <= 6 ? Arrays.toString(round(v)) : Arrays.toString(round(Arrays.copyOf(v, 6))).replace("]", ", ...]"));
                }
                sb.append('\n');
            }
        }
        return sb.toString();
    }

    private static double[] round(double[] v) {
        double[] r = new double[v.length];
        for (int i = 0; i < v.length; i++) r[i] = Math.round(v[i] * 1e4) / 1e4;
        return r;
    }

    /** Positions as ranges: [0..3, 7, 9..12]. */
    static String ranges(int[] pos) {
        StringJoiner j = new StringJoiner(", ", "[", "]");
        for (int i = 0; i < pos.length; ) {
            int k = i;
            while (k + 1 < pos.length && pos[k + 1] == pos[k] + 1) k++;
            j.add(k > i ? pos[i] + ".." + pos[k] : Integer.toString(pos[i]));
            i = k + 1;
        }
        return j.toString();
    }
}
