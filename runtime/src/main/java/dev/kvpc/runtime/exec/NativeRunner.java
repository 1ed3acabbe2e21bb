package dev.kvpc.runtime.exec;

import dev.kvpc.ir.Axis;
import dev.kvpc.ir.Computation;
import dev.kvpc.ir.Instr;
import dev.kvpc.ir.IrWalk;
import dev.kvpc.ir.Op;
import dev.kvpc.ir.PolicyIr;
import dev.kvpc.ir.Signal;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.Ty;
import dev.kvpc.ir.loop.LoopLowering;
import dev.kvpc.runtime.AttentionVariant;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.policy.CompiledLaneClass;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;

/**
 * Compiled policies run on the runtime's own lanes, without shadow copies: each event's compiled kernels run
 * against a {@link LaneView} that reads keys, values, positions and states where the lanes hold them and applies
 * keeps, evictions and stores to the lanes directly. An event sets the per-token state of new entries, then follows
 * {@link EventOrder}, as the reference interpreter does.
 */
public final class NativeRunner implements PolicyRunner {
    final Specialized program;
    private final List<ClassInfo> infos = new ArrayList<>();
    private final AttentionVariant variant;
    /** Per-lane states of each lane (scope lane), kept beside the runtime's lanes. */
    final Map<Lane, Map<String, double[]>> laneStates = Collections.synchronizedMap(new WeakHashMap<>());
    /** Per lane: per-page state values by state, with the positions each page was computed from. */
    final Map<Lane, Map<String, PageStates>> pageValues = Collections.synchronizedMap(new WeakHashMap<>());
    /** Per sequence ({@link Step#sequence}; null: the one sequence of a host that runs one), per policy: model states. */
    private final Map<Object, Map<String, ModelCells>> modelCells = Collections.synchronizedMap(new WeakHashMap<>());
    private static final Object ONE_SEQUENCE = new Object();

    /** Per lane: an array reused from event to event for the kernel's column sums. */
    final Map<Lane, Scratch> scratch = Collections.synchronizedMap(new WeakHashMap<>());

    static final class Scratch {
        float[] sums = new float[0];
    }

    /** What one page's state was computed from: valid while its entries and the lane's row version are these. */
    record PageValue(int[] positions, long version) {}

    /**
     * One per-page state of one lane: what each page was computed from, the values of all pages ([page][width], read
     * by compiled code in place), the pages changed since the lane's published copy, and whether the number of pages
     * changed since then.
     */
    static final class PageStates {
        final List<PageValue> pages = new ArrayList<>();
        double[] values = new double[0];
        /**
         * The lane's order version, row version and regular entries when every page was last checked against its
         * entries: full pages within those entries are unchanged while neither version has moved.
         */
        int checkedOrder = -1, checkedRegular;
        long checkedRows = -1;
        final BitSet unpublished = new BitSet();
        boolean reshaped = true;
        /** Whether {@link #values} was handed to compiled code during the current event. */
        boolean handedOut;
    }

    PageStates pageStates(Lane lane, String state) {
        return pageValues.computeIfAbsent(lane, x -> new HashMap<>()).computeIfAbsent(state, x -> new PageStates());
    }

    @Override
    public long laneStateBytes(Lane lane) {
        Map<String, double[]> s = laneStates.get(lane);
        if (s == null) return 0;
        // asked between steps, when no event writes the lane's values
        long n = 0;
        for (double[] v : s.values()) n += v.length;
        return n * dev.kvpc.ir.Ty.Elem.STATE_BYTES;
    }

    /**
     * What the event schedule needs of one lane class. {@code fusable}: every attention statistic the class reads is
     * the kernel's column sum (attention summed over query and group); with fused statistics on, such a class takes
     * them from the kernel instead of attention rows. {@code tokenStates}, {@code pageStates}: whether it declares
     * per-token and per-page states (an event of a class with none skips their work); {@code laneInits}: whether a
     * per-lane state has an init value; {@code modelStates}: whether it declares per model state; {@code settlesLater}:
     * whether its events settle after the step's last layer ({@link EventOrder#settlesAfterLastLayer}).
     */
    record ClassInfo(PolicyIr policy, CompiledLaneClass code, int[] body, int[] limit, long[] fixedLimit, boolean[] attends, Map<String, Integer> inits,
                     int standing, Map<PolicyIr.Event, int[]> observe, boolean fusable,
                     java.util.Set<String> pageCacheable, java.util.Set<PolicyIr.Event> attentionAt, boolean tokenStates, boolean pageStates,
                     boolean laneInits, boolean modelStates, boolean settlesLater) {
        /** The state declared as {@code name}. */
        PolicyIr.State state(String name) {
            for (PolicyIr.State s : policy.states()) if (s.name().equals(name)) return s;
            throw new IllegalStateException("unknown state " + name);
        }
    }

    /** {@link ClassInfo#fixedLimit} of a handler whose limit is computed at each event. */
    private static final long NOT_FIXED = Long.MIN_VALUE;

    /** Whether column sums come from the runtime's attention kernel (float, its order) rather than recomputed rows. */
    final boolean fused;

    /**
     * Fused statistics on: what hosts run. {@code variant}: the program's attention variant compiled (null for
     * standard attention).
     */
    public NativeRunner(Specialized program, List<CompiledLaneClass> classes, AttentionVariant variant) {
        this(program, classes, variant, true);
    }

    /**
     * A runner for a compiled policy as a jar's entry class gives it: its program (parsed from its IR text), its
     * lane classes and its attention variant.
     *
     * @throws IllegalArgumentException when the program text does not parse or does not match the compiled classes
     */
    public static NativeRunner of(dev.kvpc.runtime.policy.CompiledPolicy policy) {
        return of(policy, Specialized.parse(policy.program()));
    }

    /** As {@link #of(dev.kvpc.runtime.policy.CompiledPolicy)}, with the policy's program already read from it. */
    public static NativeRunner of(dev.kvpc.runtime.policy.CompiledPolicy policy, Specialized program) {
        if (program.classes().size() != policy.laneClasses()) {
            throw new IllegalArgumentException("compiled policy has " + policy.laneClasses() + " lane classes, its program " + program.classes().size());
        }
        boolean standard = program.variant() == null || program.variant().name().equals("standard");
        AttentionVariant variant = standard ? null : policy.variant();
        if (!standard && variant == null) {
            throw new IllegalArgumentException("compiled policy uses attention variant " + program.variant().name() + " but carries no compiled variant");
        }
        List<CompiledLaneClass> classes = new ArrayList<>();
        for (int c = 0; c < policy.laneClasses(); c++) classes.add(policy.laneClass(c));
        return new NativeRunner(program, classes, variant);
    }

    /**
     * With {@code fused} off, every attention statistic is computed from attention rows in double exactly as the
     * reference interpreter computes it (the differential tests); on, column sums are the kernel's own, accumulated
     * in float while it attends, which costs nothing extra and differs from the interpreter's by rounding.
     */
    public NativeRunner(Specialized program, List<CompiledLaneClass> classes, AttentionVariant variant, boolean fused) {
        this.fused = fused;
        this.program = program;
        this.variant = variant;
        for (int c = 0; c < program.classes().size(); c++) infos.add(info(program.classes().get(c), classes.get(c)));
    }

    private static ClassInfo info(PolicyIr p, CompiledLaneClass code) {
        Map<String, Integer> index = new HashMap<>();
        String[] names = code.kernels();
        for (int i = 0; i < names.length; i++) index.put(names[i], i);
        int n = p.handlers().size();
        int[] body = new int[n], limit = new int[n];
        long[] fixedLimit = new long[n];
        boolean[] attends = new boolean[n];
        for (int i = 0; i < n; i++) {
            PolicyIr.Handler h = p.handlers().get(i);
            body[i] = kernel(index, LoopLowering.bodyName(i, h), code);
            limit[i] = h.limit() == null ? -1 : kernel(index, LoopLowering.limitName(i, h), code);
            // a limit that specialisation made a constant (overflow(budget)) is that number: no kernel runs for it
            Double fixed = h.limit() == null ? null : IrWalk.constant(h.limit());
            fixedLimit[i] = fixed == null ? NOT_FIXED : (long) (double) fixed;
            attends[i] = IrWalk.attends(h.body());
        }
        Map<String, Integer> inits = new HashMap<>();
        for (PolicyIr.State s : p.states()) if (s.init() != null) inits.put(s.name(), kernel(index, LoopLowering.initName(s), code));
        int standing = p.standing().instrs().isEmpty() ? -1 : kernel(index, LoopLowering.STANDING, code);
        Map<PolicyIr.Event, int[]> observe = new HashMap<>();
        for (PolicyIr.Observe o : p.observes()) {
            if (o.end() == null) continue;
            observe.put(o.at(), new int[] {o.end() == Op.End.FIRST ? 0 : 1, (int) constant(o.count())});
        }
        java.util.Set<String> cacheable = new java.util.HashSet<>();
        for (PolicyIr.State s : p.states()) if (s.scope() == PolicyIr.StateScope.PAGE && s.init() != null && rowsOnly(s.init())) cacheable.add(s.name());
        boolean tokenStates = false, pageStates = false, laneInits = false, modelStates = false;
        for (PolicyIr.State s : p.states()) {
            modelStates |= s.scope() == PolicyIr.StateScope.MODEL;
            tokenStates |= s.scope() == PolicyIr.StateScope.TOKEN;
            pageStates |= s.scope() == PolicyIr.StateScope.PAGE;
            laneInits |= s.scope() == PolicyIr.StateScope.LANE && s.init() != null;
        }
        return new ClassInfo(p, code, body, limit, fixedLimit, attends, inits, standing, observe, fusable(p), cacheable,
                attentionAt(p, attends), tokenStates, pageStates, laneInits, modelStates, EventOrder.settlesAfterLastLayer(p));
    }

    /**
     * The steps at whose end some code that may run then reads the step's attention: only those pay for computing it
     * (SnapKV reads it at prefill, not at each decode step). As an event's finish runs handlers: at prefill and chunk
     * those of the step, at decode those of decode that do not restrict attention, and at any step {@code every} and
     * overflow handlers, and standing code.
     */
    public static java.util.Set<PolicyIr.Event> attentionAt(PolicyIr p, boolean[] attends) {
        java.util.Set<PolicyIr.Event> at = java.util.EnumSet.noneOf(PolicyIr.Event.class);
        if (!IrWalk.readsAttention(p)) return at;
        boolean always = IrWalk.readsAttention(p.standing());
        for (PolicyIr.Event e : List.of(PolicyIr.Event.PREFILL, PolicyIr.Event.CHUNK, PolicyIr.Event.DECODE)) {
            boolean need = always;
            for (int i = 0; i < p.handlers().size() && !need; i++) {
                PolicyIr.Handler h = p.handlers().get(i);
                boolean reads = IrWalk.readsAttention(h.body()) || h.limit() != null && IrWalk.readsAttention(h.limit().block());
                boolean runs = e == PolicyIr.Event.DECODE ? !attends[i] && h.events().contains(e) : h.events().contains(e);
                runs |= h.events().contains(PolicyIr.Event.EVERY) && e == PolicyIr.Event.DECODE || h.events().contains(PolicyIr.Event.OVERFLOW);
                need = reads && runs;
            }
            if (need) at.add(e);
        }
        return at;
    }

    private static int kernel(Map<String, Integer> index, String name, CompiledLaneClass code) {
        Integer k = index.get(name);
        if (k == null) throw new IllegalArgumentException("compiled lane class " + code.policy() + " has no kernel " + name);
        return k;
    }

    /**
     * Whether a computation depends only on the rows and positions of the entries it is run over (and the model's
     * shape): then a per-page value stays valid while the page's entries and their rows do.
     */
    static boolean rowsOnly(Computation c) {
        java.util.Set<Signal> allowed = java.util.EnumSet.of(Signal.K, Signal.V, Signal.POS, Signal.LEN, Signal.HEAD_DIM, Signal.GROUP, Signal.HEADS,
                Signal.LAYERS, Signal.LAYER, Signal.HEAD);
        for (Instr i : c.block().instrs()) {
            if (!(i instanceof Instr.Def d)) return false;
            if (d.op() instanceof Op.Signal sg && !allowed.contains(sg.signal())) return false;
            if (d.op() instanceof Op.StateRead || d.op() instanceof Op.KernelStat || d.op() instanceof Op.Param || d.op() instanceof Op.Table) return false;
        }
        return true;
    }

    /** Whether a class reads a statistic of the whole prompt's attention ({@code over: prompt}). */
    static boolean promptStats(PolicyIr p) {
        boolean[] found = {false};
        IrWalk.forEachInstr(p, i -> {
            if (i instanceof Instr.Def d && d.op() instanceof Op.KernelStat k && k.input() == Signal.PROMPT_ATTN) found[0] = true;
        });
        return found[0];
    }

    /** Reads attention only as column sums: kernelstat attn:sum over exactly query and group. */
    public static boolean fusable(PolicyIr p) {
        boolean[] ok = {true};
        IrWalk.forEachInstr(p, i -> {
            if (!(i instanceof Instr.Def d)) return;
            if (d.op() instanceof Op.Signal sg && sg.signal().attention()) ok[0] = false;
            if (d.op() instanceof Op.KernelStat k && !fromColumnSums(k)) ok[0] = false;
        });
        return ok[0];
    }

    /**
     * Whether the kernel's per-lane column sums give the statistic: a sum or mean of attn over the query and group
     * axes (H2O), and over the layer's heads as well (TOVA's mean over query, group and head).
     */
    static boolean fromColumnSums(Op.KernelStat k) {
        return (k.input() == Signal.ATTN || k.input() == Signal.PROMPT_ATTN) && (k.fn() == Op.Red.SUM || k.fn() == Op.Red.MEAN) && k.over().contains(Axis.QUERY)
                && k.over().contains(Axis.GROUP) && java.util.Set.of(Axis.QUERY, Axis.GROUP, Axis.HEAD).containsAll(k.over());
    }

    static double constant(Computation c) {
        Double v = IrWalk.constant(c);
        if (v == null) throw new IllegalArgumentException("value %" + c.result() + " is not a constant after specialisation");
        return v;
    }

    ClassInfo info(int laneClass) {
        return infos.get(laneClass);
    }

    AttentionVariant runtimeVariant() {
        return variant;
    }

    @Override
    public int laneClass(int layer, int kvHead) {
        return program.classOf()[layer][kvHead];
    }

    @Override
    public boolean perLayer(int laneClass) {
        return program.classes().get(laneClass).selection() == PolicyIr.Selection.LAYER;
    }

    @Override
    public AttentionVariant variant() {
        return variant;
    }

    @Override
    public dev.kvpc.ir.AttentionIr variantIr() {
        return variant == null ? null : program.variant();
    }

    @Override
    public boolean cachePositions(int laneClass) {
        return program.classes().get(laneClass).positions() == PolicyIr.Positions.CACHE;
    }

    @Override
    public boolean settlesAfterLastLayer(int laneClass) {
        return infos.get(laneClass).settlesLater();
    }

    /**
     * The model states of a class in a sequence: shared by every class specialised from the same policy (a policy's
     * lanes fall into several classes where specialisation tells layers apart).
     */
    private ModelCells modelCells(Object sequence, int laneClass) {
        Map<String, ModelCells> byPolicy = modelCells.computeIfAbsent(sequence == null ? ONE_SEQUENCE : sequence, k -> new HashMap<>());
        return byPolicy.computeIfAbsent(program.classes().get(laneClass).name(), k -> new ModelCells(program.shape().layers(), program.shape().kvHeads()));
    }

    @Override
    public Event open(int laneClass, Step step, int layer, int[] kvHeads, List<Lane> lanes) {
        ClassInfo ci = infos.get(laneClass);
        PolicyIr.Event event = switch (step.kind()) {
            case PREFILL -> PolicyIr.Event.PREFILL;
            case CHUNK -> PolicyIr.Event.CHUNK;
            case DECODE -> PolicyIr.Event.DECODE;
        };
        int[] positions = step.positions();
        int[] observed = positions;
        int[] obs = ci.observe().get(event);
        if (obs != null) {
            int n = Math.min(positions.length, Math.max(0, obs[1]));
            observed = obs[0] == 0 ? java.util.Arrays.copyOfRange(positions, 0, n) : java.util.Arrays.copyOfRange(positions, positions.length - n, positions.length);
        }
        LaneView.EventState es = new LaneView.EventState(this, ci, step, layer, kvHeads, lanes, observed);
        if (ci.modelStates()) es.model = modelCells(step.sequence(), laneClass);
        EventRun run = new EventRun(ci, es, event, step.decodeStep(), positions.length);
        EventOrder.open(ci.policy().handlers(), ci.attends(), event, run);
        // the kernel's column sums serve when the class reads no other statistic and observes every query
        es.fusedSums = fused && ci.attentionAt().contains(event) && ci.fusable() && obs == null;
        // sums over the whole prompt come from the kernel's column sums even where an observe clause keeps rows
        es.promptSums = fused && ci.attentionAt().contains(event) && promptStats(ci.policy());
        return run;
    }

    /**
     * One event as this runner does its parts ({@link EventOrder.Steps}): compiled kernels over a {@link LaneView} of
     * the event. It is also the event the host holds.
     */
    private static final class EventRun implements Event, EventOrder.Steps {
        private final ClassInfo ci;
        private final LaneView.EventState es;
        private final PolicyIr.Event event;
        private final int decodeStep, appended;

        EventRun(ClassInfo ci, LaneView.EventState es, PolicyIr.Event event, int decodeStep, int appended) {
            this.ci = ci;
            this.es = es;
            this.event = event;
            this.decodeStep = decodeStep;
            this.appended = appended;
        }

        @Override
        public void initStates() {
            if (ci.tokenStates() || ci.laneInits() || ci.modelStates()) NativeRunner.initStates(ci, es, appended);
        }

        @Override
        public BitSet[] attendSets() {
            return es.attendSets();
        }

        @Override
        public BitSet[][] queryHeadSets() {
            return es.queryHeadSets();
        }

        @Override
        public float[][] columnSums() {
            return es.fusedSums || es.promptSums ? es.columnSums() : null;
        }

        @Override
        public void finish() {
            if (ci.attentionAt().contains(event) && !es.fusedSums) es.computeAttention();
            if (ci.settlesLater()) {
                EventOrder.handlers(ci.policy().handlers(), ci.attends(), event, decodeStep, this);
                return;
            }
            EventOrder.finish(ci.policy().handlers(), ci.attends(), event, decodeStep, this);
            if (ci.pageStates()) es.publishPageStates();
        }

        @Override
        public void settle() {
            if (!ci.settlesLater()) return;
            EventOrder.settle(ci.policy().handlers(), event, this);
            if (ci.pageStates()) es.publishPageStates();
        }

        @Override
        public void body(int i) {
            es.lastStoreScope = null;
            ci.code().run(ci.body()[i], new LaneView(es));
        }

        @Override
        public long limit(int i) {
            long fixed = ci.fixedLimit()[i];
            return fixed != NOT_FIXED ? fixed : (long) ci.code().run(ci.limit()[i], new LaneView(es))[0];
        }

        @Override
        public int entries() {
            int most = 0;
            for (var l : es.lanes) most = Math.max(most, l.size());
            return most;
        }

        @Override
        public void standing() {
            if (ci.standing() >= 0) ci.code().run(ci.standing(), new LaneView(es));
        }
    }

    /**
     * Per-token state of the {@code appended} new entries: the init value (broadcast), or 0; and each per-lane state
     * with an init value that a lane of the event does not hold yet: that value.
     */
    private static void initStates(ClassInfo ci, LaneView.EventState es, int appended) {
        for (PolicyIr.State s : ci.policy().states()) {
            if (s.scope() == PolicyIr.StateScope.LANE) {
                initLaneState(ci, es, s);
                continue;
            }
            if (s.scope() == PolicyIr.StateScope.MODEL) {
                initModelState(ci, es, s);
                continue;
            }
            if (s.scope() != PolicyIr.StateScope.TOKEN) continue;
            int per = es.stateWidth(s);
            for (Lane lane : es.lanes) lane.declareState(s.name(), per);
            Integer init = ci.inits().get(s.name());
            if (init == null) continue;
            double[] v = ci.code().run(init, new LaneView(es));
            Ty.Tensor t = resultType(s.init());
            boolean overTokens = t.axes().contains(Axis.TOKEN);
            for (Lane lane : es.lanes) {
                float[] col = lane.state(s.name());
                int n = lane.size();
                for (int i = Math.max(0, n - appended); i < n; i++) {
                    if (lane.isCompensation(i)) continue;
                    for (int w = 0; w < per; w++) {
                        double x;
                        if (v.length == 1) x = v[0];
                        else if (overTokens) x = i * per + w < v.length ? v[i * per + w] : 0;
                        else x = w < v.length ? v[w] : 0;
                        col[i * per + w] = es.storeValue(s, x);
                    }
                }
            }
        }
    }

    /** A per-lane state's init value, given to the event's lanes when one of them does not hold the state yet. */
    private static void initLaneState(ClassInfo ci, LaneView.EventState es, PolicyIr.State s) {
        Integer init = ci.inits().get(s.name());
        if (init == null) return;
        boolean unset = false;
        for (Lane lane : es.lanes) {
            Map<String, double[]> held = es.runner.laneStates.get(lane);
            unset |= held == null || !held.containsKey(s.name());
        }
        if (!unset) return;
        LaneView view = new LaneView(es);
        view.writeState(s.name(), Instr.Assign.SET, ci.code().run(init, view), Axis.mask(resultType(s.init()).axes()));
    }

    /** A model state's init value, given to each cell of the event's lanes at the first event of a lane it belongs to. */
    private static void initModelState(ClassInfo ci, LaneView.EventState es, PolicyIr.State s) {
        Integer init = ci.inits().get(s.name());
        es.model.initialise(s, es.layer, es.kvHeads, init == null ? null : () -> ci.code().run(init, new LaneView(es)));
    }

    static Ty.Tensor resultType(Computation c) {
        for (Instr i : c.block().instrs()) if (i instanceof Instr.Def d && d.id() == c.result()) return (Ty.Tensor) d.type();
        throw new IllegalArgumentException("computation result %" + c.result() + " is not defined in its block");
    }
}
