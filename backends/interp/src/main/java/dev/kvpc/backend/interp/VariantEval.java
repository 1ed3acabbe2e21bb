package dev.kvpc.backend.interp;

import dev.kvpc.ir.*;

import java.util.BitSet;
import java.util.HashMap;
import java.util.Map;

/**
 * An attention variant's meaning for one lane: for each query (of the lane's group of query heads) and each
 * entry, the logit and mask the variant's IR computes, then the normalisation. With no variant: scaled dot
 * product, causal mask, softmax. Entries outside the attend set get probability 0. Queries with no visible entry
 * get all-zero probabilities.
 */
final class VariantEval {
    private final AttentionIr variant;
    private final LaneShape shape;
    private final Map<String, Object> params = new HashMap<>();

    VariantEval(AttentionIr variant, LaneShape shape) {
        // scale, heads, head_dim, context and slopes as plain operations: their one definition
        this.variant = variant == null ? null : dev.kvpc.ir.VariantSignals.desugar(variant, shape);
        this.shape = shape;
        if (variant != null) {
            for (PolicyIr.Param p : variant.params()) {
                if (p.init() == null) throw new InterpreterException("attention variant " + variant.name() + " parameter " + p.name() + " has no value");
                params.put(p.name(), scalarEval(p.init(), null, null, 0, 0, 0, 0));
            }
        }
    }

    /** This variant as the runtime kernel calls it (null for standard attention). */
    dev.kvpc.runtime.AttentionVariant forRuntime() {
        if (variant == null) return null;
        double scale = 1.0 / Math.sqrt(shape.headDim());
        dev.kvpc.runtime.AttentionVariant.Normalize norm = dev.kvpc.runtime.AttentionVariant.Normalize.valueOf(variant.normalize().name());
        return new dev.kvpc.runtime.AttentionVariant() {
            @Override
            public double logit(float[] q, int qOff, float[] k, int qpos, int kpos, int head, int context) {
                return scalarEval(variant.logits(), java.util.Arrays.copyOfRange(q, qOff, qOff + k.length), k, qpos, kpos, head, scale);
            }

            @Override
            public boolean visible(float[] q, int qOff, float[] k, int qpos, int kpos, int head, int context) {
                return variant.mask() == null ? kpos <= qpos
                        : scalarEval(variant.mask(), java.util.Arrays.copyOfRange(q, qOff, qOff + k.length), k, qpos, kpos, head, scale) != 0;
            }

            @Override
            public Normalize normalize() {
                return norm;
            }
        };
    }

    /** Returns {probabilities, logits}, each [query * group][entry]. */
    double[][][] attend(Queries trace, int layer, LaneState lane, int[] queryPositions, BitSet allowed) {
        return attend(trace, layer, lane, queryPositions, allowed == null ? null : new BitSet[] {allowed}, null, false);
    }

    /**
     * With {@code rope}, queries arrive unrotated: rotated by text position ({@code cache} false; the lane's keys are
     * stored rotated), or by the slot of the query's own entry with keys rotated by their slot ({@code cache}).
     */
    /** {@code allowed}: the entries read, one set for every query head or one per query head of the group; null: all. */
    double[][][] attend(Queries trace, int layer, LaneState lane, int[] queryPositions, BitSet[] allowedPerHead, dev.kvpc.runtime.Rope rope, boolean cache) {
        int g = shape.group(), n = lane.size();
        double scale = 1.0 / Math.sqrt(shape.headDim());
        dev.kvpc.runtime.AttentionVariant.Normalize norm = variant == null ? dev.kvpc.runtime.AttentionVariant.Normalize.SOFTMAX
                : dev.kvpc.runtime.AttentionVariant.Normalize.valueOf(variant.normalize().name());
        double[][] probs = new double[queryPositions.length * g][n], logits = new double[queryPositions.length * g][n];
        for (int qi = 0; qi < queryPositions.length; qi++) {
            int qpos = queryPositions[qi];
            for (int gi = 0; gi < g; gi++) {
                int head = lane.kvHead * g + gi;
                BitSet allowed = allowedPerHead == null ? null : allowedPerHead[Math.min(gi, allowedPerHead.length - 1)];
                float[] q = trace.query(layer, qpos, head);
                if (rope != null) {
                    q = q.clone();
                    rope.rotate(q, 0, q.length, cache ? slotOf(lane, qpos) : qpos);
                }
                double[] row = logits[qi * g + gi];
                boolean[] visible = new boolean[n];
                for (int j = 0; j < n; j++) {
                    LaneState.Entry e = lane.entries.get(j);
                    int kpos = e.compensation ? -1 : e.pos;
                    if (allowed != null && !allowed.get(j)) continue;
                    float[] key = e.k;
                    if (rope != null && cache) {
                        key = key.clone();
                        rope.rotate(key, 0, key.length, j);
                    }
                    if (variant == null) {
                        row[j] = dot(q, key) * scale;
                        visible[j] = kpos <= qpos;
                    } else {
                        row[j] = scalarEval(variant.logits(), q, key, qpos, kpos, head, scale);
                        visible[j] = variant.mask() == null ? kpos <= qpos : scalarEval(variant.mask(), q, key, qpos, kpos, head, scale) != 0;
                    }
                }
                norm.apply(row, visible, probs[qi * g + gi], n);
                dev.kvpc.runtime.AttentionVariant.maskUnseen(row, visible, n);
            }
        }
        return new double[][][] {probs, logits};
    }

    private static int slotOf(LaneState lane, int pos) {
        for (int i = lane.entries.size() - 1; i >= 0; i--) if (lane.entries.get(i).pos == pos) return i;
        throw new InterpreterException("the query's own entry (position " + pos + ") is not in the lane");
    }

    static double dot(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += (double) a[i] * b[i];
        return s;
    }

    /** Evaluates a variant computation for one query-key pair; values are doubles or float[] (q, k). */
    private double scalarEval(Computation c, float[] q, float[] k, int qpos, int kpos, int head, double scale) {
        Map<Integer, Object> v = new HashMap<>();
        for (Instr i : c.block().instrs()) {
            if (!(i instanceof Instr.Def d)) throw new InterpreterException("attention variant computations hold definitions only");
            v.put(d.id(), op(d.op(), v, q, k, qpos, kpos, head, scale));
        }
        Object r = v.get(c.result());
        if (!(r instanceof Double x)) throw new InterpreterException("attention variant value is not a number");
        return x;
    }

    private Object op(Op op, Map<Integer, Object> v, float[] q, float[] k, int qpos, int kpos, int head, double scale) {
        return switch (op) {
            case Op.Const c -> Interpreter.toDouble(c.value());
            case Op.Param p -> {
                Object x = params.get(p.name());
                if (x == null) throw new InterpreterException("variant parameter " + p.name() + " has no value");
                yield x;
            }
            case Op.Signal s -> switch (s.signal()) {
                case Q -> q;
                case K -> k;
                case QPOS -> (double) qpos;
                case KPOS -> (double) kpos;
                case HEAD -> (double) head;
                default -> throw new InterpreterException("attention variants cannot read " + s.signal().word());
            };
            case Op.Dot d -> dot((float[]) v.get(d.a()), (float[]) v.get(d.b()));
            case Op.Map1 m -> m.fn().apply((Double) v.get(m.x()));
            case Op.Map2 m -> m.fn().apply((Double) v.get(m.a()), (Double) v.get(m.b()));
            case Op.Choose c -> ((Double) v.get(c.cond())) != 0 ? v.get(c.a()) : v.get(c.b());
            default -> throw new InterpreterException("attention variants cannot use " + op.getClass().getSimpleName().toLowerCase(java.util.Locale.ROOT));
        };
    }

}
