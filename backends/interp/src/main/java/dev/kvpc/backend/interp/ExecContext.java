package dev.kvpc.backend.interp;

import dev.kvpc.ir.*;
import dev.kvpc.runtime.lane.Lane;

import java.util.*;

/**
 * One event of one lane (or of all lanes of a layer, under per-layer selection): the signals it may read and the
 * effects it may have. Handlers' nodes call into it. Attention is computed once per event and kept per entry, so
 * reads after a keep see the surviving entries' columns.
 */
final class ExecContext {
    final PolicyIr policy;
    final List<LaneState> lanes;
    final boolean perLayer;
    final LaneShape shape;
    final Queries trace;
    final int layer;
    /** Positions of this event's queries (all of the step) and of the queries the policy observes. */
    final int[] queryPositions;
    final int[] observed;
    final int decodeStep;
    final int context;
    final VariantEval variant;
    /** The model's RoPE when queries and keys arrive unrotated (null otherwise). */
    dev.kvpc.runtime.Rope rope;
    /** Attention of this event, per lane: entry -> [query * group] probabilities and logits. */
    final List<Map<LaneState.Entry, double[]>> probs = new ArrayList<>(), logits = new ArrayList<>();
    /** The entries this step's attention is restricted to, per lane (null: all), fixed when 'attend' runs. */
    List<Set<LaneState.Entry>> attend;
    /** Per lane, per query head of its group: the entries that head's attention reads; null unless 'attend' took a set per query head. */
    List<List<Set<LaneState.Entry>>> attendHeads;
    /** The covered set of the last store with a for/except scope in this event, for a following 'otherwise'. */
    TokenSet lastStoreScope;
    final Map<String, Tensor> pageStateCache = new HashMap<>();
    /** Per KV head: attention output of the event's last query, [group * head_dim], and the attended positions. */
    final Map<Integer, double[]> outputs = new HashMap<>();
    final Map<Integer, int[]> attendedPositions = new HashMap<>();
    /** Per KV head, where the attend set was per query head: each query head's attended positions. */
    final Map<Integer, int[][]> attendedHeadPositions = new HashMap<>();
    /** The sequence's per model states of this class (null when it declares none). */
    dev.kvpc.runtime.exec.ModelCells model;

    ExecContext(PolicyIr policy, List<LaneState> lanes, boolean perLayer, LaneShape shape, Queries trace, int layer,
                int[] queryPositions, int[] observed, int decodeStep, int context, VariantEval variant) {
        this.policy = policy;
        this.lanes = lanes;
        this.perLayer = perLayer;
        this.shape = shape;
        this.trace = trace;
        this.layer = layer;
        this.queryPositions = queryPositions;
        this.observed = observed;
        this.decodeStep = decodeStep;
        this.context = context;
        this.variant = variant;
    }

    boolean cachePositions() {
        return policy.positions() == PolicyIr.Positions.CACHE;
    }

    private LaneState lane0() {
        return lanes.getFirst();
    }

    /** Under per-layer selection every lane of the layer must hold the same positions. */
    private void checkAligned() {
        if (!perLayer) return;
        List<LaneState.Entry> a = lane0().entries;
        for (LaneState l : lanes) {
            if (l.entries.size() != a.size()) throw new InterpreterException("per-layer selection over lanes of different lengths (layer " + layer + ")");
            for (int i = 0; i < a.size(); i++) {
                if (l.entries.get(i).pos != a.get(i).pos) throw new InterpreterException("per-layer selection over lanes holding different positions");
            }
        }
    }

    private int[] dims(int... d) {
        if (!perLayer) return d;
        int[] r = new int[d.length + 1];
        r[0] = lanes.size();
        System.arraycopy(d, 0, r, 1, d.length);
        return r;
    }

    // ---------------------------------------------------------------- signals

    Object signal(Signal name) {
        switch (name) {
            case LEN -> {
                return Tensor.scalar(Ty.Elem.INT, lane0().size());
            }
            case CONTEXT -> {
                return Tensor.scalar(Ty.Elem.INT, context);
            }
            case STEP -> {
                return Tensor.scalar(Ty.Elem.INT, decodeStep);
            }
            case LAYER -> {
                return Tensor.scalar(Ty.Elem.INT, layer);
            }
            case HEAD -> {
                return Tensor.scalar(Ty.Elem.INT, lane0().kvHead);
            }
            case LAYERS -> {
                return Tensor.scalar(Ty.Elem.INT, shape.layers());
            }
            case HEADS -> {
                return Tensor.scalar(Ty.Elem.INT, shape.kvHeads());
            }
            case GROUP -> {
                return Tensor.scalar(Ty.Elem.INT, shape.group());
            }
            case HEAD_DIM -> {
                return Tensor.scalar(Ty.Elem.INT, shape.headDim());
            }
            case CHANNEL -> {
                double[] c = new double[shape.headDim()];
                for (int x = 0; x < c.length; x++) c[x] = x;
                return new Tensor(Ty.Elem.INT, List.of(Axis.CHANNEL), new int[] {c.length}, c);
            }
            default -> { }
        }
        checkAligned();
        int n = lane0().size(), d = shape.headDim(), g = shape.group();
        return switch (name) {
            case K, V -> {
                double[] data = new double[lanes.size() * n * d];
                int o = 0;
                for (LaneState l : lanes) {
                    for (LaneState.Entry e : l.entries) for (float x : name == Signal.K ? e.k : e.v) data[o++] = x;
                }
                yield new Tensor(Ty.Elem.FLOAT, name.axes(perLayer), dims(n, d), data);
            }
            case POS, AGE, INDEX -> {
                double[] data = new double[lanes.size() * n];
                int o = 0;
                for (LaneState l : lanes) {
                    for (int j = 0; j < l.entries.size(); j++) {
                        LaneState.Entry e = l.entries.get(j);
                        data[o++] = name == Signal.POS ? e.pos : name == Signal.INDEX ? j : decodeStep - e.addedAtStep;
                    }
                }
                yield new Tensor(Ty.Elem.INT, name.axes(perLayer), dims(n), data);
            }
            case Q -> {
                double[] data = new double[lanes.size() * observed.length * g * d];
                int o = 0;
                for (LaneState l : lanes) {
                    for (int qp : observed) {
                        for (int gi = 0; gi < g; gi++) {
                            float[] q = trace.query(layer, qp, l.kvHead * g + gi);
                            if (rope != null && !cachePositions()) {
                                q = q.clone();
                                rope.rotate(q, 0, q.length, qp);
                            }
                            for (float x : q) data[o++] = x;
                        }
                    }
                }
                yield new Tensor(Ty.Elem.FLOAT, name.axes(perLayer), dims(observed.length, g, d), data);
            }
            case ATTN, LOGITS -> attentionTensor(name == Signal.ATTN, observed);
            case PROMPT_ATTN -> attentionTensor(true, queryPositions);
            case QPOS -> {
                double[] data = new double[lanes.size() * observed.length];
                int o = 0;
                for (int li = 0; li < lanes.size(); li++) for (int qp : observed) data[o++] = qp;
                yield new Tensor(Ty.Elem.INT, name.axes(perLayer), dims(observed.length), data);
            }
            default -> throw new InterpreterException("a policy cannot read " + name.word());
        };
    }

    /** [query, group, token] over {@code rows}: the observed queries (all of the event's when none are declared). */
    private Tensor attentionTensor(boolean probabilities, int[] rows) {
        computeAttention();
        int n = lane0().size(), g = shape.group();
        double[] data = new double[lanes.size() * rows.length * g * n];
        int o = 0;
        for (int li = 0; li < lanes.size(); li++) {
            Map<LaneState.Entry, double[]> m = (probabilities ? probs : logits).get(li);
            for (int qi = 0; qi < rows.length; qi++) {
                int row = indexOf(queryPositions, rows[qi]);
                for (int gi = 0; gi < g; gi++) {
                    for (LaneState.Entry e : lanes.get(li).entries) {
                        double[] col = m.get(e);
                        data[o++] = col == null ? 0 : col[row * g + gi];
                    }
                }
            }
        }
        return new Tensor(Ty.Elem.FLOAT, (probabilities ? Signal.ATTN : Signal.LOGITS).axes(perLayer), dims(rows.length, g, n), data);
    }

    private static int indexOf(int[] a, int v) {
        for (int i = 0; i < a.length; i++) if (a[i] == v) return i;
        throw new IllegalStateException("observed query " + v + " is not among the event's");
    }

    /** Computes this event's attention for every lane (once), over the attend set when one is given. */
    void computeAttention() {
        if (!probs.isEmpty()) return;
        for (LaneState l : lanes) {
            Map<LaneState.Entry, double[]> p = new IdentityHashMap<>(), lg = new IdentityHashMap<>();
            BitSet[] allowed = allowed(lanes.indexOf(l));
            double[][][] r = variant.attend(trace, layer, l, queryPositions, allowed, rope, cachePositions());
            for (int j = 0; j < l.entries.size(); j++) {
                double[] pc = new double[queryPositions.length * shape.group()], lc = new double[pc.length];
                for (int i = 0; i < pc.length; i++) {
                    pc[i] = r[0][i][j];
                    lc[i] = r[1][i][j];
                }
                p.put(l.entries.get(j), pc);
                lg.put(l.entries.get(j), lc);
            }
            probs.add(p);
            logits.add(lg);
        }
    }

    /**
     * The entries lane {@code li}'s attention reads now: null (all), one set, or one per query head of the group
     * (an attend set per query head).
     */
    BitSet[] allowed(int li) {
        if (attend == null) return null;
        LaneState l = lanes.get(li);
        List<Set<LaneState.Entry>> sets = attendHeads == null ? List.of(attend.get(li)) : attendHeads.get(li);
        BitSet[] out = new BitSet[sets.size()];
        for (int h = 0; h < out.length; h++) {
            out[h] = new BitSet();
            for (int j = 0; j < l.entries.size(); j++) if (sets.get(h).contains(l.entries.get(j))) out[h].set(j);
        }
        return out;
    }

    /** Records, per lane, the attention output of the event's last query for each query head of the group. */
    void recordOutputs() {
        int g = shape.group(), d = shape.headDim();
        int[] lastQuery = {queryPositions[queryPositions.length - 1]};
        for (int li = 0; li < lanes.size(); li++) {
            LaneState l = lanes.get(li);
            BitSet[] allowed = allowed(li);
            double[][] p = variant.attend(trace, layer, l, lastQuery, allowed, rope, cachePositions())[0];
            double[] out = new double[g * d];
            for (int j = 0; j < l.entries.size(); j++) {
                LaneState.Entry e = l.entries.get(j);
                for (int gi = 0; gi < g; gi++) {
                    double w = p[gi][j];
                    if (w == 0) continue;
                    for (int c = 0; c < d; c++) out[gi * d + c] += w * e.v[c];
                }
            }
            outputs.put(l.kvHead, out);
            if (attend != null) {
                Set<LaneState.Entry> chosen = attend.get(li);
                attendedPositions.put(l.kvHead, l.entries.stream().filter(chosen::contains).mapToInt(e -> e.pos).toArray());
                if (attendHeads != null) {
                    int[][] each = new int[attendHeads.get(li).size()][];
                    for (int gi = 0; gi < each.length; gi++) each[gi] = l.entries.stream().filter(attendHeads.get(li).get(gi)::contains).mapToInt(e -> e.pos).toArray();
                    attendedHeadPositions.put(l.kvHead, each);
                }
            }
        }
    }

    // ---------------------------------------------------------------- state

    /** The KV heads of the event's lanes. */
    int[] kvHeads() {
        int[] heads = new int[lanes.size()];
        for (int i = 0; i < heads.length; i++) heads[i] = lanes.get(i).kvHead;
        return heads;
    }

    /** The text positions of the first lane's entries (-1 for the compensation entry), for a state over tokens. */
    private int[] positions(PolicyIr.State s) {
        if (!s.overTokens()) return null;
        List<LaneState.Entry> es = lane0().entries;
        int[] p = new int[es.size()];
        for (int i = 0; i < p.length; i++) p[i] = es.get(i).compensation ? -1 : es.get(i).pos;
        return p;
    }

    /** A statistic over a model state's cells ({@link dev.kvpc.ir.Op.ModelStat}), by the runtime's one rule. */
    Tensor modelStat(dev.kvpc.ir.Op.CellStat stat, String name) {
        return Tensor.scalar(Ty.Elem.FLOAT, model.stat(stat, state(name), layer, lane0().kvHead));
    }

    Tensor readState(String name) {
        PolicyIr.State s = state(name);
        List<Axis> extra = s.cellAxes();
        int per = 1;
        for (Axis a : extra) per *= extent(a);
        switch (s.scope()) {
            case MODEL -> {
                double[] data = model.read(s, layer, kvHeads(), perLayer, positions(s));
                List<Axis> axes = s.axes(perLayer);
                return new Tensor(s.type().elem(), axes, axes.isEmpty() ? new int[0] : new int[] {data.length}, data);
            }
            case TOKEN -> {
                checkAligned();
                int n = lane0().size();
                double[] data = new double[lanes.size() * n * per];
                int o = 0;
                for (LaneState l : lanes) {
                    for (LaneState.Entry e : l.entries) {
                        double[] v = e.state.get(name);
                        for (int i = 0; i < per; i++) data[o++] = v == null ? 0 : v[i];
                    }
                }
                List<Axis> axes = s.axes(perLayer);
                int[] dd = new int[axes.size()];
                int k = 0;
                if (perLayer) dd[k++] = lanes.size();
                dd[k++] = n;
                for (Axis a : extra) dd[k++] = extent(a);
                return new Tensor(s.type().elem(), axes, dd, data);
            }
            case LANE -> {
                Tensor t = lane0().laneState.get(name);
                if (t != null && !perLayer) return t;
                if (perLayer) {
                    double[] data = new double[lanes.size() * per];
                    for (int li = 0; li < lanes.size(); li++) {
                        Tensor x = lanes.get(li).laneState.get(name);
                        if (x != null) System.arraycopy(x.data, 0, data, li * per, per);
                    }
                    List<Axis> axes = s.axes(true);
                    int[] dd = new int[axes.size()];
                    dd[0] = lanes.size();
                    for (int i = 0; i < extra.size(); i++) dd[i + 1] = extent(extra.get(i));
                    return new Tensor(s.type().elem(), axes, dd, data);
                }
                int[] dd = new int[extra.size()];
                for (int i = 0; i < extra.size(); i++) dd[i] = extent(extra.get(i));
                return new Tensor(s.type().elem(), extra, dd, new double[per]);
            }
            case PAGE -> {
                return pageState(s);
            }
        }
        throw new IllegalStateException();
    }

    int extent(Axis a) {
        return switch (a) {
            case CHANNEL -> shape.headDim();
            case GROUP -> shape.group();
            case QUERY -> observed.length;
            case HEAD -> lanes.size();
            default -> throw new InterpreterException("state axis " + a.word() + " has no fixed size");
        };
    }

    PolicyIr.State state(String name) {
        for (PolicyIr.State s : policy.states()) if (s.name().equals(name)) return s;
        throw new InterpreterException("unknown state " + name);
    }

    /** Page size of the lane: that of its (first) per-page state. */
    int pageSize() {
        for (PolicyIr.State s : policy.states()) {
            if (s.scope() == PolicyIr.StateScope.PAGE) return (int) Math.max(1, Interpreter.constant(s.pageSize()));
        }
        throw new InterpreterException("pages(...) in a policy without per-page state");
    }

    /** A per-page state is its init reduced over each page's entries (recomputed at read: obviously right). */
    private Tensor pageState(PolicyIr.State s) {
        Tensor cached = pageStateCache.get(s.name());
        if (cached != null) return cached;
        if (perLayer) {
            // each lane's pages, stacked along head (lanes are aligned, so they have as many pages)
            checkAligned();
            List<Tensor> per = new ArrayList<>();
            for (LaneState l : lanes) {
                ExecContext one = new ExecContext(policy, List.of(l), false, shape, trace, layer, queryPositions, observed, decodeStep, context, variant);
                one.rope = rope;
                per.add(one.lanePageState(s));
            }
            Tensor first = per.getFirst();
            double[] data = new double[first.data.length * per.size()];
            for (int i = 0; i < per.size(); i++) System.arraycopy(per.get(i).data, 0, data, i * first.data.length, first.data.length);
            List<Axis> axes = new ArrayList<>();
            axes.add(Axis.HEAD);
            axes.addAll(first.axes);
            int[] dd = new int[first.dims.length + 1];
            dd[0] = per.size();
            System.arraycopy(first.dims, 0, dd, 1, first.dims.length);
            Tensor r = new Tensor(s.type().elem(), axes, dd, data);
            pageStateCache.put(s.name(), r);
            return r;
        }
        Tensor r = lanePageState(s);
        pageStateCache.put(s.name(), r);
        return r;
    }

    private Tensor lanePageState(PolicyIr.State s) {
        int size = pageSize();
        LaneState l = lane0();
        List<LaneState.Entry> regular = new ArrayList<>();
        for (LaneState.Entry e : l.entries) if (!e.compensation) regular.add(e);
        int pages = (regular.size() + size - 1) / size;
        List<Tensor> perPage = new ArrayList<>();
        for (int p = 0; p < pages; p++) {
            LaneState view = new LaneState(l.layer, l.kvHead);
            view.entries.addAll(regular.subList(p * size, Math.min(regular.size(), (p + 1) * size)));
            ExecContext sub = new ExecContext(policy, List.of(view), false, shape, trace, layer, queryPositions, observed, decodeStep, context, variant);
            sub.rope = rope;
            Object v = Interpreter.evaluate(s.init(), sub);
            perPage.add((Tensor) v);
        }
        List<Axis> extra = s.cellAxes();
        int per = 1;
        for (Axis a : extra) per *= extent(a);
        double[] data = new double[pages * per];
        for (int p = 0; p < pages; p++) {
            Tensor t = perPage.get(p);
            if (t.data.length != per) throw new InterpreterException("page state " + s.name() + " init has " + t.data.length + " values, expected " + per);
            System.arraycopy(t.data, 0, data, p * per, per);
        }
        List<Axis> axes = s.axes(false);
        int[] dd = new int[axes.size()];
        dd[0] = pages;
        for (int i = 0; i < extra.size(); i++) dd[i + 1] = extent(extra.get(i));
        return new Tensor(s.type().elem(), axes, dd, data);
    }

    void writeState(String name, Instr.Assign op, Tensor value) {
        PolicyIr.State s = state(name);
        if (s.scope() == PolicyIr.StateScope.PAGE) throw new InterpreterException("writes to per-page state are not supported");
        Tensor current = readState(name);
        Tensor next = switch (op) {
            case SET -> value;
            case ADD -> Tensor.map2(current, value, s.type().elem(), Double::sum);
            case SUB -> Tensor.map2(current, value, s.type().elem(), (a, b) -> a - b);
            case MUL -> Tensor.map2(current, value, s.type().elem(), (a, b) -> a * b);
        };
        // broadcast to the state's shape and convert to its element kind
        Tensor shaped = Tensor.map2(next, current, s.type().elem(), (a, b) -> a);
        if (!shaped.axes.equals(current.axes)) throw new InterpreterException("value for state " + name + " has axes " + next.axes);
        double[] d = shaped.data.clone();
        for (int i = 0; i < d.length; i++) d[i] = s.type().elem().stored(d[i]);
        if (s.scope() == PolicyIr.StateScope.MODEL) {
            model.write(s, layer, kvHeads(), perLayer, positions(s), d);
            return;
        }
        if (s.scope() == PolicyIr.StateScope.LANE) {
            int per = d.length / lanes.size();
            for (int li = 0; li < lanes.size(); li++) {
                List<Axis> axes = new ArrayList<>(shaped.axes);
                axes.remove(Axis.HEAD);
                int[] dd = new int[axes.size()];
                for (int i = 0; i < axes.size(); i++) dd[i] = shaped.dim(axes.get(i));
                lanes.get(li).laneState.put(name, new Tensor(s.type().elem(), axes, dd, Arrays.copyOfRange(d, li * per, (li + 1) * per)));
            }
            return;
        }
        int n = lane0().size();
        int per = d.length / Math.max(1, lanes.size() * n);
        int o = 0;
        for (LaneState l : lanes) {
            for (LaneState.Entry e : l.entries) {
                e.state.put(name, Arrays.copyOfRange(d, o, o + per));
                o += per;
            }
        }
        pageStateCache.clear();
    }

    // ---------------------------------------------------------------- values over entries that have since changed

    /** The entries of each lane now. */
    LaneState.Entry[][] basisNow() {
        LaneState.Entry[][] b = new LaneState.Entry[lanes.size()][];
        for (int i = 0; i < lanes.size(); i++) b[i] = lanes.get(i).entries.toArray(LaneState.Entry[]::new);
        return b;
    }

    private static boolean same(LaneState.Entry[][] a, LaneState.Entry[][] b) {
        if (a.length != b.length) return false;
        for (int i = 0; i < a.length; i++) {
            if (a[i].length != b[i].length) return false;
            for (int j = 0; j < a[i].length; j++) if (a[i][j] != b[i][j]) return false;
        }
        return true;
    }

    /** Marks a freshly computed value as indexing the entries as they are now. */
    Object stamp(Object v) {
        if (v instanceof Tensor t && t.axes.contains(Axis.TOKEN) && t.basis == null) t.basis = basisNow();
        if (v instanceof TokenSet s && s.domain() == Axis.TOKEN && s.basis() == null) return s.withBasis(basisNow());
        return v;
    }

    /**
     * A value computed before a keep, evict or merge changed the lane, re-indexed by entry to the lane as it is now:
     * entries that left are dropped, entries that arrived (a compensation entry) are absent from sets and NaN in
     * scores. A value is a snapshot of the entries it was computed from.
     */
    Object rebase(Object v) {
        LaneState.Entry[][] now = basisNow();
        if (v instanceof TokenSet s && s.basis() != null && !same(s.basis(), now)) {
            BitSet[] out = new BitSet[s.heads()];
            for (int h = 0; h < out.length; h++) {
                int li = Math.min(h, now.length - 1);
                Map<LaneState.Entry, Integer> old = index(s.basis()[Math.min(h, s.basis().length - 1)]);
                out[h] = new BitSet();
                BitSet bits = s.forHead(h);
                for (int j = 0; j < now[li].length; j++) {
                    Integer o = old.get(now[li][j]);
                    if (o != null && bits.get(o)) out[h].set(j);
                }
            }
            return new TokenSet(s.domain(), out, s.compensation(), now, s.queryHeads());
        }
        if (v instanceof Tensor t && t.basis != null && !same(t.basis, now)) {
            double[][] sl = t.slices(Axis.TOKEN);
            int heads = t.axes.contains(Axis.HEAD) ? t.dim(Axis.HEAD) : 1;
            int per = sl.length / Math.max(1, heads);
            int n = now[0].length;
            double[][] out = new double[sl.length][n];
            for (int i = 0; i < sl.length; i++) {
                int h = per == 0 ? 0 : i / per;
                Map<LaneState.Entry, Integer> old = index(t.basis[Math.min(h, t.basis.length - 1)]);
                LaneState.Entry[] cur = now[Math.min(h, now.length - 1)];
                for (int j = 0; j < n; j++) {
                    Integer o = j < cur.length ? old.get(cur[j]) : null;
                    out[i][j] = o == null ? Double.NaN : sl[i][o];
                }
            }
            int[] dims = t.dims.clone();
            dims[t.axes.indexOf(Axis.TOKEN)] = n;
            Tensor shaped = new Tensor(t.elem, t.axes, dims, new double[t.data.length / Math.max(1, t.dim(Axis.TOKEN)) * n]);
            Tensor r = shaped.fromSlices(Axis.TOKEN, out, t.elem);
            r.basis = now;
            return r;
        }
        return v;
    }

    private static Map<LaneState.Entry, Integer> index(LaneState.Entry[] es) {
        Map<LaneState.Entry, Integer> m = new IdentityHashMap<>();
        for (int i = 0; i < es.length; i++) m.put(es[i], i);
        return m;
    }

    // ---------------------------------------------------------------- sets and effects

    /** 'attend S': the entries of S, as they are now, are what this step's attention reads. */
    void attend(TokenSet s) {
        List<Set<LaneState.Entry>> out = new ArrayList<>();
        List<List<Set<LaneState.Entry>>> heads = s.queryHeads() ? new ArrayList<>() : null;
        for (int li = 0; li < lanes.size(); li++) {
            LaneState l = lanes.get(li);
            if (heads != null) {
                // one set per query head; the lane attends their union
                List<Set<LaneState.Entry>> each = new ArrayList<>();
                Set<LaneState.Entry> any = Collections.newSetFromMap(new IdentityHashMap<>());
                for (int gi = 0; gi < s.heads(); gi++) {
                    each.add(entries(l, s.forHead(gi)));
                    any.addAll(each.getLast());
                }
                heads.add(each);
                out.add(any);
                continue;
            }
            out.add(entries(l, s.forHead(Math.min(li, s.heads() - 1))));
        }
        attend = out;
        attendHeads = heads;
    }

    private static Set<LaneState.Entry> entries(LaneState l, BitSet b) {
        Set<LaneState.Entry> chosen = Collections.newSetFromMap(new IdentityHashMap<>());
        for (int i = b.nextSetBit(0); i >= 0 && i < l.size(); i = b.nextSetBit(i + 1)) chosen.add(l.entries.get(i));
        return chosen;
    }

    BitSet regularEntries(LaneState l) {
        BitSet b = new BitSet();
        for (int i = 0; i < l.entries.size(); i++) if (!l.entries.get(i).compensation) b.set(i);
        return b;
    }

    /** first(n) / last(n) of each lane (per lane under per-layer selection: lanes may differ in length). */
    TokenSet range(Op.End end, long count) {
        BitSet[] out = new BitSet[lanes.size()];
        for (int li = 0; li < lanes.size(); li++) {
            BitSet reg = regularEntries(lanes.get(li));
            int total = reg.cardinality();
            int n = (int) Math.max(0, Math.min(count, total));
            out[li] = new BitSet();
            int seen = 0;
            for (int i = reg.nextSetBit(0); i >= 0; i = reg.nextSetBit(i + 1)) {
                boolean take = end == Op.End.FIRST ? seen < n : seen >= total - n;
                if (take) out[li].set(i);
                seen++;
            }
        }
        return new TokenSet(Axis.TOKEN, out, false);
    }

    TokenSet all() {
        BitSet[] out = new BitSet[lanes.size()];
        for (int li = 0; li < lanes.size(); li++) {
            out[li] = new BitSet();
            out[li].set(0, lanes.get(li).size());
        }
        return new TokenSet(Axis.TOKEN, out, true);
    }

    TokenSet compensation() {
        BitSet[] out = new BitSet[lanes.size()];
        for (int li = 0; li < lanes.size(); li++) {
            LaneState l = lanes.get(li);
            out[li] = new BitSet();
            for (int i = 0; i < l.entries.size(); i++) if (l.entries.get(i).compensation) out[li].set(i);
        }
        return new TokenSet(Axis.TOKEN, out, true);
    }

    TokenSet pages(TokenSet pageSet) {
        int size = pageSize();
        BitSet[] out = new BitSet[pageSet.heads()];
        for (int h = 0; h < out.length; h++) {
            LaneState l = lanes.get(Math.min(h, lanes.size() - 1));
            out[h] = new BitSet();
            int regular = 0;
            for (int i = 0; i < l.entries.size(); i++) {
                if (l.entries.get(i).compensation) continue;
                if (pageSet.forHead(h).get(regular / size)) out[h].set(i);
                regular++;
            }
        }
        return new TokenSet(Axis.TOKEN, out, false);
    }

    void keep(TokenSet s) {
        pageStateCache.clear();
        for (int li = 0; li < lanes.size(); li++) {
            LaneState l = lanes.get(li);
            BitSet b = (BitSet) s.forHead(li).clone();
            if (!s.compensation()) {
                for (int i = 0; i < l.entries.size(); i++) if (l.entries.get(i).compensation) b.clear(i);
            }
            l.retain(b);
        }
    }

    void evict(TokenSet s) {
        pageStateCache.clear();
        for (int li = 0; li < lanes.size(); li++) {
            LaneState l = lanes.get(li);
            BitSet b = new BitSet();
            b.set(0, l.size());
            b.andNot(s.forHead(li));
            l.retain(b);
        }
    }

    /**
     * Folds each source entry not in {@code dest} into its most similar destination entry (cosine of keys or values;
     * nearest position; ties to the later position), or all sources into the compensation entry. Weighted means of
     * keys and values by (count x weight); counts add up.
     */
    void merge(TokenSet source, TokenSet dest, Instr.MergeBy by, Tensor weight) {
        pageStateCache.clear();
        for (int li = 0; li < lanes.size(); li++) {
            LaneState l = lanes.get(li);
            BitSet src = (BitSet) source.forHead(li).clone();
            BitSet dst = dest.forHead(li);
            src.andNot(dst);
            for (int i = 0; i < l.size(); i++) if (l.entries.get(i).compensation) src.clear(i);
            if (src.isEmpty()) continue;
            double[] w = new double[l.size()];
            // the weight was computed over the entries of that moment; a compensation entry created since sits last
            int wn = weight == null ? 0 : weight.dim(Axis.TOKEN);
            for (int i = 0; i < w.length; i++) {
                w[i] = weight == null || i >= wn ? 1 : Lane.mergeWeight(weight.data[(perLayer && weight.axes.contains(Axis.HEAD) ? li * wn : 0) + i]);
            }
            if (dest.compensation() && dst.isEmpty() || dest.compensation() && onlyCompensation(l, dst)) {
                LaneState.Entry comp = l.compensationEntry();
                if (comp == null) {
                    int first = src.nextSetBit(0);
                    LaneState.Entry f = l.entries.get(first);
                    comp = new LaneState.Entry(-1, f.addedAtStep, new float[f.k.length], new float[f.v.length], true);
                    comp.count = 0;
                    l.entries.add(comp);
                }
                for (int i = src.nextSetBit(0); i >= 0; i = src.nextSetBit(i + 1)) fold(comp, l.entries.get(i), 1, w[i]);
                continue;
            }
            for (int i = src.nextSetBit(0); i >= 0; i = src.nextSetBit(i + 1)) {
                LaneState.Entry s = l.entries.get(i);
                int best = -1;
                double bestScore = Double.NEGATIVE_INFINITY;
                for (int j = dst.nextSetBit(0); j >= 0; j = dst.nextSetBit(j + 1)) {
                    LaneState.Entry t = l.entries.get(j);
                    double score = switch (by) {
                        case NEAREST -> -Math.abs(t.pos - s.pos);
                        case COSINE_V -> Lane.cosine(s.v, t.v);
                        default -> Lane.cosine(s.k, t.k);
                    };
                    if (score >= bestScore) {
                        bestScore = score;
                        best = j;
                    }
                }
                if (best >= 0) fold(l.entries.get(best), s, w[best], w[i]);
            }
        }
    }

    private static boolean onlyCompensation(LaneState l, BitSet b) {
        for (int i = b.nextSetBit(0); i >= 0; i = b.nextSetBit(i + 1)) if (!l.entries.get(i).compensation) return false;
        return true;
    }

    private static void fold(LaneState.Entry into, LaneState.Entry from, double wInto, double wFrom) {
        Lane.mergeRow(into.k, from.k, into.count, from.count, wInto, wFrom);
        Lane.mergeRow(into.v, from.v, into.count, from.count, wInto, wFrom);
        into.count += from.count;
        requantise(into);
    }

    /**
     * A merged entry is stored again at its format: a float format rounds, a per-token integer format quantises its
     * row anew; an entry that was part of a per-channel block leaves the block and returns to the host precision.
     */
    private static void requantise(LaneState.Entry e) {
        for (int part = 0; part < 2; part++) {
            Instr.Format f = part == 0 ? e.kFormat : e.vFormat;
            if (f == null) continue;
            float[] x = part == 0 ? e.k : e.v;
            boolean perChannel = part == 0 ? e.kPerChannel : e.vPerChannel;
            int bits = part == 0 ? e.kBits : e.vBits, group = part == 0 ? e.kGroup : e.vGroup;
            switch (f) {
                case F32 -> { }
                case F16 -> { for (int c = 0; c < x.length; c++) x[c] = Quant.f16(x[c]); }
                case BF16 -> { for (int c = 0; c < x.length; c++) x[c] = Quant.bf16(x[c]); }
                default -> {
                    if (perChannel) {
                        if (part == 0) { e.kFormat = null; e.kPerChannel = false; } else { e.vFormat = null; e.vPerChannel = false; }
                    } else {
                        int b = f == Instr.Format.INT ? bits : f.bits;
                        int g = group > 0 ? group : x.length;
                        for (int from = 0; from < x.length; from += g) Quant.group(x, from, Math.min(x.length, from + g), b);
                    }
                }
            }
        }
    }

    /**
     * A {@code store} with its scope: the entries it covers ({@link Instr.Scope#covered}, {@code set} null unless
     * for or except), remembered for a later {@code otherwise} of the event, then stored.
     */
    void store(Set<Instr.Part> parts, Instr.Format format, int bits, Instr.QuantAxis axis, int group, Instr.Scope scope, TokenSet set) {
        TokenSet all = all(), last = lastStoreScope == null ? null : (TokenSet) rebase(lastStoreScope);
        BitSet[] cov = new BitSet[lanes.size()];
        for (int h = 0; h < cov.length; h++) {
            cov[h] = scope.covered(all.forHead(h), set == null ? null : set.forHead(h), last == null ? null : last.forHead(h));
        }
        TokenSet covered = new TokenSet(Axis.TOKEN, cov, scope == Instr.Scope.ALL || scope == Instr.Scope.FOR && set.compensation());
        if (scope.remembered()) lastStoreScope = (TokenSet) stamp(covered);
        store(parts, format, bits, axis, group, covered);
    }

    /** Applies a storage rule to the entries it covers; entries already at that format are left as they are. */
    void store(Set<Instr.Part> parts, Instr.Format format, int bits, Instr.QuantAxis axis, int group, TokenSet covered) {
        for (int li = 0; li < lanes.size(); li++) {
            LaneState l = lanes.get(li);
            BitSet cov = covered.forHead(li);
            for (Instr.Part part : parts) {
                List<LaneState.Entry> targets = new ArrayList<>();
                for (int i = cov.nextSetBit(0); i >= 0; i = cov.nextSetBit(i + 1)) {
                    LaneState.Entry e = l.entries.get(i);
                    if (e.compensation) continue;
                    Instr.Format cur = part == Instr.Part.KEYS ? e.kFormat : e.vFormat;
                    int curBits = part == Instr.Part.KEYS ? e.kBits : e.vBits;
                    if (cur == format && curBits == bits) continue;
                    targets.add(e);
                }
                apply(part, format, bits, axis, group, targets);
            }
        }
        pageStateCache.clear();
    }

    private void apply(Instr.Part part, Instr.Format format, int bits, Instr.QuantAxis axis, int group, List<LaneState.Entry> targets) {
        int d = shape.headDim();
        if (format == Instr.Format.F32 || format == Instr.Format.F16 || format == Instr.Format.BF16) {
            for (LaneState.Entry e : targets) {
                float[] x = part == Instr.Part.KEYS ? e.k : e.v;
                for (int c = 0; c < d; c++) x[c] = format == Instr.Format.F16 ? Quant.f16(x[c]) : format == Instr.Format.BF16 ? Quant.bf16(x[c]) : x[c];
                mark(e, part, format, bits, false, 0);
            }
            return;
        }
        int b = format == Instr.Format.INT ? bits : format.bits;
        int g = group > 0 ? group : (axis == Instr.QuantAxis.TOKEN ? d : 32);
        if (axis == Instr.QuantAxis.TOKEN) {
            for (LaneState.Entry e : targets) {
                float[] x = part == Instr.Part.KEYS ? e.k : e.v;
                for (int from = 0; from < d; from += g) Quant.group(x, from, Math.min(d, from + g), b);
                mark(e, part, format, bits, false, g);
            }
            return;
        }
        // per channel: groups of g consecutive entries; only full groups are quantised
        int full = targets.size() / g * g;
        float[] col = new float[g];
        for (int start = 0; start < full; start += g) {
            for (int c = 0; c < d; c++) {
                for (int t = 0; t < g; t++) col[t] = (part == Instr.Part.KEYS ? targets.get(start + t).k : targets.get(start + t).v)[c];
                Quant.group(col, 0, g, b);
                for (int t = 0; t < g; t++) (part == Instr.Part.KEYS ? targets.get(start + t).k : targets.get(start + t).v)[c] = col[t];
            }
            for (int t = 0; t < g; t++) mark(targets.get(start + t), part, format, bits, true, g);
        }
    }

    private static void mark(LaneState.Entry e, Instr.Part part, Instr.Format f, int bits, boolean perChannel, int group) {
        if (part == Instr.Part.KEYS) {
            e.kFormat = f;
            e.kBits = bits;
            e.kPerChannel = perChannel;
            e.kGroup = group;
        } else {
            e.vFormat = f;
            e.vBits = bits;
            e.vPerChannel = perChannel;
            e.vGroup = group;
        }
    }
}
