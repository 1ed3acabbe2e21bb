package dev.kvpc.backend.interp;

import dev.kvpc.ir.Instr;
import dev.kvpc.ir.PolicyIr;
import dev.kvpc.ir.Specialized;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;

import java.util.*;

/**
 * The reference interpreter as the runtime's {@link PolicyRunner}: every runtime lane has a shadow
 * {@link LaneState} that the interpreter runs on; after each event, what the policy did to the shadow (evictions,
 * merges, the compensation entry, storage precisions, per-token state) is applied to the runtime's lane, whose
 * pages then really shrink. Slow (it copies rows), simple, and the same meaning as {@link Interpreter#run}.
 * Per-channel quantisation is packed in blocks of the same consecutive entries the interpreter grouped.
 */
public final class InterpRunner implements PolicyRunner {
    private final Interpreter interp;
    private final Map<Lane, LaneState> shadows = Collections.synchronizedMap(new WeakHashMap<>());

    private final dev.kvpc.runtime.AttentionVariant runtimeVariant;

    public InterpRunner(Specialized program) {
        this(program, null);
    }

    /**
     * The same event machinery running compiled handler code: lane class {@code c}'s kernels are
     * {@code compiled.apply(c)}'s (null: interpreted).
     */
    public InterpRunner(Specialized program, java.util.function.IntFunction<dev.kvpc.runtime.policy.CompiledLaneClass> compiled) {
        this.interp = new Interpreter(program, compiled);
        this.runtimeVariant = interp.variant().forRuntime();
    }

    @Override
    public int laneClass(int layer, int kvHead) {
        return interp.program().classOf()[layer][kvHead];
    }

    @Override
    public dev.kvpc.runtime.AttentionVariant variant() {
        return runtimeVariant;
    }

    @Override
    public boolean cachePositions(int laneClass) {
        return interp.program().classes().get(laneClass).positions() == PolicyIr.Positions.CACHE;
    }

    @Override
    public boolean perLayer(int laneClass) {
        return interp.program().classes().get(laneClass).selection() == PolicyIr.Selection.LAYER;
    }

    @Override
    public boolean settlesAfterLastLayer(int laneClass) {
        return dev.kvpc.runtime.exec.EventOrder.settlesAfterLastLayer(interp.program().classes().get(laneClass));
    }

    @Override
    public Event open(int laneClass, Step step, int layer, int[] kvHeads, List<Lane> lanes) {
        Interpreter.ClassCode cc = interp.classCode(laneClass);
        List<LaneState> group = new ArrayList<>();
        int appended = step.positions().length;
        int heads = interp.program().shape().heads(), d = interp.program().shape().headDim();
        for (int i = 0; i < lanes.size(); i++) group.add(sync(lanes.get(i), layer, kvHeads[i]));
        PolicyIr.Event event = switch (step.kind()) {
            case PREFILL -> PolicyIr.Event.PREFILL;
            case CHUNK -> PolicyIr.Event.CHUNK;
            case DECODE -> PolicyIr.Event.DECODE;
        };
        int first = step.positions()[0];
        Queries queries = (l, position, head) -> Arrays.copyOfRange(step.queries(), ((position - first) * heads + head) * d, ((position - first) * heads + head + 1) * d);
        ExecContext ctx = interp.startEvent(cc, group, layer, event, step.positions(), step.decodeStep(), step.context(), queries, appended, step.rope(),
                cc == null ? null : interp.modelCells(step.sequence(), laneClass));
        return new Event() {
            @Override
            public BitSet[] attendSets() {
                // the handlers that attend ran as the event opened, before attention: what else they did (a merge, a
                // keep, a store) is the lanes' before attention reads them, as in the interpreter
                if (event == PolicyIr.Event.DECODE && cc != null && anyAttends(cc)) applyAll();
                if (ctx.attend == null) return null;
                BitSet[] out = new BitSet[lanes.size()];
                for (int i = 0; i < lanes.size(); i++) {
                    Set<LaneState.Entry> chosen = ctx.attend.get(i);
                    List<LaneState.Entry> es = group.get(i).entries;
                    out[i] = new BitSet();
                    // the shadow and the runtime lane hold the same entries in the same order
                    for (int j = 0; j < es.size(); j++) if (chosen.contains(es.get(j))) out[i].set(j);
                }
                return out;
            }

            @Override
            public BitSet[][] queryHeadSets() {
                if (ctx.attendHeads == null) return null;
                BitSet[][] out = new BitSet[lanes.size()][];
                // the shadow and the runtime lane hold the same entries in the same order
                for (int i = 0; i < out.length; i++) out[i] = ctx.allowed(i);
                return out;
            }

            @Override
            public void finish() {
                interp.finishEvent(cc, ctx, event, step.decodeStep(), false);
                applyAll();
            }

            @Override
            public void settle() {
                if (cc == null || !settlesAfterLastLayer(laneClass)) return;
                interp.settleEvent(cc, ctx, event);
                applyAll();
            }

            private void applyAll() {
                for (int i = 0; i < lanes.size(); i++) apply(group.get(i), lanes.get(i), cc == null ? List.of() : cc.policy().states());
                if (cc != null) pageStates(cc.policy(), ctx, lanes);
            }
        };
    }

    private static boolean anyAttends(Interpreter.ClassCode cc) {
        for (boolean a : cc.attends()) if (a) return true;
        return false;
    }

    /** The lane's shadow, with the runtime lane's new entries appended. */
    @Override
    public long laneStateBytes(Lane lane) {
        LaneState s = shadows.get(lane);
        if (s == null) return 0;
        long n = 0;
        for (Tensor t : s.laneState.values()) n += t.data.length;
        return n * dev.kvpc.ir.Ty.Elem.STATE_BYTES;
    }

    private LaneState sync(Lane lane, int layer, int kvHead) {
        LaneState s = shadows.computeIfAbsent(lane, l -> new LaneState(layer, kvHead));
        int last = -1;
        for (LaneState.Entry e : s.entries) if (!e.compensation) last = Math.max(last, e.pos);
        int d = lane.headDim();
        for (int i = 0; i < lane.size(); i++) {
            if (lane.isCompensation(i) || lane.position(i) <= last) continue;
            float[] k = new float[d], v = new float[d];
            lane.read(i, Lane.Part.KEYS, k, 0);
            lane.read(i, Lane.Part.VALUES, v, 0);
            s.append(new LaneState.Entry(lane.position(i), lane.addedAtStep(i), k, v, false));
        }
        return s;
    }

    /** Applies the shadow's state to the runtime lane: evictions, compensation, precision, merged rows, states. */
    private static void apply(LaneState shadow, Lane lane, List<PolicyIr.State> states) {
        Map<Integer, LaneState.Entry> byPos = new HashMap<>();
        LaneState.Entry comp = null;
        for (LaneState.Entry e : shadow.entries) {
            if (e.compensation) comp = e;
            else byPos.put(e.pos, e);
        }
        BitSet keep = new BitSet();
        for (int i = 0; i < lane.size(); i++) {
            if (lane.isCompensation(i) ? comp != null : byPos.containsKey(lane.position(i))) keep.set(i);
        }
        if (keep.cardinality() < lane.size()) lane.retain(keep);
        int d = lane.headDim();
        boolean hasComp = lane.size() > 0 && lane.isCompensation(lane.size() - 1);
        if (comp != null && !hasComp) lane.appendCompensation(comp.addedAtStep, comp.k.clone(), comp.v.clone(), comp.count);
        float[] row = new float[d];
        // entries the interpreter quantised per channel, in lane order, waiting to be packed in blocks
        Map<Lane.Part, Map<QuantSpec, List<Integer>>> blocks = new EnumMap<>(Lane.Part.class);
        for (int i = 0; i < lane.size(); i++) {
            LaneState.Entry e = lane.isCompensation(i) ? comp : byPos.get(lane.position(i));
            for (Lane.Part part : Lane.Part.values()) {
                QuantSpec want = spec(e, part, lane.spec(i, part));
                if (want.quantised() && want.axis() == QuantSpec.Axis.CHANNEL) {
                    if (!want.equals(lane.spec(i, part))) blocks.computeIfAbsent(part, x -> new LinkedHashMap<>()).computeIfAbsent(want, x -> new ArrayList<>()).add(i);
                    continue;
                }
                QuantSpec have = lane.spec(i, part);
                if (have.quantised() && have.axis() == QuantSpec.Axis.CHANNEL && !want.equals(have)) {
                    // the entry left its per-channel block (a merge): its row returns to a per-token chain first
                    lane.restore(i, part, lane.hostSpec());
                }
                if (!want.equals(lane.spec(i, part))) lane.restore(i, part, want);
                lane.read(i, part, row, 0);
                float[] mine = part == Lane.Part.KEYS ? e.k : e.v;
                if (!Arrays.equals(row, mine)) lane.overwrite(i, part, mine, 0);
            }
            if (lane.count(i) != e.count) lane.setCount(i, e.count);
        }
        // the interpreter quantises per channel in whole groups of consecutive covered entries, in order: so do we
        for (var byPart : blocks.entrySet()) {
            for (var bySpec : byPart.getValue().entrySet()) {
                List<Integer> idx = bySpec.getValue();
                int g = bySpec.getKey().group();
                for (int from = 0; from + g <= idx.size(); from += g) {
                    lane.packBlock(idx.subList(from, from + g).stream().mapToInt(Integer::intValue).toArray(), byPart.getKey(), bySpec.getKey());
                }
            }
        }
        for (PolicyIr.State s : states) {
            if (s.scope() != PolicyIr.StateScope.TOKEN) continue;
            int width = 1;
            for (var a : s.type().axes()) if (a == dev.kvpc.ir.Axis.CHANNEL) width *= d;
            lane.declareState(s.name(), width);
            float[] col = lane.state(s.name());
            for (int i = 0; i < lane.size(); i++) {
                LaneState.Entry e = lane.isCompensation(i) ? comp : byPos.get(lane.position(i));
                double[] v = e == null ? null : e.state.get(s.name());
                for (int w = 0; w < width; w++) col[i * width + w] = v == null || w >= v.length ? 0f : (float) v[w];
            }
        }
    }

    /** Per-page states, as the interpreter derives them from the lanes now, kept with the runtime's lanes. */
    private static void pageStates(PolicyIr policy, ExecContext ctx, List<Lane> lanes) {
        for (PolicyIr.State s : policy.states()) {
            if (s.scope() != PolicyIr.StateScope.PAGE) continue;
            ctx.pageStateCache.clear();
            Tensor t = ctx.readState(s.name());
            int pageSize = ctx.pageSize();
            int pages = t.dim(dev.kvpc.ir.Axis.PAGE);
            int perLane = t.data.length / Math.max(1, lanes.size());
            for (int i = 0; i < lanes.size(); i++) {
                float[] v = new float[perLane];
                for (int j = 0; j < perLane; j++) v[j] = (float) t.data[i * perLane + j];
                int width = pages == 0 ? 1 : perLane / pages;
                if (perLane > 0) lanes.get(i).setPageState(s.name(), pageSize, width, v);
            }
        }
    }

    /** The runtime storage format of an entry's part as the interpreter left it. */
    private static QuantSpec spec(LaneState.Entry e, Lane.Part part, QuantSpec current) {
        Instr.Format f = part == Lane.Part.KEYS ? e.kFormat : e.vFormat;
        if (f == null) return current;
        int bits = part == Lane.Part.KEYS ? e.kBits : e.vBits;
        boolean perChannel = part == Lane.Part.KEYS ? e.kPerChannel : e.vPerChannel;
        int group = part == Lane.Part.KEYS ? e.kGroup : e.vGroup;
        Precision p = Precision.of(f, bits);
        if (!p.isInteger()) return QuantSpec.of(p);
        return new QuantSpec(p, perChannel ? QuantSpec.Axis.CHANNEL : QuantSpec.Axis.TOKEN, group);
    }
}
