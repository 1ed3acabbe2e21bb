package dev.kvpc.backend.interp;

import com.oracle.truffle.api.CallTarget;
import dev.kvpc.ir.*;
import dev.kvpc.runtime.exec.EventOrder;
import dev.kvpc.runtime.exec.ModelCells;
import dev.kvpc.runtime.trace.Trace;

import java.util.*;

/**
 * The reference semantics of kvpc: runs a specialised policy over a trace, lane by lane, and records after every
 * step what each lane holds. The order of one step, for every layer and lane:
 * <ol>
 *   <li>the step's keys and values are appended (per-token state starts at its init value);</li>
 *   <li>the event's handlers, overflow handlers and standing {@code store} rules run in the order
 *       {@link EventOrder} states, which the runtime's runner follows too: at decode, handlers that {@code attend}
 *       run first and attention is computed over the attend set; at prefill and chunk, attention over the lane,
 *       causal, is computed when first read.</li>
 * </ol>
 * Lanes of a layer whose policy selects per layer run their handlers together, with a head axis. Within a layer, every
 * lane's (or group's) event opens before any finishes, as in the runtime. A policy with {@code per model} state
 * settles (overflow handlers, standing stores) after the step's last layer, in layer order.
 * The attention outputs recorded are those of the step's last query, per query head.
 */
public final class Interpreter {
    private final Specialized program;
    private final Trace trace;
    private final LaneShape shape;
    private final VariantEval variant;
    private final List<ClassCode> code = new ArrayList<>();
    /** The model's RoPE when the trace's keys and queries are unrotated (null: they are as attention reads them). */
    private dev.kvpc.runtime.Rope rope;

    /** {@code readsAttention}: the policy reads attention rows or statistics, so they are computed for each event. */
    record ClassCode(PolicyIr policy, List<HandlerCode> handlers, Code standing, Map<String, Code> stateInits, boolean readsAttention) {
        /** Per handler, whether it attends (runs before the step's attention at decode). */
        boolean[] attends() {
            boolean[] a = new boolean[handlers.size()];
            for (int i = 0; i < a.length; i++) a[i] = handlers.get(i).attends();
            return a;
        }
    }

    record HandlerCode(PolicyIr.Handler handler, Code limit, Code body, boolean attends) {}

    /** A block's code: a Truffle call target, or a compiled kernel run through {@link CompiledCode}. */
    @FunctionalInterface
    interface Code {
        Object call(ExecContext ctx);
    }

    Interpreter(Specialized program) {
        this(program, (java.util.function.IntFunction<dev.kvpc.runtime.policy.CompiledLaneClass>) null);
    }

    /**
     * The event machinery of the reference semantics running compiled handler code: lane class {@code c}'s handler
     * bodies, limits, state initialisers and standing rules are {@code compiled.apply(c)}'s kernels (per-page
     * state derivation stays interpreted).
     */
    Interpreter(Specialized program, java.util.function.IntFunction<dev.kvpc.runtime.policy.CompiledLaneClass> compiled) {
        this.program = program;
        this.trace = null;
        this.shape = program.shape();
        this.variant = new VariantEval(program.variant() == null || program.variant().name().equals("standard") ? null : program.variant(), shape);
        for (int c = 0; c < program.classes().size(); c++) {
            PolicyIr p = program.classes().get(c);
            code.add(compiled == null ? compile(p) : CompiledCode.classCode(p, compiled.apply(c)));
        }
    }

    private Interpreter(Specialized program, Trace trace, java.util.function.IntFunction<dev.kvpc.runtime.policy.CompiledLaneClass> compiled) {
        this.program = program;
        this.trace = trace;
        this.shape = program.shape();
        var ts = trace.shape();
        if (ts.layers() != shape.layers() || ts.heads() != shape.heads() || ts.kvHeads() != shape.kvHeads() || ts.headDim() != shape.headDim()) {
            throw new InterpreterException("trace shape " + ts + " does not match the policy's model shape " + shape);
        }
        this.variant = new VariantEval(program.variant() == null || program.variant().name().equals("standard") ? null : program.variant(), shape);
        for (int c = 0; c < program.classes().size(); c++) {
            PolicyIr p = program.classes().get(c);
            code.add(CompiledCode.classCode(p, compiled.apply(c)));
        }
        this.rope = ropeOf(trace);
    }

    /** A trace that names its model's RoPE carries unrotated keys and queries ({@link Trace#rope}). */
    private static dev.kvpc.runtime.Rope ropeOf(Trace trace) {
        try {
            return trace.rope();
        } catch (IllegalArgumentException e) {
            throw new InterpreterException(e.getMessage());
        }
    }

    /** Runs {@code program} over {@code trace} with compiled handler code (see {@link #Interpreter(Specialized, java.util.function.IntFunction)}). */
    public static Result runCompiled(Specialized program, Trace trace, java.util.function.IntFunction<dev.kvpc.runtime.policy.CompiledLaneClass> compiled) {
        return new Interpreter(program, trace, compiled).run();
    }

    private Interpreter(Specialized program, Trace trace) {
        this.program = program;
        this.trace = trace;
        this.shape = program.shape();
        var ts = trace.shape();
        if (ts.layers() != shape.layers() || ts.heads() != shape.heads() || ts.kvHeads() != shape.kvHeads() || ts.headDim() != shape.headDim()) {
            throw new InterpreterException("trace shape " + ts + " does not match the policy's model shape " + shape);
        }
        this.variant = new VariantEval(program.variant() == null || program.variant().name().equals("standard") ? null : program.variant(), shape);
        for (PolicyIr p : program.classes()) code.add(compile(p));
        this.rope = ropeOf(trace);
    }

    /** Runs {@code program} over {@code trace} (with the trace's RoPE where it names one, {@link Trace#rope}). */
    public static Result run(Specialized program, Trace trace) {
        return new Interpreter(program, trace).run();
    }

    /** Runs {@code program} over a trace whose keys and queries are unrotated, with the model's RoPE. */
    public static Result run(Specialized program, Trace trace, dev.kvpc.runtime.Rope rope) {
        Interpreter i = new Interpreter(program, trace);
        i.rope = rope;
        return i.run();
    }

    VariantEval variant() {
        return variant;
    }

    Specialized program() {
        return program;
    }

    /** The compiled code of a lane class (null for -1, the full cache). */
    ClassCode classCode(int c) {
        return c < 0 ? null : code.get(c);
    }

    private ClassCode compile(PolicyIr p) {
        int slots = maxId(p) + 1;
        List<HandlerCode> hs = new ArrayList<>();
        for (PolicyIr.Handler h : p.handlers()) {
            Code limit = h.limit() == null ? null : code(new Nodes.BlockRoot(h.limit().block(), h.limit().result(), slots).getCallTarget());
            hs.add(new HandlerCode(h, limit, code(new Nodes.BlockRoot(h.body(), -1, slots).getCallTarget()), IrWalk.attends(h.body())));
        }
        Map<String, Code> inits = new HashMap<>();
        for (PolicyIr.State s : p.states()) {
            if (s.init() != null) inits.put(s.name(), code(new Nodes.BlockRoot(s.init().block(), s.init().result(), slots).getCallTarget()));
        }
        return new ClassCode(p, hs, code(new Nodes.BlockRoot(p.standing(), -1, slots).getCallTarget()), inits, IrWalk.readsAttention(p));
    }

    private static Code code(CallTarget t) {
        return t::call;
    }

    static int maxId(PolicyIr p) {
        int[] max = {0};
        IrWalk.forEachInstr(p, i -> {
            if (i instanceof Instr.Def d) max[0] = Math.max(max[0], d.id());
        });
        return max[0];
    }

    private Result run() {
        LaneState[][] lanes = new LaneState[shape.layers()][shape.kvHeads()];
        for (int l = 0; l < shape.layers(); l++) for (int h = 0; h < shape.kvHeads(); h++) lanes[l][h] = new LaneState(l, h);
        List<Result.Step> steps = new ArrayList<>();
        int decodeStep = 0;
        for (int si = 0; si < trace.steps().size(); si++) {
            Trace.Step step = trace.steps().get(si);
            int start = trace.start(si);
            int count = step.data().tokens();
            boolean decode = step instanceof Trace.Decode;
            if (decode) decodeStep++;
            PolicyIr.Event event = decode ? PolicyIr.Event.DECODE : step instanceof Trace.Chunk ? PolicyIr.Event.CHUNK : PolicyIr.Event.PREFILL;
            int[] positions = new int[count];
            for (int i = 0; i < count; i++) positions[i] = start + i;
            Result.Lane[][] rec = new Result.Lane[shape.layers()][shape.kvHeads()];
            double[][][] outputs = new double[shape.layers()][shape.kvHeads()][];
            int[][][] attended = new int[shape.layers()][shape.kvHeads()][];
            int[][][][] attendedHeads = new int[shape.layers()][shape.kvHeads()][][];
            // events that settle after the step's last layer (a policy with per model state), in layer order
            List<Runnable> unsettled = new ArrayList<>();
            for (int l = 0; l < shape.layers(); l++) {
                for (int h = 0; h < shape.kvHeads(); h++) append(lanes[l][h], positions, decodeStep);
                // group the layer's lanes: per-lane classes alone, per-layer classes together
                Map<Integer, List<LaneState>> groups = new LinkedHashMap<>();
                for (int h = 0; h < shape.kvHeads(); h++) {
                    int c = program.classOf()[l][h];
                    boolean perLayer = c >= 0 && code.get(c).policy().selection() == PolicyIr.Selection.LAYER;
                    groups.computeIfAbsent(perLayer ? c : -2 - h, k -> new ArrayList<>()).add(lanes[l][h]);
                }
                // the order of a layer's events, as the runtime takes them: every group's event opens (at decode, its
                // attending handlers run), in KV-head order; then each finishes, attention first, in the same order
                List<ClassCode> codes = new ArrayList<>();
                List<ExecContext> opened = new ArrayList<>();
                for (List<LaneState> g : groups.values()) {
                    int c = program.classOf()[l][g.getFirst().kvHead];
                    ClassCode cc = c < 0 ? null : code.get(c);
                    codes.add(cc);
                    opened.add(startEvent(cc, g, l, event, positions, decodeStep, start + count, trace::query, positions.length, rope,
                            cc == null ? null : modelCells(null, c)));
                }
                for (int gi = 0; gi < opened.size(); gi++) {
                    ClassCode cc = codes.get(gi);
                    ExecContext ctx = opened.get(gi);
                    finishEvent(cc, ctx, event, decodeStep, true);
                    if (cc != null && EventOrder.settlesAfterLastLayer(cc.policy())) unsettled.add(() -> settleEvent(cc, ctx, event));
                    for (LaneState lane : ctx.lanes) {
                        outputs[l][lane.kvHead] = ctx.outputs.get(lane.kvHead);
                        attended[l][lane.kvHead] = ctx.attendedPositions.get(lane.kvHead);
                        attendedHeads[l][lane.kvHead] = ctx.attendedHeadPositions.get(lane.kvHead);
                    }
                }
            }
            unsettled.forEach(Runnable::run);
            for (int l = 0; l < shape.layers(); l++) {
                for (int h = 0; h < shape.kvHeads(); h++) {
                    int c = program.classOf()[l][h];
                    rec[l][h] = Result.Lane.of(lanes[l][h], c < 0 ? List.of() : code.get(c).policy().states(), c < 0 ? null : modelCells(null, c),
                            outputs[l][h], attended[l][h], attendedHeads[l][h]);
                }
            }
            steps.add(new Result.Step(si, event.word(), rec));
        }
        return new Result(steps);
    }

    private void append(LaneState lane, int[] positions, int decodeStep) {
        int c = program.classOf()[lane.layer][lane.kvHead];
        boolean cache = c >= 0 && code.get(c).policy().positions() == PolicyIr.Positions.CACHE;
        for (int p : positions) {
            float[] k = trace.key(lane.layer, p, lane.kvHead).clone(), v = trace.value(lane.layer, p, lane.kvHead);
            if (rope != null && !cache) rope.rotate(k, 0, k.length, p);
            lane.append(new LaneState.Entry(p, decodeStep, k, v.clone(), false));
        }
    }

    /** Per sequence (null: the one a trace is), per policy: the per model states. */
    private final Map<Object, Map<String, ModelCells>> modelCells = Collections.synchronizedMap(new WeakHashMap<>());
    private static final Object ONE_SEQUENCE = new Object();

    /**
     * The model states of a class in a sequence: shared by every class specialised from the same policy (a policy's
     * lanes fall into several classes where specialisation tells layers apart).
     */
    ModelCells modelCells(Object sequence, int laneClass) {
        Map<String, ModelCells> byPolicy = modelCells.computeIfAbsent(sequence == null ? ONE_SEQUENCE : sequence, k -> new HashMap<>());
        return byPolicy.computeIfAbsent(code.get(laneClass).policy().name(), k -> new ModelCells(shape.layers(), shape.kvHeads()));
    }

    /**
     * The first part of an event: per-token state of the {@code appended} new entries, and at decode the handlers that
     * restrict attention. {@link ExecContext#attend} then holds the attend set.
     */
    ExecContext startEvent(ClassCode cc, List<LaneState> group, int layer, PolicyIr.Event event, int[] positions, int decodeStep,
                           int context, Queries queries, int appended, dev.kvpc.runtime.Rope rope, ModelCells model) {
        PolicyIr policy = cc == null ? emptyPolicy() : cc.policy();
        int[] observed = observed(policy, event, positions);
        ExecContext ctx = new ExecContext(policy, group, cc != null && policy.selection() == PolicyIr.Selection.LAYER, shape, queries, layer,
                positions, observed, decodeStep, context, variant);
        ctx.rope = rope;
        ctx.model = model;
        if (cc != null) EventOrder.open(policy.handlers(), cc.attends(), event, steps(cc, ctx, appended));
        return ctx;
    }

    /**
     * The rest of an event: attention (over the entries as they are before the handlers act; outputs recorded when
     * {@code outputs}), the handlers, overflow eviction, standing stores.
     */
    void finishEvent(ClassCode cc, ExecContext ctx, PolicyIr.Event event, int decodeStep, boolean outputs) {
        if (outputs) ctx.recordOutputs();
        if (cc == null) return;
        if (cc.readsAttention()) ctx.computeAttention();
        if (EventOrder.settlesAfterLastLayer(cc.policy())) EventOrder.handlers(cc.policy().handlers(), cc.attends(), event, decodeStep, steps(cc, ctx, 0));
        else EventOrder.finish(cc.policy().handlers(), cc.attends(), event, decodeStep, steps(cc, ctx, 0));
    }

    /** After the step's last layer: the overflow handlers and standing stores of a class that settles then. */
    void settleEvent(ClassCode cc, ExecContext ctx, PolicyIr.Event event) {
        if (cc != null && EventOrder.settlesAfterLastLayer(cc.policy())) EventOrder.settle(cc.policy().handlers(), event, steps(cc, ctx, 0));
    }

    private static PolicyIr emptyPolicy() {
        return new PolicyIr("full", List.of(), PolicyIr.Positions.ORIGINAL, PolicyIr.Selection.LANE, List.of(), List.of(), Block.EMPTY, List.of(), List.of(), null);
    }

    /**
     * The parts of an event as the interpreter does them: its call targets over the event's context ({@code appended}:
     * the entries the event brought).
     */
    private static EventOrder.Steps steps(ClassCode cc, ExecContext ctx, int appended) {
        return new EventOrder.Steps() {
            @Override
            public void initStates() {
                Interpreter.initStates(cc, ctx, appended);
            }

            @Override
            public void body(int i) {
                ctx.lastStoreScope = null;
                cc.handlers().get(i).body().call(ctx);
            }

            @Override
            public long limit(int i) {
                return (long) ((Tensor) cc.handlers().get(i).limit().call(ctx)).scalar();
            }

            @Override
            public int entries() {
                int most = 0;
                for (LaneState l : ctx.lanes) most = Math.max(most, l.size());
                return most;
            }

            @Override
            public void standing() {
                cc.standing().call(ctx);
            }
        };
    }

    private static int[] observed(PolicyIr p, PolicyIr.Event event, int[] positions) {
        for (PolicyIr.Observe o : p.observes()) {
            if (o.at() != event || o.end() == null) continue;
            int n = (int) Math.min(positions.length, Math.max(0, constant(o.count())));
            return o.end() == Op.End.FIRST ? Arrays.copyOfRange(positions, 0, n) : Arrays.copyOfRange(positions, positions.length - n, positions.length);
        }
        return positions;
    }

    /**
     * Per-token state of the entries just appended: the init value (broadcast), or 0; and each per-lane state with an
     * init value that a lane of the event does not hold yet: that value.
     */
    private static void initStates(ClassCode cc, ExecContext ctx, int appended) {
        for (PolicyIr.State s : cc.policy().states()) {
            if (s.scope() == PolicyIr.StateScope.MODEL) {
                // each cell takes its init value at the first event of a lane it belongs to
                Code init = cc.stateInits().get(s.name());
                ctx.model.initialise(s, ctx.layer, ctx.kvHeads(), init == null ? null : () -> ((Tensor) init.call(ctx)).data);
                continue;
            }
            if (s.scope() == PolicyIr.StateScope.LANE) {
                Code init = cc.stateInits().get(s.name());
                boolean unset = false;
                for (LaneState lane : ctx.lanes) unset |= !lane.laneState.containsKey(s.name());
                if (init != null && unset) ctx.writeState(s.name(), Instr.Assign.SET, (Tensor) init.call(ctx));
                continue;
            }
            if (s.scope() != PolicyIr.StateScope.TOKEN) continue;
            Code init = cc.stateInits().get(s.name());
            Tensor v = init == null ? null : (Tensor) init.call(ctx);
            for (LaneState lane : ctx.lanes) {
                int per = 1;
                for (Axis a : s.type().axes()) if (a != Axis.TOKEN && a != Axis.HEAD) per *= ctx.extent(a);
                int n = lane.size();
                for (int i = n - appended; i < n; i++) {
                    LaneState.Entry e = lane.entries.get(i);
                    if (e.compensation || e.state.containsKey(s.name())) continue;
                    double[] val = new double[per];
                    if (v != null) {
                        if (v.data.length == 1) Arrays.fill(val, v.data[0]);
                        else if (v.axes.contains(Axis.TOKEN)) System.arraycopy(v.data, i * per, val, 0, per);
                        else System.arraycopy(v.data, 0, val, 0, Math.min(per, v.data.length));
                    }
                    e.state.put(s.name(), val);
                }
            }
        }
    }

    /** A computation's value when it is a constant (after specialisation). */
    static double constant(Computation c) {
        Double v = IrWalk.constant(c);
        if (v == null) throw new InterpreterException("value %" + c.result() + " is not a constant after specialisation");
        return v;
    }

    /** Evaluates a computation in a context (used for page states). */
    static Object evaluate(Computation c, ExecContext ctx) {
        return new Nodes.BlockRoot(c.block(), c.result(), maxIdOf(c.block()) + 1).getCallTarget().call(ctx);
    }

    private static int maxIdOf(Block b) {
        int m = 0;
        for (Instr i : b.instrs()) if (i instanceof Instr.Def d) m = Math.max(m, d.id());
        return m;
    }

    static double toDouble(Object v) {
        return v instanceof Long l ? l : v instanceof Double d ? d : ((Boolean) v ? 1 : 0);
    }


}
