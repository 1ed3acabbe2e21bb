package dev.kvpc.runtime.exec;

import dev.kvpc.ir.Axis;
import dev.kvpc.ir.Instr;
import dev.kvpc.ir.Op;
import dev.kvpc.ir.PolicyIr;
import dev.kvpc.ir.Runs;
import dev.kvpc.ir.Signal;
import dev.kvpc.ir.Ty;
import dev.kvpc.runtime.AttentionVariant;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.Rope;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.policy.LaneContext;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@link LaneContext} over the runtime's own lanes: signals are read where the lanes hold them (keys and
 * values at their stored precision, positions, per-token state columns), effects change the lanes in place (a keep
 * frees pages, a store re-encodes rows). Every rule is the reference interpreter's (docs/semantics.md), written
 * over lanes instead of its shadow entries: the differential tests hold the two to the same kept sets and outputs.
 * One view per kernel run; what lasts for the event (attention rows, the attend set, the last store's scope) is
 * in {@link EventState}.
 */
final class LaneView implements LaneContext {
    /** Both parts of an entry, without {@code values()}'s copy per call. */
    private static final Lane.Part[] PARTS = Lane.Part.values();

    /** One event of a group of lanes. */
    static final class EventState {
        final NativeRunner runner;
        final NativeRunner.ClassInfo info;
        final PolicyRunner.Step step;
        final int layer;
        final int[] kvHeads;
        final List<Lane> lanes;
        /** The observed queries' positions (all of the step's while the whole prompt's rows are computed). */
        int[] observed;
        final boolean perLayer, cache;
        final int d, g, heads;
        final Rope rope;
        /** Attention rows per lane over the observed queries, [q * g][entry], and the positions they index. */
        double[][][] probs, logits;
        int[][] rowPositions;
        /**
         * Per lane, the entries this step's attention may read (null: all), the lane's entries version when they were
         * chosen, and their positions (kept before an effect of the event changes the entries, else null).
         */
        BitSet[] attend;
        int[] attendVersions;
        int[][] attendPositions;
        /**
         * Per lane, per query head of its group, the positions of the entries that head reads (the compensation
         * entry as -1), sorted; null unless 'attend' took a set per query head (then {@link #attend} is their union).
         */
        int[][][] attendHeadPositions;
        /**
         * The scope of the event's last store that an {@code otherwise} reads, and the view that made it (its epochs
         * index the set; the entries do not change between the views of an event).
         */
        Sel lastStoreScope;
        LaneView lastStoreView;
        /** Whether column sums come from the kernel: then {@link #sums} (per lane, in lane order at attention) hold them. */
        boolean fusedSums;
        /** Whether the kernel's column sums serve the whole prompt's statistics ({@link Signal#PROMPT_ATTN}). */
        boolean promptSums;
        float[][] sums;
        /** The sequence's per model states of this class (null when it declares none). */
        ModelCells model;
        /** The text positions of the first lane's entries (-1 for the compensation entry), for a state over tokens. */
        int[] positions(PolicyIr.State s) {
            if (!s.overTokens()) return null;
            Lane l = lanes.getFirst();
            int[] p = new int[l.size()];
            for (int i = 0; i < p.length; i++) p[i] = l.isCompensation(i) ? -1 : l.position(i);
            return p;
        }
        /** Per lane, what became of its entries since the column sums were made (null: nothing yet). */
        SumTrail[] sumTrails;
        int[] sumVersions;
        /**
         * Per-page states as derived from the lanes now (cleared whenever entries, precisions or states change); made
         * when first needed, as most events of most policies read none.
         */
        private Map<String, double[]> pageCache;

        Map<String, double[]> pageCache() {
            if (pageCache == null) pageCache = new HashMap<>();
            return pageCache;
        }

        /** Forgets the per-page states derived so far. */
        void dropPageCache() {
            if (pageCache != null) pageCache.clear();
        }

        EventState(NativeRunner runner, NativeRunner.ClassInfo info, PolicyRunner.Step step, int layer, int[] kvHeads, List<Lane> lanes, int[] observed) {
            this.runner = runner;
            this.info = info;
            this.step = step;
            this.layer = layer;
            this.kvHeads = kvHeads;
            this.lanes = lanes;
            this.observed = observed;
            this.perLayer = info.policy().selection() == PolicyIr.Selection.LAYER;
            this.cache = info.policy().positions() == PolicyIr.Positions.CACHE;
            var shape = runner.program.shape();
            this.d = shape.headDim();
            this.g = shape.group();
            this.heads = shape.heads();
            this.rope = step.rope();
        }

        int extent(Axis a) {
            return switch (a) {
                case CHANNEL -> d;
                case GROUP -> g;
                case QUERY -> observed.length;
                case HEAD -> lanes.size();
                case LAYER -> runner.program.shape().layers();
                case TOKEN -> lanes.getFirst().size();
                case PAGE -> pages(lanes.getFirst());
            };
        }

        /** Page size of the lane class: that of its (first) per-page state. */
        int pageSize() {
            for (PolicyIr.State s : info.policy().states()) {
                if (s.scope() == PolicyIr.StateScope.PAGE) return (int) Math.max(1, NativeRunner.constant(s.pageSize()));
            }
            throw new IllegalStateException("pages(...) in a policy without per-page state");
        }

        int pages(Lane l) {
            int size = pageSize();
            return (regular(l) + size - 1) / size;
        }

        /** How many regular entries a lane holds: they are its first ones (a compensation entry, if any, is its last). */
        static int regular(Lane l) {
            int n = l.size();
            return n > 0 && l.isCompensation(n - 1) ? n - 1 : n;
        }

        /** Whether entries {@code from..to} of a lane hold exactly {@code positions}. */
        private static boolean samePositions(int[] positions, Lane l, int from, int to) {
            if (positions.length != to - from) return false;
            for (int j = 0; j < positions.length; j++) if (positions[j] != l.position(from + j)) return false;
            return true;
        }

        /**
         * Lane {@code li}'s per-page state {@code s}: its initialiser run over each page's entries, [page][width].
         * A state that depends only on rows and positions is cached per page while the page's entries and rows stay
         * as they were: the array returned is then the lane's own, kept from event to event with only changed pages
         * rewritten (callers read it, never write it), and the pages changed since the lane's published copy are
         * noted for {@link #publishPageStates}. An array handed to compiled code ({@code handOut}) is not rewritten
         * during the event: a later change in the same event goes to a copy, as a value bound before an effect keeps
         * what it held.
         */
        double[] lanePageState(PolicyIr.State s, int li, boolean handOut) {
            Lane l = lanes.get(li);
            int size = pageSize(), per = stateWidth(s);
            int regular = regular(l);
            int pages = (regular + size - 1) / size;
            Integer init = info.inits().get(s.name());
            if (init == null) return new double[pages * per];
            if (!info.pageCacheable().contains(s.name())) {
                double[] out = new double[pages * per];
                for (int p = 0; p < pages; p++) System.arraycopy(pageValue(s, init, li, l, p * size, Math.min(regular, (p + 1) * size), per), 0, out, p * per, per);
                NativeRunner.PageStates ps = runner.pageStates(l, s.name());
                ps.reshaped = true;
                return out;
            }
            long version = l.rowsVersion();
            NativeRunner.PageStates ps = runner.pageStates(l, s.name());
            if (ps.values.length != pages * per) {
                ps.values = Arrays.copyOf(ps.values, pages * per);
                ps.reshaped = true;
                ps.handedOut = false;
            }
            while (ps.pages.size() > pages) ps.pages.removeLast();
            // full pages of entries there at the last check and still there, when no entry has moved and no row changed
            // since, hold what they held then: only the pages after them are checked (a decode step's last page)
            int trusted = ps.checkedOrder == l.orderVersion() && ps.checkedRows == version ? Math.min(Math.min(ps.checkedRegular, regular) / size, ps.pages.size()) : 0;
            for (int p = trusted; p < pages; p++) {
                int from = p * size, to = Math.min(regular, (p + 1) * size);
                if (p < ps.pages.size()) {
                    NativeRunner.PageValue c = ps.pages.get(p);
                    if (c.version() == version && samePositions(c.positions(), l, from, to)) continue;
                }
                int[] positions = Arrays.copyOfRange(l.positionTable(), from, to);
                double[] v = pageValue(s, init, li, l, from, to, per);
                if (ps.handedOut) {
                    ps.values = ps.values.clone();
                    ps.handedOut = false;
                }
                while (ps.pages.size() <= p) ps.pages.add(new NativeRunner.PageValue(new int[0], -1));
                ps.pages.set(p, new NativeRunner.PageValue(positions, version));
                System.arraycopy(v, 0, ps.values, p * per, per);
                ps.unpublished.set(p);
            }
            ps.checkedOrder = l.orderVersion();
            ps.checkedRows = version;
            ps.checkedRegular = regular;
            ps.handedOut |= handOut;
            return ps.values;
        }

        /** The initialiser of a per-page state run over entries {@code from..to} of a lane. */
        private double[] pageValue(PolicyIr.State s, int init, int li, Lane l, int from, int to, int per) {
            int[] entries = new int[to - from];
            for (int j = 0; j < entries.length; j++) entries[j] = from + j;
            double[] v = info.code().run(init, new PageView(this, li, entries));
            if (v.length != per) throw new IllegalStateException("page state " + s.name() + " init has " + v.length + " values, expected " + per);
            return v;
        }

        /**
         * The per-page states of every lane, kept with the runtime's lanes (so measured bytes count them): the pages
         * changed since the lane's copy are written into it, or the whole state when its pages changed in number.
         */
        void publishPageStates() {
            for (PolicyIr.State s : info.policy().states()) {
                if (s.scope() != PolicyIr.StateScope.PAGE) continue;
                int per = stateWidth(s);
                for (int li = 0; li < lanes.size(); li++) {
                    Lane l = lanes.get(li);
                    double[] v = lanePageState(s, li, false);
                    NativeRunner.PageStates ps = runner.pageStates(l, s.name());
                    // the event ends: what compiled code was handed is no longer read
                    ps.handedOut = false;
                    if (v.length == 0) continue;
                    if (!ps.reshaped && l.hasPageState(s.name()) && l.pageState(s.name()).length == v.length) {
                        float[] f = l.pageState(s.name());
                        for (int p = ps.unpublished.nextSetBit(0); p >= 0 && p * per < v.length; p = ps.unpublished.nextSetBit(p + 1)) {
                            for (int i = p * per; i < (p + 1) * per; i++) f[i] = (float) v[i];
                        }
                    } else {
                        float[] f = new float[v.length];
                        for (int i = 0; i < v.length; i++) f[i] = (float) v[i];
                        l.setPageState(s.name(), pageSize(), per, f);
                    }
                    ps.unpublished.clear();
                    ps.reshaped = false;
                }
            }
        }

        int stateWidth(PolicyIr.State s) {
            int per = 1;
            for (Axis a : s.cellAxes()) per *= extent(a);
            return per;
        }

        /** A state value as its element kind stores it ({@link Ty.Elem#stored}), in the lane's float column. */
        float storeValue(PolicyIr.State s, double x) {
            return (float) s.type().elem().stored(x);
        }

        void checkAligned() {
            if (!perLayer) return;
            Lane a = lanes.getFirst();
            int n = a.size();
            for (Lane l : lanes) {
                if (l == a) continue;
                if (l.size() != n) throw new IllegalStateException("per-layer selection over lanes of different lengths (layer " + layer + ")");
                if (!Arrays.equals(l.positionTable(), 0, n, a.positionTable(), 0, n)) {
                    throw new IllegalStateException("per-layer selection over lanes holding different positions");
                }
            }
        }

        float[] query(int position, int head) {
            int first = step.positions()[0];
            int off = ((position - first) * heads + head) * d;
            return Arrays.copyOfRange(step.queries(), off, off + d);
        }

        /**
         * Called before an effect of the event changes which entries the lanes hold ({@code kept}: a retain's kept
         * sets, or null for another effect): the attend set's positions are taken, and the column sums' trail records
         * the change, so that sums read after it find their entries.
         */
        void beforeEntriesChange(BitSet[] kept) {
            if (attend != null) {
                if (attendPositions == null) attendPositions = new int[lanes.size()][];
                for (int li = 0; li < lanes.size(); li++) {
                    Lane l = lanes.get(li);
                    if (attendPositions[li] == null && attendVersions[li] == l.entriesVersion()) {
                        attendPositions[li] = attend[li].stream().map(l::position).sorted().toArray();
                    }
                }
            }
            if (sums == null) return;
            for (int li = 0; li < lanes.size(); li++) {
                SumTrail t = sumTrails[li];
                if (t == null && !sumsCurrent(li)) continue;
                if (t == null) t = sumTrails[li] = new SumTrail();
                t.record(lanes.get(li), kept == null ? null : kept[li]);
            }
        }

        /** Whether the kernel's column sums index every lane's entries as they are now. */
        boolean sumsCurrent() {
            if (sums == null) return false;
            for (int li = 0; li < lanes.size(); li++) if (!sumsCurrent(li)) return false;
            return true;
        }

        /** Whether lane {@code li}'s column sums index its entries as they are now (none changed since they were made). */
        boolean sumsCurrent(int li) {
            return sumVersions[li] == lanes.get(li).entriesVersion();
        }

        /** Arrays for the kernel to add column sums to (they index each lane's entries as they are now). */
        float[][] columnSums() {
            sums = new float[lanes.size()][];
            sumTrails = new SumTrail[lanes.size()];
            sumVersions = new int[lanes.size()];
            for (int li = 0; li < lanes.size(); li++) {
                Lane l = lanes.get(li);
                // the lane's scratch array, zeroed (a lane is in one event at a time); the positions the sums index
                // are the lane's until its entries change (see beforeEntriesChange)
                int n = l.size();
                NativeRunner.Scratch sc = runner.scratch.computeIfAbsent(l, x -> new NativeRunner.Scratch());
                if (sc.sums.length < n) sc.sums = new float[Math.max(n, sc.sums.length * 2)];
                else Arrays.fill(sc.sums, 0, n, 0f);
                sums[li] = sc.sums;
                sumVersions[li] = l.entriesVersion();
            }
            return sums;
        }

        BitSet[] attendSets() {
            if (attend == null) return null;
            BitSet[] out = new BitSet[lanes.size()];
            for (int li = 0; li < lanes.size(); li++) {
                Lane l = lanes.get(li);
                if (attendVersions[li] == l.entriesVersion()) {
                    // the entries are those the set was chosen over
                    out[li] = (BitSet) attend[li].clone();
                    continue;
                }
                if (attendPositions == null || attendPositions[li] == null) throw new IllegalStateException("lane " + li + " changed outside its event after its attend set");
                out[li] = at(l, attendPositions[li]);
            }
            return out;
        }

        /** Per lane, per query head, the entries it reads now (where 'attend' took a set per query head; else null). */
        BitSet[][] queryHeadSets() {
            if (attendHeadPositions == null) return null;
            BitSet[][] out = new BitSet[lanes.size()][];
            for (int li = 0; li < out.length; li++) {
                out[li] = new BitSet[attendHeadPositions[li].length];
                for (int gi = 0; gi < out[li].length; gi++) out[li][gi] = at(lanes.get(li), attendHeadPositions[li][gi]);
            }
            return out;
        }

        /** The entries of a lane at sorted {@code positions} (-1: the compensation entry) that it still holds. */
        private static BitSet at(Lane l, int[] positions) {
            int n = l.size(), regular = regular(l);
            BitSet out = new BitSet(n);
            // regular entries are in position order, a compensation entry, position -1, is last
            for (int p : positions) {
                int j = p == -1 ? (regular < n ? regular : -1) : Arrays.binarySearch(l.positionTable(), 0, regular, p);
                if (j >= 0) out.set(j);
            }
            return out;
        }

        /** This event's attention over each lane as it is now (before the handlers act), over the attend set. */
        void computeAttention() {
            if (probs != null) return;
            int n = lanes.size();
            probs = new double[n][][];
            logits = new double[n][][];
            rowPositions = new int[n][];
            AttentionVariant variant = runner.runtimeVariant();
            double scale = 1.0 / Math.sqrt(d);
            float[] key = new float[d];
            for (int li = 0; li < n; li++) {
                Lane lane = lanes.get(li);
                int m = lane.size();
                int[] pos = new int[m];
                float[][] keys = new float[m][];
                BitSet allowed = attend == null ? null : attendSets()[li];
                BitSet[] perHead = attendHeadPositions == null ? null : queryHeadSets()[li];
                for (int j = 0; j < m; j++) {
                    pos[j] = lane.position(j);
                    lane.read(j, Lane.Part.KEYS, key, 0);
                    keys[j] = key.clone();
                    if (rope != null && cache) rope.rotate(keys[j], 0, d, j);
                }
                double[][] pr = new double[observed.length * g][m], lg = new double[observed.length * g][m];
                int kvHead = kvHeads[li];
                if (variant == null && perHead == null) {
                    standardLogits(lane, keys, pos, allowed, kvHead, lg, pr, scale);
                    probs[li] = pr;
                    logits[li] = lg;
                    rowPositions[li] = pos;
                    continue;
                }
                for (int qi = 0; qi < observed.length; qi++) {
                    int qpos = observed[qi];
                    for (int gi = 0; gi < g; gi++) {
                        int head = kvHead * g + gi;
                        float[] q = query(qpos, head);
                        if (rope != null) rope.rotate(q, 0, d, cache ? slotOf(lane, qpos) : qpos);
                        double[] row = lg[qi * g + gi];
                        boolean[] visible = new boolean[m];
                        BitSet reads = perHead == null ? allowed : perHead[gi];
                        for (int j = 0; j < m; j++) {
                            int kpos = lane.isCompensation(j) ? -1 : pos[j];
                            if (reads != null && !reads.get(j)) continue;
                            if (variant == null) {
                                double s = 0;
                                for (int c = 0; c < d; c++) s += (double) q[c] * keys[j][c];
                                row[j] = s * scale;
                                visible[j] = kpos <= qpos;
                            } else {
                                row[j] = variant.logit(q, 0, keys[j], qpos, kpos, head, step.context());
                                visible[j] = variant.visible(q, 0, keys[j], qpos, kpos, head, step.context());
                            }
                        }
                        AttentionVariant.Normalize norm = variant == null ? AttentionVariant.Normalize.SOFTMAX : variant.normalize();
                        norm.apply(row, visible, pr[qi * g + gi], m);
                        AttentionVariant.maskUnseen(row, visible, m);
                    }
                }
                probs[li] = pr;
                logits[li] = lg;
                rowPositions[li] = pos;
            }
        }

        /**
         * Standard attention's rows over one lane: each key row read once for every observed query and group head
         * (the queries side by side, so the loop over them runs in vector registers), each logit the same sum in the
         * same order as one dot product at a time ({@code s += q[c] * k[c]} in double, c ascending), so the same bits.
         */
        private void standardLogits(Lane lane, float[][] keys, int[] pos, BitSet allowed, int kvHead, double[][] lg, double[][] pr, double scale) {
            int m = keys.length, rows = observed.length * g;
            double[] qt = new double[d * rows];
            int[] qpos = new int[rows];
            for (int qi = 0; qi < observed.length; qi++) {
                for (int gi = 0; gi < g; gi++) {
                    int r = qi * g + gi;
                    float[] q = query(observed[qi], kvHead * g + gi);
                    if (rope != null) rope.rotate(q, 0, d, cache ? slotOf(lane, observed[qi]) : observed[qi]);
                    for (int c = 0; c < d; c++) qt[c * rows + r] = q[c];
                    qpos[r] = observed[qi];
                }
            }
            boolean[][] visible = new boolean[rows][m];
            double[] s = new double[rows];
            for (int j = 0; j < m; j++) {
                if (allowed != null && !allowed.get(j)) continue;
                float[] k = keys[j];
                Arrays.fill(s, 0);
                for (int c = 0; c < d; c++) addScaled(s, qt, c * rows, k[c], rows);
                int kpos = lane.isCompensation(j) ? -1 : pos[j];
                for (int r = 0; r < rows; r++) {
                    lg[r][j] = s[r] * scale;
                    visible[r][j] = kpos <= qpos[r];
                }
            }
            for (int r = 0; r < rows; r++) {
                AttentionVariant.Normalize.SOFTMAX.apply(lg[r], visible[r], pr[r], m);
                AttentionVariant.maskUnseen(lg[r], visible[r], m);
            }
        }

        /** {@code s[r] += x[at + r] * k} for r below n: a loop the JIT runs in vector registers. */
        private static void addScaled(double[] s, double[] x, int at, double k, int n) {
            for (int r = 0; r < n; r++) s[r] += x[at + r] * k;
        }

        private static int slotOf(Lane lane, int pos) {
            for (int i = lane.size() - 1; i >= 0; i--) if (lane.position(i) == pos) return i;
            throw new IllegalStateException("the query's own entry (position " + pos + ") is not in the lane");
        }
    }

    /**
     * What became of a lane's entries since the kernel's column sums were made, recorded without a copy per entry:
     * the kept sets of retains (a decode step's eviction), then, at the first other change, the positions before it
     * (a position names an entry across every later change, so nothing after it is recorded).
     */
    static final class SumTrail {
        private final List<BitSet> kept = new ArrayList<>();
        private int[] positions;

        /** Lane {@code l} is about to keep exactly {@code kept} of its entries, or (null) to change otherwise. */
        void record(Lane l, BitSet keptNow) {
            if (positions != null) return;
            // a retain's kept set is its own, never changed after (the epochs hold it too)
            if (keptNow != null) kept.add(keptNow);
            else positions = Arrays.copyOf(l.positionTable(), l.size());
        }

        /** For each entry of {@code l} now, its index among the entries the sums were made for (-1: it arrived since). */
        int[] indexMap(Lane l) {
            int n = l.size();
            int[] map = new int[n];
            for (int j = 0; j < n; j++) map[j] = positions == null ? j : indexOf(positions, l.position(j));
            for (int r = kept.size() - 1; r >= 0; r--) throughRetain(map, kept.get(r));
            return map;
        }
    }

    /**
     * A set of entries (or pages) per lane, as it was at an epoch: bits, or one run {@code [from, to)} per lane
     * ({@link Runs}: all entries, first and last n, and what set algebra and store scopes make of runs), whose bits
     * are made only when something asks for them. Its bits are never changed once made: what changes a set's bits
     * (set algebra, a keep that drops the compensation entry) changes a copy, so sets and the epochs' kept entries
     * share them.
     */
    static final class Sel {
        private final Axis domain;
        /** Per lane, its members; for a set of runs, made when first asked for. */
        private BitSet[] perHead;
        /** Per lane, its run; null when the set is bits. */
        private final long[] runs;
        private final boolean compensation;
        private final int epoch;
        /** Whether the members are one bitset per query head of the (one) lane's group, not one per lane. */
        private final boolean queryHeads;

        Sel(Axis domain, BitSet[] perHead, boolean compensation, int epoch) {
            this(domain, perHead, null, compensation, epoch, false);
        }

        Sel(Axis domain, BitSet[] perHead, boolean compensation, int epoch, boolean queryHeads) {
            this(domain, perHead, null, compensation, epoch, queryHeads);
        }

        private Sel(Axis domain, BitSet[] perHead, long[] runs, boolean compensation, int epoch, boolean queryHeads) {
            this.domain = domain;
            this.perHead = perHead;
            this.runs = runs;
            this.compensation = compensation;
            this.epoch = epoch;
            this.queryHeads = queryHeads;
        }

        boolean queryHeads() {
            return queryHeads;
        }

        /** The same members, as a set of {@code epoch} (of another view of the event, whose entries are the same). */
        Sel at(int epoch) {
            return epoch == this.epoch ? this : new Sel(domain, perHead, runs, compensation, epoch, queryHeads);
        }

        /** A set that is one run per lane. */
        static Sel ofRuns(Axis domain, long[] runs, boolean compensation, int epoch) {
            return new Sel(domain, null, runs, compensation, epoch, false);
        }

        Axis domain() {
            return domain;
        }

        boolean compensation() {
            return compensation;
        }

        int epoch() {
            return epoch;
        }

        int heads() {
            return runs != null ? runs.length : perHead.length;
        }

        private int index(int h) {
            int n = heads();
            return n == 1 ? 0 : Math.min(h, n - 1);
        }

        /** Lane h's members (made from its run the first time they are asked for). */
        BitSet forHead(int h) {
            int i = index(h);
            if (perHead == null) perHead = new BitSet[runs.length];
            BitSet b = perHead[i];
            if (b == null) {
                b = new BitSet(Runs.to(runs[i]));
                b.set(Runs.from(runs[i]), Runs.to(runs[i]));
                perHead[i] = b;
            }
            return b;
        }

        /** Whether every lane's members are one run. */
        boolean isRuns() {
            return runs != null;
        }

        /** Lane h's run (only when {@link #isRuns}). */
        long run(int h) {
            return runs[index(h)];
        }
    }

    private final EventState es;
    /**
     * What is known of each epoch's entries, to re-index values and sets made then: the positions of each lane, kept
     * when an effect other than a keep or evict ends the epoch (their re-indexing is by position), or the entries a
     * keep or evict retained (index maps compose through them, with no copy of the positions). The current epoch is
     * last.
     */
    private final List<Epoch> epochs = new ArrayList<>();

    /** One epoch: per lane, its positions (or null) or the kept entries of the retain that ended it, and its sizes. */
    private record Epoch(int[][] positions, BitSet[] kept, int[] sizes) {}

    LaneView(EventState es) {
        this.es = es;
        epochs.add(null);
    }

    /** Called before an effect other than keep or evict changes which entries the lanes hold. */
    private void beforeChange() {
        int[][] b = new int[es.lanes.size()][];
        int[] sizes = new int[b.length];
        for (int i = 0; i < b.length; i++) {
            Lane l = es.lanes.get(i);
            b[i] = Arrays.copyOf(l.positionTable(), l.size());
            sizes[i] = l.size();
        }
        epochs.set(epochs.size() - 1, new Epoch(b, null, sizes));
        es.beforeEntriesChange(null);
    }

    /** Called before lane i keeps exactly {@code kept[i]} of its entries (its first {@code sizes[i]}). */
    private void beforeRetain(BitSet[] kept, int[] sizes) {
        epochs.set(epochs.size() - 1, new Epoch(null, kept, sizes));
        es.beforeEntriesChange(kept);
    }

    /** For each entry of lane {@code li} now, its index at {@code epoch} (-1: it arrived since). */
    private int[] indexAt(int epoch, int li) {
        Lane l = es.lanes.get(li);
        int n = l.size();
        int[] map = new int[n];
        if (epoch == epoch()) {
            for (int j = 0; j < n; j++) map[j] = j;
            return map;
        }
        Epoch e = epochs.get(epoch);
        if (e.positions() != null) {
            int[] was = e.positions()[li];
            for (int j = 0; j < n; j++) map[j] = indexOf(was, l.position(j));
            return map;
        }
        return throughRetain(indexAt(epoch + 1, li), e.kept()[li]);
    }

    /**
     * An index map (entry now -> its index after a retain, -1 for none) taken back through that retain, in place: the
     * i-th entry after it was the i-th kept one.
     */
    static int[] throughRetain(int[] map, BitSet kept) {
        int[] order = new int[kept.cardinality()];
        for (int k = 0, i = kept.nextSetBit(0); i >= 0; i = kept.nextSetBit(i + 1)) order[k++] = i;
        for (int j = 0; j < map.length; j++) map[j] = map[j] < 0 || map[j] >= order.length ? -1 : order[map[j]];
        return map;
    }

    private Lane lane0() {
        return es.lanes.getFirst();
    }

    // ------------------------------------------------------------------------------------------ numbers

    @Override
    public int extent(Axis axis) {
        return switch (axis) {
            case TOKEN -> lane0().size();
            case CHANNEL -> es.d;
            case QUERY -> es.observed.length;
            case GROUP -> es.g;
            case HEAD -> es.lanes.size();
            case LAYER -> es.runner.program.shape().layers();
            case PAGE -> es.pages(lane0());
        };
    }

    /** Lays {@code data} over {@code have} out over {@code want} (broadcasting the axes it lacks). */
    private double[] layout(double[] data, List<Axis> have, int[] haveDims, List<Axis> want) {
        if (have.equals(want)) return data;
        for (Axis a : have) if (!want.contains(a)) throw new IllegalStateException("value over " + have + " where " + want + " was expected");
        int[] dims = new int[want.size()];
        int n = 1;
        for (int i = 0; i < dims.length; i++) {
            int at = have.indexOf(want.get(i));
            dims[i] = at >= 0 ? haveDims[at] : es.extent(want.get(i));
            n *= dims[i];
        }
        double[] out = new double[n];
        int[] idx = new int[dims.length];
        for (int f = 0; f < n; f++) {
            int src = 0;
            for (int j = 0; j < have.size(); j++) src = src * haveDims[j] + idx[want.indexOf(have.get(j))];
            out[f] = data[src];
            for (int j = dims.length - 1; j >= 0; j--) {
                if (++idx[j] < dims[j]) break;
                idx[j] = 0;
            }
        }
        return out;
    }

    private double[] scalar(double v) {
        return new double[] {v};
    }

    private List<Axis> withHead(Axis... axes) {
        List<Axis> out = new ArrayList<>();
        if (es.perLayer) out.add(Axis.HEAD);
        out.addAll(List.of(axes));
        return out;
    }

    private int[] dims(int... d) {
        if (!es.perLayer) return d;
        int[] r = new int[d.length + 1];
        r[0] = es.lanes.size();
        System.arraycopy(d, 0, r, 1, d.length);
        return r;
    }

    @Override
    public double[] signal(Signal signal, int axes) {
        return signal(signal, Axis.of(axes));
    }

    @Override
    public double[] state(String name, int axes) {
        return state(name, Axis.of(axes));
    }

    @Override
    public double[] modelStat(Op.CellStat stat, String state, int axes) {
        return new double[] {es.model.stat(stat, stateDecl(state), es.layer, es.kvHeads[0])};
    }

    @Override
    public double[] kernelStat(Signal signal, Op.Red fn, int overMask, int axes) {
        List<Axis> want = Axis.of(axes), over = Axis.of(overMask);
        boolean prompt = signal == Signal.PROMPT_ATTN;
        if (es.fusedSums || prompt && es.promptSums) {
            // per lane, the sum over queries and group heads (NativeRunner.fromColumnSums); then over the
            // layer's heads where asked, and the reduction finishes from the sum and the cells folded (a
            // mean divides), as the rows' reduction does
            List<Axis> rest = new ArrayList<>(over);
            rest.removeAll(List.of(Axis.QUERY, Axis.GROUP));
            int queries = prompt ? es.step.positions().length : es.observed.length;
            double cells = (double) queries * es.g * (over.contains(Axis.HEAD) ? es.lanes.size() : 1);
            if (rest.isEmpty()) return layout(fusedSums(false, fn, cells), withHead(Axis.TOKEN), dims(lane0().size()), want);
            if (es.perLayer && rest.equals(List.of(Axis.HEAD))) {
                // TOVA's mean over the layer's heads: summed over the lanes as the sums are read
                return layout(fusedSums(true, fn, cells), List.of(Axis.TOKEN), new int[] {lane0().size()}, want);
            }
            Tensor x = new Tensor(withHead(Axis.TOKEN), dims(lane0().size()), fusedSums());
            Tensor r = x.reduce(Op.Red.SUM, rest);
            fn.finish(r.data, cells);
            return layout(r.data, r.axes, r.dims, want);
        }
        Tensor x = prompt ? promptAttention() : attention(signal == Signal.ATTN);
        Tensor r = x.reduce(fn, over);
        return layout(r.data, r.axes, r.dims, want);
    }

    /**
     * Every query's attention rows of the event, whatever an observe clause keeps (where the kernel's column sums do
     * not serve): computed as the observed rows are, for all of the step's positions, leaving those as they were.
     */
    private Tensor promptAttention() {
        int[] kept = es.observed;
        double[][][] probs = es.probs, logits = es.logits;
        int[][] rows = es.rowPositions;
        es.observed = es.step.positions();
        es.probs = null;
        try {
            return attention(true);
        } finally {
            es.observed = kept;
            es.probs = probs;
            es.logits = logits;
            es.rowPositions = rows;
        }
    }

    /** The folds over one lane's queries and group heads (H2O's column sums), and those of a layer's lanes (TOVA's), as masks. */
    private static final int QUERY_GROUP = Axis.mask(List.of(Axis.QUERY, Axis.GROUP)), QUERY_GROUP_HEAD = Axis.mask(List.of(Axis.QUERY, Axis.GROUP, Axis.HEAD));
    /** One row over tokens. */
    private static final int TOKEN = Axis.mask(List.of(Axis.TOKEN));

    /** A dense value over named axes, as the interpreter's tensors (for reductions and layouts). */
    record Tensor(List<Axis> axes, int[] dims, double[] data) {
        /** Reduction in the interpreter's order: the input in row-major order, folded into the output cells. */
        Tensor reduce(Op.Red fn, List<Axis> over) {
            List<Axis> keep = new ArrayList<>();
            for (Axis a : axes) if (!over.contains(a)) keep.add(a);
            if (axes.subList(axes.size() - keep.size(), axes.size()).equals(keep)) return LaneView.reduceLeading(this, fn, keep);
            int[] od = new int[keep.size()];
            int n = 1;
            for (int i = 0; i < od.length; i++) {
                od[i] = dims[axes.indexOf(keep.get(i))];
                n *= od[i];
            }
            double[] acc = new double[n];
            Arrays.fill(acc, fn.identity());
            int count = 1;
            for (Axis a : over) count *= dims[axes.indexOf(a)];
            int[] outStride = new int[axes.size()];
            int s = 1;
            for (int i = keep.size() - 1; i >= 0; i--) {
                outStride[axes.indexOf(keep.get(i))] = s;
                s *= od[i];
            }
            int[] idx = new int[dims.length];
            for (double v : data) {
                int o = 0;
                for (int j = 0; j < idx.length; j++) o += idx[j] * outStride[j];
                acc[o] = fn.fold(acc[o], v);
                for (int j = idx.length - 1; j >= 0; j--) {
                    if (++idx[j] < dims[j]) break;
                    idx[j] = 0;
                }
            }
            fn.finish(acc, count);
            return new Tensor(keep, od, acc);
        }
    }

    /**
     * {@link Tensor#reduce} when the axes folded are the leading ones: output cell i folds input rows r at i in
     * the order of r, as the general loop does (the input in row-major order), so the results are the same bits.
     */
    private static Tensor reduceLeading(Tensor x, Op.Red fn, List<Axis> keep) {
        int[] od = Arrays.copyOfRange(x.dims(), x.dims().length - keep.size(), x.dims().length);
        int n = 1;
        for (int d : od) n *= d;
        double[] acc = new double[n];
        Arrays.fill(acc, fn.identity());
        double[] data = x.data();
        int rows = n == 0 ? 0 : data.length / n;
        for (int r = 0; r < rows; r++) {
            int base = r * n;
            if (fn.pre == null && fn.fold == Op.Red.Fold.SUM) {
                for (int i = 0; i < n; i++) acc[i] += data[base + i];
            } else {
                for (int i = 0; i < n; i++) acc[i] = fn.fold(acc[i], data[base + i]);
            }
        }
        fn.finish(acc, rows);
        return new Tensor(keep, od, acc);
    }

    /** The kernel's column sums over [head?, token] for the entries now (0 for entries it did not see). */
    private double[] fusedSums() {
        return fusedSums(false, Op.Red.SUM, 1);
    }

    /**
     * The kernel's column sums for the entries now, finished as reduction {@code fn} of {@code cells} values: over [head?, token],
     * or with {@code overLanes} summed over the lanes into [token] (0 + the first lane's + the next lane's ..., the
     * order of {@link Tensor#reduce}). One pass per lane.
     */
    private double[] fusedSums(boolean overLanes, Op.Red fn, double cells) {
        es.checkAligned();
        if (es.sums == null) throw new IllegalStateException("the kernel's column sums were asked for but not computed");
        int n = lane0().size();
        double[] data = new double[(overLanes ? 1 : es.lanes.size()) * n];
        for (int li = 0; li < es.lanes.size(); li++) {
            Lane l = es.lanes.get(li);
            SumTrail trail = es.sumTrails[li];
            boolean current = es.sumsCurrent(li);
            if (trail == null && !current) throw new IllegalStateException("lane " + li + " changed outside its event after attention");
            float[] sums = es.sums[li];
            int o = overLanes ? 0 : li * n;
            if (current) {
                // the entries attention saw: straight loops the JIT vectorises
                if (overLanes) addTo(data, o, sums, n);
                else copyTo(data, o, sums, n);
                continue;
            }
            int[] at = trail.indexMap(l);
            for (int j = 0; j < n; j++) {
                double v = at[j] < 0 ? 0 : sums[at[j]];
                data[o + j] = overLanes ? data[o + j] + v : v;
            }
        }
        fn.finish(data, cells);
        return data;
    }

    private static void copyTo(double[] into, int at, float[] from, int n) {
        for (int j = 0; j < n; j++) into[at + j] = from[j];
    }

    private static void addTo(double[] into, int at, float[] from, int n) {
        for (int j = 0; j < n; j++) into[at + j] += from[j];
    }

    /** attn or logits over [head?, query, group, token] for the entries now (rows kept by position). */
    private Tensor attention(boolean probabilities) {
        es.checkAligned();
        es.computeAttention();
        int n = lane0().size(), g = es.g, q = es.observed.length;
        double[] data = new double[es.lanes.size() * q * g * n];
        int o = 0;
        for (int li = 0; li < es.lanes.size(); li++) {
            Lane l = es.lanes.get(li);
            double[][] rows = (probabilities ? es.probs : es.logits)[li];
            int[] was = es.rowPositions[li];
            int[] col = new int[l.size()];
            for (int j = 0; j < col.length; j++) col[j] = indexOf(was, l.position(j));
            for (int qi = 0; qi < q; qi++) {
                for (int gi = 0; gi < g; gi++) {
                    double[] row = rows[qi * g + gi];
                    for (int j = 0; j < col.length; j++) data[o++] = col[j] < 0 ? 0 : row[col[j]];
                }
            }
        }
        return new Tensor((probabilities ? Signal.ATTN : Signal.LOGITS).axes(es.perLayer), dims(q, g, n), data);
    }

    /**
     * Index of position {@code v} among a lane's positions: increasing, except the compensation entry (position -1),
     * which is last.
     */
    static int indexOf(int[] positions, int v) {
        int n = positions.length;
        if (n > 0 && positions[n - 1] == -1) {
            if (v == -1) return n - 1;
            n--;
        }
        int i = Arrays.binarySearch(positions, 0, n, v);
        return i < 0 ? -1 : i;
    }

    private double[] signal(Signal name, List<Axis> want) {
        switch (name) {
            case LEN -> {
                return layout(scalar(lane0().size()), List.of(), new int[0], want);
            }
            case CONTEXT -> {
                return layout(scalar(es.step.context()), List.of(), new int[0], want);
            }
            case STEP -> {
                return layout(scalar(es.step.decodeStep()), List.of(), new int[0], want);
            }
            case LAYER -> {
                return layout(scalar(es.layer), List.of(), new int[0], want);
            }
            case HEAD -> {
                return layout(scalar(es.kvHeads[0]), List.of(), new int[0], want);
            }
            case LAYERS -> {
                return layout(scalar(es.runner.program.shape().layers()), List.of(), new int[0], want);
            }
            case HEADS -> {
                return layout(scalar(es.runner.program.shape().kvHeads()), List.of(), new int[0], want);
            }
            case GROUP -> {
                return layout(scalar(es.g), List.of(), new int[0], want);
            }
            case HEAD_DIM -> {
                return layout(scalar(es.d), List.of(), new int[0], want);
            }
            case CHANNEL -> {
                double[] c = new double[es.d];
                for (int i = 0; i < c.length; i++) c[i] = i;
                return layout(c, List.of(Axis.CHANNEL), new int[] {es.d}, want);
            }
            default -> { }
        }
        es.checkAligned();
        int n = lane0().size(), d = es.d, g = es.g;
        return switch (name) {
            case K, V -> {
                double[] data = new double[es.lanes.size() * n * d];
                float[] row = new float[d];
                int o = 0;
                for (Lane l : es.lanes) {
                    for (int j = 0; j < l.size(); j++) {
                        l.read(j, name == Signal.K ? Lane.Part.KEYS : Lane.Part.VALUES, row, 0);
                        for (float x : row) data[o++] = x;
                    }
                }
                yield layout(data, name.axes(es.perLayer), dims(n, d), want);
            }
            case POS, AGE, INDEX -> {
                double[] data = new double[es.lanes.size() * n];
                int o = 0;
                for (Lane l : es.lanes) {
                    for (int j = 0; j < l.size(); j++) {
                        data[o++] = name == Signal.POS ? l.position(j) : name == Signal.INDEX ? j : es.step.decodeStep() - l.addedAtStep(j);
                    }
                }
                yield layout(data, name.axes(es.perLayer), dims(n), want);
            }
            case Q -> {
                double[] data = new double[es.lanes.size() * es.observed.length * g * d];
                int o = 0;
                for (int li = 0; li < es.lanes.size(); li++) {
                    for (int qp : es.observed) {
                        for (int gi = 0; gi < g; gi++) {
                            float[] q = es.query(qp, es.kvHeads[li] * g + gi);
                            if (es.rope != null && !es.cache) es.rope.rotate(q, 0, d, qp);
                            for (float x : q) data[o++] = x;
                        }
                    }
                }
                yield layout(data, name.axes(es.perLayer), dims(es.observed.length, g, d), want);
            }
            case ATTN, LOGITS -> {
                Tensor t = attention(name == Signal.ATTN);
                yield layout(t.data, t.axes, t.dims, want);
            }
            case QPOS -> {
                double[] data = new double[es.lanes.size() * es.observed.length];
                int o = 0;
                for (int li = 0; li < es.lanes.size(); li++) for (int qp : es.observed) data[o++] = qp;
                yield layout(data, name.axes(es.perLayer), dims(es.observed.length), want);
            }
            default -> throw new IllegalStateException("unknown signal " + name);
        };
    }

    private PolicyIr.State stateDecl(String name) {
        return es.info.state(name);
    }

    private double[] state(String name, List<Axis> want) {
        PolicyIr.State s = stateDecl(name);
        List<Axis> extra = s.cellAxes();
        int per = es.stateWidth(s);
        switch (s.scope()) {
            case TOKEN -> {
                es.checkAligned();
                int n = lane0().size();
                double[] data = new double[es.lanes.size() * n * per];
                int o = 0;
                for (Lane l : es.lanes) {
                    l.declareState(name, per);
                    float[] col = l.state(name);
                    for (int j = 0; j < n * per; j++) data[o + j] = col[j];
                    o += n * per;
                }
                List<Axis> axes = s.axes(es.perLayer);
                int[] dd = new int[axes.size()];
                int k = 0;
                if (es.perLayer) dd[k++] = es.lanes.size();
                dd[k++] = n;
                for (Axis a : extra) dd[k++] = es.extent(a);
                return layout(data, axes, dd, want);
            }
            case MODEL -> {
                double[] data = es.model.read(s, es.layer, es.kvHeads, es.perLayer, es.positions(s));
                List<Axis> axes = s.axes(es.perLayer);
                return layout(data, axes, axes.isEmpty() ? new int[0] : new int[] {data.length}, want);
            }
            case LANE -> {
                double[] data = new double[es.lanes.size() * per];
                for (int li = 0; li < es.lanes.size(); li++) {
                    double[] x = es.runner.laneStates.computeIfAbsent(es.lanes.get(li), k -> new HashMap<>()).get(name);
                    if (x != null) System.arraycopy(x, 0, data, li * per, per);
                    if (!es.perLayer) break;
                }
                List<Axis> axes = s.axes(es.perLayer);
                int[] dd = new int[axes.size()];
                int k = 0;
                if (es.perLayer) dd[k++] = es.lanes.size();
                for (Axis a : extra) dd[k++] = es.extent(a);
                return layout(es.perLayer ? data : Arrays.copyOf(data, per), axes, dd, want);
            }
            default -> {
                double[] cached = es.pageCache().get(name);
                List<Axis> axes = s.axes(es.perLayer);
                if (cached == null) {
                    if (es.perLayer) es.checkAligned();
                    int lanes = es.perLayer ? es.lanes.size() : 1;
                    double[][] byLane = new double[lanes][];
                    int total = 0;
                    for (int li = 0; li < lanes; li++) {
                        byLane[li] = es.lanePageState(s, li, true);
                        total += byLane[li].length;
                    }
                    if (lanes == 1) {
                        cached = byLane[0];
                    } else {
                        cached = new double[total];
                        int o = 0;
                        for (double[] x : byLane) {
                            System.arraycopy(x, 0, cached, o, x.length);
                            o += x.length;
                        }
                    }
                    es.pageCache().put(name, cached);
                }
                int[] dd = new int[axes.size()];
                int k = 0;
                if (es.perLayer) dd[k++] = es.lanes.size();
                dd[k++] = es.pages(lane0());
                for (Axis a : extra) dd[k++] = es.extent(a);
                return layout(cached, axes, dd, want);
            }
        }
    }

    @Override
    public void writeState(String name, Instr.Assign op, double[] value, int axes) {
        PolicyIr.State s = stateDecl(name);
        List<Axis> target = new ArrayList<>(s.type().axes());
        if (es.perLayer && !target.contains(Axis.HEAD)) target.addFirst(Axis.HEAD);
        if (s.scope() == PolicyIr.StateScope.LANE) target.remove(Axis.TOKEN);
        if (s.scope() == PolicyIr.StateScope.MODEL) target = new ArrayList<>(s.axes(es.perLayer));
        // the state's layout, with the value broadcast over it
        List<Axis> have = Axis.of(axes);
        int[] haveDims = new int[have.size()];
        int known = 1, open = -1;
        for (int i = 0; i < have.size(); i++) {
            if (have.get(i) == Axis.TOKEN) {
                open = i;
                continue;
            }
            haveDims[i] = es.extent(have.get(i));
            known *= haveDims[i];
        }
        if (open >= 0) haveDims[open] = known == 0 ? 0 : value.length / known;
        if (s.scope() == PolicyIr.StateScope.PAGE) throw new IllegalStateException("writes to per-page state are not supported");
        es.dropPageCache();
        if (s.scope() == PolicyIr.StateScope.TOKEN && !es.perLayer && have.equals(List.of(Axis.TOKEN)) && es.stateWidth(s) == 1
                && value.length == lane0().size()) {
            // the common case (H2O's acc += column sums): the column updated in place, same rounding as below
            Lane l = lane0();
            l.declareState(name, 1);
            float[] col = l.state(name);
            int code = assignment(op);
            for (int j = 0; j < value.length; j++) col[j] = es.storeValue(s, assign(code, col[j], value[j]));
            return;
        }
        double[] next = layout(value, have, haveDims, target);
        double[] current = state(name, target);
        for (int i = 0; i < next.length; i++) {
            double v = switch (op) {
                case SET -> next[i];
                case ADD -> current[i] + next[i];
                case SUB -> current[i] - next[i];
                case MUL -> current[i] * next[i];
            };
            next[i] = s.type().elem().stored(v);
        }
        int per = es.stateWidth(s);
        if (s.scope() == PolicyIr.StateScope.MODEL) {
            es.model.write(s, es.layer, es.kvHeads, es.perLayer, es.positions(s), next);
            return;
        }
        if (s.scope() == PolicyIr.StateScope.LANE) {
            for (int li = 0; li < es.lanes.size(); li++) {
                es.runner.laneStates.computeIfAbsent(es.lanes.get(li), k -> new HashMap<>()).put(name, Arrays.copyOfRange(next, li * per, (li + 1) * per));
            }
            return;
        }
        int n = lane0().size();
        int o = 0;
        for (Lane l : es.lanes) {
            l.declareState(name, per);
            float[] col = l.state(name);
            for (int j = 0; j < n * per; j++) col[j] = (float) next[o++];
        }
    }

    /** {@code col[j] = (float) (col[j] + (double) x[j])} for j below n: a small loop the JIT compiles on its own. */
    private static void addInto(float[] col, float[] x, int n) {
        for (int j = 0; j < n; j++) col[j] = (float) (col[j] + (double) x[j]);
    }

    /** A state assignment's code for {@link #assign}: 0 =, 1 +=, 2 -=, 3 *=. */
    private static int assignment(Instr.Assign op) {
        return switch (op) {
            case SET -> 0;
            case ADD -> 1;
            case SUB -> 2;
            case MUL -> 3;
        };
    }

    /** {@code current op value} for an assignment code. */
    private static double assign(int code, double current, double value) {
        return switch (code) {
            case 0 -> value;
            case 1 -> current + value;
            case 2 -> current - value;
            default -> current * value;
        };
    }

    /**
     * H2O's {@code acc += sum(attn, over: query, group)} in one pass: the kernel's column sums added into the state
     * column as they are read (what {@link #kernelStat} and {@link #writeState} do in two). Other cases compose the two.
     */
    @Override
    public void writeStateFrom(String name, Instr.Assign op, Signal signal, Op.Red fn, int over, int axes) {
        if (es.fusedSums && !es.perLayer && es.lanes.size() == 1 && axes == TOKEN) {
            PolicyIr.State s = stateDecl(name);
            Lane l = lane0();
            int n = l.size();
            boolean made = es.sums != null;
            boolean sum = fn == Op.Red.SUM, mean = fn == Op.Red.MEAN;
            if (signal == Signal.ATTN && (sum || mean) && over == QUERY_GROUP && s.scope() == PolicyIr.StateScope.TOKEN
                    && es.stateWidth(s) == 1 && made && es.sumsCurrent(0)) {
                es.dropPageCache();
                l.declareState(name, 1);
                float[] col = l.state(name), sums = es.sums[0];
                double cells = (double) es.observed.length * es.g;
                int code = assignment(op);
                if (code == 1 && sum && s.type().elem() == Ty.Elem.FLOAT) {
                    // H2O's acc += column sums: the general loop's operations, without its per-entry dispatch
                    addInto(col, sums, n);
                    return;
                }
                for (int j = 0; j < n; j++) col[j] = es.storeValue(s, assign(code, col[j], fn.finish(sums[j], cells)));
                return;
            }
        }
        LaneContext.super.writeStateFrom(name, op, signal, fn, over, axes);
    }

    /**
     * A ranking of a per-token state column or of the kernel's column sums (one row over tokens), read where they are
     * kept: the decode step's case, where all but a few candidates stay ({@link Select#allButFewWorstOfColumns}).
     * Other cases compose bind and rank.
     */
    @Override
    public Object rankState(String name, int axes, Object set, boolean top, long count, long floor, Axis domain, Op.Algorithm algorithm) {
        if (floor <= 0 && domain == Axis.TOKEN && axes == TOKEN && es.lanes.size() == 1) {
            PolicyIr.State s = stateDecl(name);
            if (s.scope() == PolicyIr.StateScope.TOKEN && es.stateWidth(s) == 1) {
                Lane l = lane0();
                l.declareState(name, 1);
                Object chosen = rankColumns(new float[][] {l.state(name)}, Op.Red.SUM, 1, set, top, count);
                if (chosen != null) return chosen;
            }
        }
        return LaneContext.super.rankState(name, axes, set, top, count, floor, domain, algorithm);
    }

    @Override
    public Object rankKernelStat(Signal signal, Op.Red fn, int over, int axes, Object set, boolean top, long count, long floor, Axis domain,
                                 Op.Algorithm algorithm) {
        if (floor <= 0 && domain == Axis.TOKEN && axes == TOKEN && es.fusedSums) {
            boolean lane = !es.perLayer && es.lanes.size() == 1 && over == QUERY_GROUP;
            boolean layer = es.perLayer && over == QUERY_GROUP_HEAD;
            if (signal == Signal.ATTN && fn.pre == null && fn.fold == Op.Red.Fold.SUM && (lane || layer) && es.sumsCurrent()) {
                double cells = (double) es.observed.length * es.g * (layer ? es.lanes.size() : 1);
                Object chosen = rankColumns(es.sums, fn, cells, set, top, count);
                if (chosen != null) return chosen;
            }
        }
        return LaneContext.super.rankKernelStat(signal, fn, over, axes, set, top, count, floor, domain, algorithm);
    }

    /**
     * A ranking of per-token float columns read where they are kept ({@link Select#allButFewWorstOfColumns}): the
     * decode step's case, where all but a few candidates stay; null when it is not that case.
     */
    private Object rankColumns(float[][] columns, Op.Red fn, double cells, Object set, boolean top, long count) {
        Lane l = lane0();
        int len = l.size();
        BitSet mask = null;
        if (set != null) {
            Sel s = now(set);
            // within a prefix (H2O's all - last(r)): the candidates are the entries before its end, with no bits made
            if (s.isRuns() && Runs.from(s.run(0)) == 0) len = Math.min(len, Runs.to(s.run(0)));
            else mask = s.forHead(0);
        }
        BitSet chosen = Select.allButFewWorstOfColumns(columns, len, fn, cells, top, count, l, mask);
        return chosen == null ? null : sel(Axis.TOKEN, new BitSet[] {chosen}, false);
    }

    /** A ranking of one row over tokens restricted to a set, without the masked copy {@link #within} makes. */
    @Override
    public Object rankWithin(double[] score, int axes, Object set, boolean top, long count, long floor, Axis domain, Op.Algorithm algorithm) {
        if (axes == TOKEN && domain == Axis.TOKEN) {
            Sel s = now(set);
            BitSet[] mask = {s.forHead(0)};
            return sel(Axis.TOKEN, Select.best(new double[][] {score}, 1, top, count, floor, es.lanes, mask), false);
        }
        return LaneContext.super.rankWithin(score, axes, set, top, count, floor, domain, algorithm);
    }

    // ------------------------------------------------------------------------------------------ epochs

    @Override
    public int epoch() {
        return epochs.size() - 1;
    }

    private void changed() {
        epochs.add(null);
    }

    @Override
    public double[] rebase(double[] values, int axes, int epoch) {
        if (values == null || epoch == epoch()) return values;
        List<Axis> ax = Axis.of(axes);
        int ti = ax.indexOf(Axis.TOKEN);
        int outer = 1, inner = 1;
        for (int i = 0; i < ti; i++) outer *= ax.get(i) == Axis.HEAD ? es.lanes.size() : es.extent(ax.get(i));
        for (int i = ti + 1; i < ax.size(); i++) inner *= es.extent(ax.get(i));
        int oldN = epochs.get(epoch).sizes()[0], newN = lane0().size();
        boolean byHead = ax.contains(Axis.HEAD);
        int perHead = byHead ? outer / es.lanes.size() : outer;
        int[][] from = new int[es.lanes.size()][];
        double[] out = new double[outer * newN * inner];
        for (int o = 0; o < outer; o++) {
            int h = Math.min(byHead ? o / Math.max(1, perHead) : 0, from.length - 1);
            if (from[h] == null) from[h] = indexAt(epoch, h);
            int[] fromH = from[h];
            for (int j = 0; j < newN; j++) {
                int f = j < fromH.length ? fromH[j] : -1;
                for (int in = 0; in < inner; in++) out[(o * newN + j) * inner + in] = f < 0 ? Double.NaN : values[(o * oldN + f) * inner + in];
            }
        }
        return out;
    }

    /** A set made at an earlier epoch, re-indexed to the entries now. */
    private Sel now(Object o) {
        Sel s = (Sel) o;
        if (s.domain() != Axis.TOKEN || s.epoch() == epoch()) return s;
        BitSet[] out = new BitSet[s.heads()];
        for (int h = 0; h < out.length; h++) {
            int[] from = indexAt(s.epoch(), Math.min(h, es.lanes.size() - 1));
            out[h] = new BitSet();
            BitSet bits = s.forHead(h);
            for (int j = 0; j < from.length; j++) if (from[j] >= 0 && bits.get(from[j])) out[h].set(j);
        }
        return new Sel(s.domain(), out, s.compensation(), epoch(), s.queryHeads());
    }

    private Sel sel(Axis domain, BitSet[] bits, boolean compensation) {
        return new Sel(domain, bits, compensation, epoch());
    }

    // ------------------------------------------------------------------------------------------ sets

    @Override
    public Object all() {
        long[] out = new long[es.lanes.size()];
        for (int li = 0; li < out.length; li++) out[li] = Runs.of(0, es.lanes.get(li).size());
        return Sel.ofRuns(Axis.TOKEN, out, true, epoch());
    }

    @Override
    public Object compensation() {
        BitSet[] out = new BitSet[es.lanes.size()];
        for (int li = 0; li < out.length; li++) {
            Lane l = es.lanes.get(li);
            out[li] = new BitSet();
            for (int j = 0; j < l.size(); j++) if (l.isCompensation(j)) out[li].set(j);
        }
        return sel(Axis.TOKEN, out, true);
    }

    @Override
    public Object range(boolean last, long count) {
        long[] out = new long[es.lanes.size()];
        for (int li = 0; li < out.length; li++) {
            Lane l = es.lanes.get(li);
            // the regular entries are 0 .. total-1: a lane's compensation entry, if any, is its last
            int size = l.size(), total = size > 0 && l.isCompensation(size - 1) ? size - 1 : size;
            int n = (int) Math.max(0, Math.min(count, total));
            out[li] = last ? Runs.of(total - n, total) : Runs.of(0, n);
        }
        return Sel.ofRuns(Axis.TOKEN, out, false, epoch());
    }

    @Override
    public Object pages(Object pageSet) {
        Sel ps = (Sel) pageSet;
        int size = es.pageSize();
        BitSet[] out = new BitSet[ps.heads()];
        for (int h = 0; h < out.length; h++) {
            Lane l = es.lanes.get(Math.min(h, es.lanes.size() - 1));
            out[h] = new BitSet();
            // regular entries are the first ones (a compensation entry, if any, is last): page p is entries
            // p * size up to the next page or the last regular entry
            int regular = EventState.regular(l);
            BitSet chosen = ps.forHead(h);
            for (int p = chosen.nextSetBit(0); p >= 0 && (long) p * size < regular; p = chosen.nextSetBit(p + 1)) {
                out[h].set(p * size, Math.min(regular, (p + 1) * size));
            }
        }
        return sel(Axis.TOKEN, out, false);
    }

    /**
     * Slices of a buffer along {@code along}: [outer * inner][along], as the interpreter's tensors slice. When
     * {@code along} is the last axis a slice is a run of the buffer (the buffer itself when there is one slice): the
     * caller must not write to them.
     */
    private double[][] slices(double[] data, List<Axis> ax, Axis along) {
        int ai = ax.indexOf(along);
        if (ai < 0) throw new IllegalStateException("value has no " + along.word() + " axis");
        int outer = 1, inner = 1;
        for (int i = 0; i < ai; i++) outer *= ax.get(i) == Axis.HEAD ? es.lanes.size() : es.extent(ax.get(i));
        for (int i = ai + 1; i < ax.size(); i++) inner *= es.extent(ax.get(i));
        int len = outer * inner == 0 ? 0 : data.length / (outer * inner);
        if (inner == 1 && outer == 1 && len == data.length) return new double[][] {data};
        if (inner == 1) {
            double[][] r = new double[outer][];
            for (int o = 0; o < outer; o++) r[o] = Arrays.copyOfRange(data, o * len, (o + 1) * len);
            return r;
        }
        double[][] r = new double[outer * inner][len];
        for (int o = 0; o < outer; o++) {
            for (int in = 0; in < inner; in++) {
                for (int t = 0; t < len; t++) r[o * inner + in][t] = data[(o * len + t) * inner + in];
            }
        }
        return r;
    }

    @Override
    public Object where(double[] predicate, int axes) {
        double[][] sl = slices(predicate, Axis.of(axes), Axis.TOKEN);
        BitSet[] out = new BitSet[sl.length];
        for (int i = 0; i < sl.length; i++) {
            out[i] = new BitSet(sl[i].length);
            for (int t = 0; t < sl[i].length; t++) if (sl[i][t] != 0) out[i].set(t);
        }
        // a predicate per query head and entry: a set per query head
        return new Sel(Axis.TOKEN, out, false, epoch(), Axis.of(axes).contains(Axis.GROUP));
    }

    @Override
    public Object rank(double[] score, int axes, boolean top, long count, long floor, Axis dom, Op.Algorithm algorithm) {
        List<Axis> ax = Axis.of(axes);
        if (ax.contains(Axis.GROUP)) {
            // each query head of the lane's group ranks its own row ({@link Select#rankEach})
            BitSet[] each = Select.rankEach(slices(score, ax, dom), top, count, Select.compensation(lane0()));
            return new Sel(Axis.TOKEN, each, false, epoch(), true);
        }
        int heads = ax.contains(Axis.HEAD) ? es.lanes.size() : 1;
        double[][] sl = slices(score, ax, dom);
        if (sl.length != heads) throw new IllegalStateException("rank score has axes " + ax + " beyond head and " + dom.word());
        return sel(dom, Select.best(sl, heads, top, count, floor, dom == Axis.TOKEN ? es.lanes : null), false);
    }

    private static Sel combine(Sel a, Sel b, java.util.function.BinaryOperator<BitSet> f, boolean compensation) {
        int n = Math.max(a.heads(), b.heads());
        BitSet[] out = new BitSet[n];
        for (int h = 0; h < n; h++) out[h] = f.apply((BitSet) a.forHead(h).clone(), b.forHead(h));
        return new Sel(a.domain(), out, compensation, a.epoch(), a.queryHeads() || b.queryHeads());
    }

    /** A copy of {@code bits} with room for {@code bound} bits: one array (a clone trims the words, then copies them). */
    private static BitSet copy(BitSet bits, int bound) {
        BitSet c = new BitSet(Math.max(bits.length(), bound));
        c.or(bits);
        return c;
    }

    @Override
    public Object setOp(Op.SetFn fn, Object a, Object b) {
        Sel x = now(a), y = now(b);
        boolean compensation = fn.compensation(x.compensation(), y.compensation());
        if (x.isRuns() && y.isRuns() && x.domain() == y.domain()) {
            // runs stay runs where the result is one (H2O's all - last(r))
            long[] out = new long[Math.max(x.heads(), y.heads())];
            boolean runs = true;
            for (int h = 0; h < out.length && runs; h++) {
                out[h] = fn.run(Runs.from(x.run(h)), Runs.to(x.run(h)), Runs.from(y.run(h)), Runs.to(y.run(h)));
                runs = out[h] != Runs.NONE;
            }
            if (runs) return Sel.ofRuns(x.domain(), out, compensation, x.epoch());
        }
        if (x.domain() == y.domain() && (y.isRuns() && !x.isRuns() || x.isRuns() && !y.isRuns() && fn != Op.SetFn.DIFF)) {
            // bits and a run (H2O's last(r) + the ranking's result): the run is applied to a copy of the bits, and is
            // never made into bits itself (union and intersection commute)
            Sel bits = y.isRuns() ? x : y, run = y.isRuns() ? y : x;
            BitSet[] out = new BitSet[Math.max(x.heads(), y.heads())];
            for (int h = 0; h < out.length; h++) out[h] = fn.applyRun(copy(bits.forHead(h), Runs.to(run.run(h))), Runs.from(run.run(h)), Runs.to(run.run(h)));
            return new Sel(x.domain(), out, compensation, x.epoch(), bits.queryHeads());
        }
        return combine(x, y, fn::apply, compensation);
    }

    @Override
    public Object withinSet(Object a, Object set) {
        return combine(now(a), now(set), Op.SetFn.INTER::apply, false);
    }

    @Override
    public double[] within(double[] values, int axes, Object set) {
        Sel s = now(set);
        List<Axis> ax = Axis.of(axes);
        int heads = ax.contains(Axis.HEAD) ? es.lanes.size() : 1;
        if (ax.getLast() == Axis.TOKEN) {
            // rows over tokens are runs of the buffer: masked in a copy, one run per row
            int rows = 1;
            for (int i = 0; i < ax.size() - 1; i++) rows *= ax.get(i) == Axis.HEAD ? es.lanes.size() : es.extent(ax.get(i));
            int len = rows == 0 ? 0 : values.length / rows, per = rows / heads;
            double[] out = values.clone();
            for (int i = 0; i < rows; i++) {
                // a set per query head: the row's query head (group is the axis just before token)
                BitSet b = s.queryHeads() ? s.forHead(i % es.g) : s.forHead(Math.min(i / Math.max(1, per), s.heads() - 1));
                for (int t = b.nextClearBit(0); t < len; t = b.nextClearBit(t + 1)) out[i * len + t] = Double.NaN;
            }
            return out;
        }
        double[][] sl = slices(values.clone(), ax, Axis.TOKEN); // written below
        int per = sl.length / heads, after = 1;
        for (int i = ax.indexOf(Axis.TOKEN) + 1; i < ax.size(); i++) after *= es.extent(ax.get(i));
        for (int i = 0; i < sl.length; i++) {
            BitSet b = s.queryHeads() ? s.forHead(i / after % es.g) : s.forHead(Math.min(i / Math.max(1, per), s.heads() - 1));
            for (int t = 0; t < sl[i].length; t++) if (!b.get(t)) sl[i][t] = Double.NaN;
        }
        // back from slices
        int ai = ax.indexOf(Axis.TOKEN);
        int inner = 1;
        for (int i = ai + 1; i < ax.size(); i++) inner *= es.extent(ax.get(i));
        int len = sl.length == 0 ? 0 : sl[0].length;
        int outer = inner == 0 ? 0 : sl.length / inner;
        double[] out = new double[values.length];
        for (int o = 0; o < outer; o++) {
            for (int in = 0; in < inner; in++) {
                for (int t = 0; t < len; t++) out[(o * len + t) * inner + in] = sl[o * inner + in][t];
            }
        }
        return out;
    }

    @Override
    public double quantile(double[] values, int axes, double p) {
        return quantileOf(values, p);
    }

    @Override
    public double[] prim(Op.PrimFn fn, double[] values, int valueAxes, Object set, Object rows, double arg, int axes) {
        if (fn == Op.PrimFn.MEMBER && now(set).queryHeads()) {
            // member(S) of a set per query head: [group, token], a row per query head of the one lane
            Sel s = now(set);
            BitSet[] each = new BitSet[s.heads()];
            int[] sizes = new int[each.length];
            for (int gi = 0; gi < each.length; gi++) {
                each[gi] = s.forHead(gi);
                sizes[gi] = lane0().size();
            }
            return Prims.joined(Prims.member(each, sizes));
        }
        int lanes = Axis.of(axes).contains(Axis.HEAD) ? es.lanes.size() : 1;
        return Prims.joined(Prims.values(fn, facts(), lanes, values == null ? null : Prims.perLane(values, lanes), es.d,
                set == null ? null : bits(now(set)), rows == null ? null : bits(now(rows)), arg));
    }

    @Override
    public Object primSet(Op.PrimFn fn, double[] values, int valueAxes, double arg) {
        int lanes = Axis.of(valueAxes).contains(Axis.HEAD) ? es.lanes.size() : 1;
        return sel(Axis.TOKEN, Prims.set(fn, facts(), lanes, Prims.perLane(values, lanes), arg), false);
    }

    /** The event's lanes as the primitives read them. */
    private Prims.Lanes facts() {
        return new Prims.Lanes() {
            public int count() {
                return es.lanes.size();
            }

            public int size(int lane) {
                return es.lanes.get(lane).size();
            }

            public int compensation(int lane) {
                return Select.compensation(es.lanes.get(lane));
            }

            public long position(int lane, int entry) {
                return es.lanes.get(lane).position(entry);
            }

            public int kvHead(int lane) {
                return es.kvHeads[lane];
            }

            public long step() {
                return es.step.decodeStep();
            }

            public long layer() {
                return es.layer;
            }
        };
    }

    /** A set's members in each of the event's lanes. */
    private BitSet[] bits(Sel s) {
        BitSet[] out = new BitSet[es.lanes.size()];
        for (int h = 0; h < out.length; h++) out[h] = s.forHead(h);
        return out;
    }

    /** The {@code p} quantile of all values: {@link Op.Quantile#of}, on a copy. */
    static double quantileOf(double[] values, double p) {
        return Op.Quantile.of(values.clone(), p);
    }

    // ------------------------------------------------------------------------------------------ effects

    @Override
    public void keep(Object set) {
        es.dropPageCache();
        Sel s = now(set);
        BitSet[] kept = new BitSet[es.lanes.size()];
        int[] sizes = new int[kept.length];
        for (int li = 0; li < kept.length; li++) {
            Lane l = es.lanes.get(li);
            BitSet b = s.forHead(li);
            // a lane's compensation entry, if any, is its last
            int size = sizes[li] = l.size();
            boolean dropCompensation = !s.compensation() && size > 0 && l.isCompensation(size - 1) && b.get(size - 1);
            if (dropCompensation || b.length() > size) {
                // a set's bits are never changed once made (they are shared, not copied): the copy is changed
                b = (BitSet) b.clone();
                if (dropCompensation) b.clear(size - 1);
                b.clear(size, Math.max(size, b.length()));
            }
            kept[li] = b;
        }
        retain(kept, sizes);
    }

    @Override
    public void evict(Object set) {
        es.dropPageCache();
        Sel s = now(set);
        BitSet[] kept = new BitSet[es.lanes.size()];
        int[] sizes = new int[kept.length];
        for (int li = 0; li < kept.length; li++) {
            Lane l = es.lanes.get(li);
            BitSet b = kept[li] = new BitSet();
            b.set(0, sizes[li] = l.size());
            b.andNot(s.forHead(li));
        }
        retain(kept, sizes);
    }

    /** Lane i keeps exactly the entries {@code kept[i]} of its first {@code sizes[i]}: a new epoch. */
    private void retain(BitSet[] kept, int[] sizes) {
        beforeRetain(kept, sizes);
        for (int li = 0; li < kept.length; li++) if (kept[li].cardinality() < sizes[li]) es.lanes.get(li).retain(kept[li]);
        changed();
    }

    @Override
    public void attend(Object set) {
        Sel s = now(set);
        BitSet[] chosen = new BitSet[es.lanes.size()];
        int[] versions = new int[chosen.length];
        int[][][] heads = s.queryHeads() ? new int[chosen.length][][] : null;
        for (int li = 0; li < chosen.length; li++) {
            Lane l = es.lanes.get(li);
            versions[li] = l.entriesVersion();
            if (heads == null) {
                chosen[li] = s.forHead(Math.min(li, s.heads() - 1)).get(0, l.size());
                continue;
            }
            // one set per query head (a lane selects alone): the lane reads their union, each head its own
            chosen[li] = new BitSet();
            heads[li] = new int[s.heads()][];
            for (int gi = 0; gi < s.heads(); gi++) {
                BitSet b = s.forHead(gi).get(0, l.size());
                chosen[li].or(b);
                heads[li][gi] = b.stream().map(l::position).sorted().toArray();
            }
        }
        es.attend = chosen;
        es.attendVersions = versions;
        es.attendPositions = null;
        es.attendHeadPositions = heads;
    }

    /**
     * Folds each source entry not in {@code dest} into its most similar destination entry (cosine of keys or values;
     * nearest position; ties to the later position), or all sources into the compensation entry: weighted means of
     * keys and values by (count x weight), counts adding up, the result stored again at the entry's format.
     */
    @Override
    public void merge(Object source, Object dest, Instr.MergeBy by, double[] weight, int weightAxes) {
        es.dropPageCache();
        Sel srcSel = now(source), dstSel = now(dest);
        beforeChange();
        List<Axis> wAxes = weight == null ? List.of() : Axis.of(weightAxes);
        for (int li = 0; li < es.lanes.size(); li++) {
            Lane l = es.lanes.get(li);
            BitSet src = (BitSet) srcSel.forHead(li).clone();
            BitSet dst = dstSel.forHead(li);
            src.andNot(dst);
            src.clear(l.size(), Math.max(l.size(), src.length()));
            for (int i = 0; i < l.size(); i++) if (l.isCompensation(i)) src.clear(i);
            if (src.isEmpty()) continue;
            double[] w = new double[l.size()];
            int wn = weight == null ? 0 : (wAxes.contains(Axis.HEAD) ? weight.length / es.lanes.size() : weight.length);
            for (int i = 0; i < w.length; i++) {
                w[i] = weight == null || i >= wn ? 1 : Lane.mergeWeight(weight[(es.perLayer && wAxes.contains(Axis.HEAD) ? li * wn : 0) + i]);
            }
            boolean onlyComp = true;
            for (int i = dst.nextSetBit(0); i >= 0 && i < l.size(); i = dst.nextSetBit(i + 1)) if (!l.isCompensation(i)) onlyComp = false;
            if (dstSel.compensation() && onlyComp) {
                int comp = -1;
                for (int i = 0; i < l.size(); i++) if (l.isCompensation(i)) comp = i;
                if (comp < 0) {
                    int first = src.nextSetBit(0);
                    l.appendCompensation(l.addedAtStep(first), new float[es.d], new float[es.d], 0);
                    comp = l.size() - 1;
                }
                int[] sources = src.stream().toArray();
                if (foldedElsewhere(l, sources, l.mergeElsewhere(sources, new int[] {comp}, Lane.PageSource.MERGE_ALL, w))) continue;
                for (int i = src.nextSetBit(0); i >= 0; i = src.nextSetBit(i + 1)) fold(l, comp, i, 1, w[i]);
                continue;
            }
            int[] sources = src.stream().toArray(), dests = dst.stream().filter(j -> j < l.size()).toArray();
            int code = by == Instr.MergeBy.NEAREST ? Lane.PageSource.MERGE_NEAREST
                    : by == Instr.MergeBy.COSINE_V ? Lane.PageSource.MERGE_COSINE_VALUES : Lane.PageSource.MERGE_COSINE_KEYS;
            if (foldedElsewhere(l, sources, l.mergeElsewhere(sources, dests, code, w))) continue;
            float[] a = new float[es.d], b = new float[es.d];
            Lane.Part part = by == Instr.MergeBy.COSINE_V ? Lane.Part.VALUES : Lane.Part.KEYS;
            for (int i = src.nextSetBit(0); i >= 0; i = src.nextSetBit(i + 1)) {
                int best = -1;
                double bestScore = Double.NEGATIVE_INFINITY;
                if (by != Instr.MergeBy.NEAREST) l.read(i, part, a, 0);
                for (int j = dst.nextSetBit(0); j >= 0 && j < l.size(); j = dst.nextSetBit(j + 1)) {
                    double score;
                    if (by == Instr.MergeBy.NEAREST) {
                        score = -Math.abs(l.position(j) - l.position(i));
                    } else {
                        l.read(j, part, b, 0);
                        score = Lane.cosine(a, b);
                    }
                    if (score >= bestScore) {
                        bestScore = score;
                        best = j;
                    }
                }
                if (best >= 0) fold(l, best, i, w[best], w[i]);
            }
        }
        changed();
    }

    /**
     * Where the lane's holder made the merge (its rows are kept on a device, {@link Lane#mergeElsewhere}): the counts
     * add up here, in the sources' order, as {@link #fold} adds them. False where it did not ({@code best} null).
     */
    private static boolean foldedElsewhere(Lane l, int[] sources, int[] best) {
        if (best == null) return false;
        for (int k = 0; k < sources.length; k++) if (best[k] >= 0) l.setCount(best[k], l.count(best[k]) + l.count(sources[k]));
        return true;
    }

    /** Folds entry {@code from} into entry {@code into} of lane {@code l}, and stores {@code into} again at its format. */
    private void fold(Lane l, int into, int from, double wInto, double wFrom) {
        int d = es.d;
        float[] x = new float[d], y = new float[d];
        for (Lane.Part part : Lane.Part.values()) {
            l.read(into, part, x, 0);
            l.read(from, part, y, 0);
            Lane.mergeRow(x, y, l.count(into), l.count(from), wInto, wFrom);
            QuantSpec spec = l.spec(into, part);
            // an entry in a per-channel block leaves it and returns to the host precision
            if (spec.quantised() && spec.axis() == QuantSpec.Axis.CHANNEL) l.restore(into, part, l.hostSpec());
            l.overwrite(into, part, x, 0);
        }
        l.setCount(into, l.count(into) + l.count(from));
    }

    @Override
    public void store(boolean keys, boolean values, Instr.Format f, long bits, Instr.QuantAxis axis, long group, Instr.Scope sc, Object set) {
        Sel given = set == null ? null : now(set), last = es.lastStoreScope == null ? null : es.lastStoreView.now(es.lastStoreScope).at(epoch());
        boolean compensation = sc == Instr.Scope.ALL || sc == Instr.Scope.FOR && given.compensation();
        Sel covered = coveredRuns(sc, given, last, compensation);
        if (covered == null) {
            Sel all = (Sel) all();
            BitSet[] each = new BitSet[es.lanes.size()];
            for (int li = 0; li < each.length; li++) {
                each[li] = sc.covered(all.forHead(li), given == null ? null : given.forHead(li), last == null ? null : last.forHead(li));
            }
            covered = sel(Axis.TOKEN, each, compensation);
        }
        if (sc.remembered()) {
            es.lastStoreScope = covered;
            es.lastStoreView = this;
        }
        Precision p = Precision.of(f, (int) bits);
        boolean changedRows = false;
        for (int li = 0; li < es.lanes.size(); li++) {
            Lane l = es.lanes.get(li);
            for (Lane.Part lp : PARTS) {
                if (!(lp == Lane.Part.KEYS ? keys : values)) continue;
                // the covered regular entries not yet at the precision, in order (entries already at it are left as
                // they are, their group too)
                boolean blocks = p.isInteger() && axis == Instr.QuantAxis.CHANNEL;
                int gs = group > 0 ? (int) group : 32;
                // per channel, only full blocks are stored: fewer targets than a block are none
                int atLeast = blocks ? gs : 1;
                int[] targets = covered.isRuns() ? notAt(l, covered.run(li), lp, p, atLeast) : notAt(l, covered.forHead(li), lp, p, atLeast);
                if (blocks) {
                    // per channel: blocks of g consecutive targets
                    QuantSpec block = new QuantSpec(p, QuantSpec.Axis.CHANNEL, gs);
                    for (int from = 0; from + gs <= targets.length; from += gs) {
                        l.packBlock(Arrays.copyOfRange(targets, from, from + gs), lp, block);
                        changedRows = true;
                    }
                    continue;
                }
                QuantSpec want = p.isInteger() ? new QuantSpec(p, QuantSpec.Axis.TOKEN, group > 0 ? (int) group : es.d) : QuantSpec.of(p);
                for (int i : targets) l.restore(i, lp, want);
                changedRows |= targets.length > 0;
            }
        }
        if (changedRows) es.dropPageCache();
    }

    /**
     * A store's covered entries as one run per lane ({@link Instr.Scope#coveredRun}) when its set and the remembered
     * scope are runs (KIVI's {@code except last(r)}: the run before the window), or null.
     */
    private Sel coveredRuns(Instr.Scope sc, Sel given, Sel last, boolean compensation) {
        if (given != null && !given.isRuns() || last != null && !last.isRuns()) return null;
        long[] out = new long[es.lanes.size()];
        for (int li = 0; li < out.length; li++) {
            out[li] = sc.coveredRun(es.lanes.get(li).size(), given == null ? Runs.NONE : given.run(li), last == null ? Runs.NONE : last.run(li));
            if (out[li] == Runs.NONE) return null;
        }
        return Sel.ofRuns(Axis.TOKEN, out, compensation, epoch());
    }

    /**
     * Per chain of the lane, whether it holds rows at precision {@code p}: an entry's part is at p when its chain is,
     * so the chains are asked once and then one table read per entry answers.
     */
    private static boolean[] chainsAt(Lane l, Precision p) {
        boolean[] at = new boolean[l.chainCount()];
        for (int c = 0; c < at.length; c++) at[c] = l.chainSpec(c).precision() == p;
        return at;
    }

    /** Covered entries above a lane's prefix at the store's precision that {@link #notAt} reads one by one rather than count. */
    private static final int DIRECT_SCAN = 64;
    private static final int[] NONE = {};

    /** {@link #notAt} of the entries of one run: the counts come from the run's bounds, not from bits. */
    static int[] notAt(Lane l, long run, Lane.Part part, Precision p) {
        return notAt(l, run, part, p, 1);
    }

    /** {@link #notAt} of one run, or none when fewer than {@code atLeast} could be: nothing is allocated for none. */
    private static int[] notAt(Lane l, long run, Lane.Part part, Precision p, int atLeast) {
        int size = l.size(), from = Math.max(Runs.from(run), l.prefixAt(part, p)), to = Math.min(Runs.to(run), size);
        if (to - from < atLeast) return NONE;
        if (to - from > DIRECT_SCAN) return notAt(l, new long[] {run}, 1, part, p, atLeast);
        int[] out = new int[to - from];
        int k = scanNotAt(l, from, to, part, p, out, 0);
        return k == out.length ? out : Arrays.copyOf(out, k);
    }

    /**
     * The entries of {@code [from, to)} whose {@code part} is not at {@code p} (the compensation entry never), read one
     * by one into {@code out} from {@code k}: the direct reading above a lane's prefix. Returns the new count.
     */
    private static int scanNotAt(Lane l, int from, int to, Lane.Part part, Precision p, int[] out, int k) {
        int size = l.size();
        for (int i = from; i < to; i++) if (!l.isAt(i, part, p) && !(i == size - 1 && l.isCompensation(i))) out[k++] = i;
        return k;
    }

    static int[] notAt(Lane l, BitSet cov, Lane.Part part, Precision p) {
        return notAt(l, cov, part, p, 1);
    }

    /**
     * The regular entries of {@code cov} whose {@code part} is not at precision {@code p}, in order. Their number is
     * known from the lane's per-format counts and the entries outside {@code cov}, so the scan goes from the last
     * covered entry down and stops when it has them all: a standing {@code store ... except last(r)} finds the one
     * entry that left the window without reading the thousands already stored.
     */
    static int[] notAt(Lane l, BitSet cov, Lane.Part part, Precision p, int atLeast) {
        int size = l.size(), n = 0;
        long[] runs = new long[4];
        for (int a = cov.nextSetBit(0); a >= 0 && a < size; ) {
            int b = Math.min(size, cov.nextClearBit(a));
            if (n == runs.length) runs = Arrays.copyOf(runs, 2 * n);
            runs[n++] = Runs.of(a, b);
            a = b >= size ? -1 : cov.nextSetBit(b);
        }
        return notAt(l, runs, n, part, p, atLeast);
    }

    /**
     * {@link #notAt} of the entries of the first {@code count} of {@code runs} (in order, disjoint), or none when fewer
     * than {@code atLeast} could be (what a per-channel store can use comes in whole blocks).
     */
    private static int[] notAt(Lane l, long[] runs, int count, Lane.Part part, Precision p, int atLeast) {
        int size = l.size();
        // the entries below the lane's prefix at p are at p: when few covered ones lie above it (a standing store's
        // step: the entry that left the window, a block's keys), they are read one by one and nothing is counted
        int above = l.prefixAt(part, p), span = 0;
        for (int r = 0; r < count; r++) span += Math.max(0, Math.min(Runs.to(runs[r]), size) - Math.max(Runs.from(runs[r]), above));
        if (span < atLeast) return NONE;
        if (span <= DIRECT_SCAN) {
            int[] out = new int[span];
            int k = 0;
            for (int r = 0; r < count; r++) k = scanNotAt(l, Math.max(Runs.from(runs[r]), above), Math.min(Runs.to(runs[r]), size), part, p, out, k);
            return k == span ? out : Arrays.copyOf(out, k);
        }
        int comp = size > 0 && l.isCompensation(size - 1) ? size - 1 : -1;
        int[] chain = l.chainTable();
        boolean[] chainAt = chainsAt(l, p);
        int po = part.ordinal();
        int covered = 0, atP = l.countAt(part, p), outsideAtP = 0, end = 0;
        if (comp >= 0 && chainAt[chain[comp * 2 + po]]) atP--;
        // the entries outside the runs, gap by gap (a standing store's window is the last gap), counted by vector
        // compares of the chain table (a KIVI step's window of 128 entries, twice, was most of its store's own cost)
        for (int r = 0; r < count; r++) {
            int to = Math.min(Runs.to(runs[r]), size), from = Math.min(Runs.from(runs[r]), to);
            covered += to - from - (comp >= from && comp < to ? 1 : 0);
            if (end < from) outsideAtP += Screens.BEST.countIn(chain, end, from, po, chainAt);
            if (comp >= end && comp < from && chainAt[chain[comp * 2 + po]]) outsideAtP--;
            end = Math.max(end, to);
        }
        outsideAtP += Screens.BEST.countIn(chain, end, size, po, chainAt);
        if (comp >= end && chainAt[chain[comp * 2 + po]]) outsideAtP--;
        int missing = covered - (atP - outsideAtP);
        int[] out = new int[missing];
        int k = missing;
        for (int r = count - 1; r >= 0 && k > 0; r--) {
            int to = Math.min(Runs.to(runs[r]), size), from = Math.min(Runs.from(runs[r]), to);
            for (int i = to - 1; i >= from && k > 0; i--) if (i != comp && !chainAt[chain[i * 2 + po]]) out[--k] = i;
        }
        if (k != 0) throw new IllegalStateException("lane format counts disagree with its entries");
        return out;
    }

    /**
     * What a per-page state's initialiser sees: the entries of one page of one lane, as if they were the lane (keys,
     * values, positions, ages and scalars). It has no effects and no sets.
     */
    static final class PageView implements LaneContext {
        private final EventState es;
        private final Lane lane;
        private final int[] entries;
        private final int kvHead;

        PageView(EventState es, int li, int[] entries) {
            this.es = es;
            this.lane = es.lanes.get(li);
            this.entries = entries;
            this.kvHead = es.kvHeads[li];
        }

        @Override
        public int extent(Axis axis) {
            return switch (axis) {
                case TOKEN -> entries.length;
                case CHANNEL -> es.d;
                case QUERY -> es.observed.length;
                case GROUP -> es.g;
                case HEAD -> 1;
                case LAYER -> es.runner.program.shape().layers();
                case PAGE -> throw new IllegalStateException("a per-page state's initialiser cannot use the lane's pages");
            };
        }

        @Override
        public double[] signal(Signal what, int axes) {
            int n = entries.length, d = es.d;
            return switch (what) {
                case K, V -> {
                    double[] data = new double[n * d];
                    float[] row = new float[d];
                    for (int j = 0; j < n; j++) {
                        lane.read(entries[j], what == Signal.K ? Lane.Part.KEYS : Lane.Part.VALUES, row, 0);
                        for (int c = 0; c < d; c++) data[j * d + c] = row[c];
                    }
                    yield data;
                }
                case POS, AGE, INDEX -> {
                    double[] data = new double[n];
                    for (int j = 0; j < n; j++) {
                        data[j] = what == Signal.POS ? lane.position(entries[j]) : what == Signal.INDEX ? entries[j] : es.step.decodeStep() - lane.addedAtStep(entries[j]);
                    }
                    yield data;
                }
                case LEN -> new double[] {n};
                case CONTEXT -> new double[] {es.step.context()};
                case STEP -> new double[] {es.step.decodeStep()};
                case LAYER -> new double[] {es.layer};
                case HEAD -> new double[] {kvHead};
                case HEAD_DIM -> new double[] {d};
                case CHANNEL -> {
                    double[] c = new double[d];
                    for (int i = 0; i < d; i++) c[i] = i;
                    yield c;
                }
                case GROUP -> new double[] {es.g};
                default -> throw new IllegalStateException("a per-page state's initialiser cannot read " + what.word());
            };
        }

        @Override
        public double[] state(String name, int axes) {
            throw new IllegalStateException("a per-page state's initialiser cannot read state " + name);
        }

        @Override
        public double[] kernelStat(Signal signal, Op.Red fn, int over, int axes) {
            throw new IllegalStateException("a per-page state's initialiser cannot read a statistic of " + signal.word());
        }

        @Override
        public double[] modelStat(Op.CellStat stat, String state, int axes) {
            throw new IllegalStateException("a per-page state's initialiser cannot read state " + state);
        }

        @Override
        public int epoch() {
            return 0;
        }

        @Override
        public double[] rebase(double[] values, int axes, int epoch) {
            return values;
        }

        private static IllegalStateException pure(String what) {
            return new IllegalStateException("a per-page state's initialiser computes a value only: " + what + " is not allowed there");
        }

        @Override
        public Object all() {
            throw pure("all");
        }

        @Override
        public double[] prim(Op.PrimFn fn, double[] values, int valueAxes, Object set, Object rows, double arg, int axes) {
            throw pure(fn.word());
        }

        @Override
        public Object primSet(Op.PrimFn fn, double[] values, int valueAxes, double arg) {
            throw pure(fn.word());
        }

        @Override
        public Object compensation() {
            throw pure("compensation");
        }

        @Override
        public Object range(boolean last, long count) {
            throw pure(last ? "last" : "first");
        }

        @Override
        public Object pages(Object pageSet) {
            throw pure("pages");
        }

        @Override
        public Object where(double[] predicate, int axes) {
            throw pure("where");
        }

        @Override
        public Object rank(double[] score, int axes, boolean top, long count, long floor, Axis domain, Op.Algorithm algorithm) {
            throw pure(top ? "top" : "bottom");
        }

        @Override
        public Object setOp(Op.SetFn fn, Object a, Object b) {
            throw pure(fn.word());
        }

        @Override
        public Object withinSet(Object a, Object set) {
            throw pure("within");
        }

        @Override
        public double[] within(double[] values, int axes, Object set) {
            throw pure("within");
        }

        @Override
        public double quantile(double[] values, int axes, double p) {
            return quantileOf(values, p);
        }

        @Override
        public void keep(Object set) {
            throw pure("keep");
        }

        @Override
        public void evict(Object set) {
            throw pure("evict");
        }

        @Override
        public void attend(Object set) {
            throw pure("attend");
        }

        @Override
        public void merge(Object source, Object dest, Instr.MergeBy by, double[] weight, int weightAxes) {
            throw pure("merge");
        }

        @Override
        public void store(boolean keys, boolean values, Instr.Format format, long bits, Instr.QuantAxis axis, long group, Instr.Scope scope, Object set) {
            throw pure("store");
        }

        @Override
        public void writeState(String name, Instr.Assign op, double[] value, int axes) {
            throw pure("a state write");
        }
    }
}
