package dev.kvpc.gpu.kernels;

import dev.kvpc.ir.AttentionIr;
import dev.kvpc.ir.Computation;
import dev.kvpc.ir.Instr;
import dev.kvpc.ir.LaneShape;
import dev.kvpc.ir.Op;
import dev.kvpc.ir.PolicyIr;
import dev.kvpc.ir.pass.Fold;

import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * An attention variant's logit and mask (IR computations) as kernel IR statements, for one query head {@code h} of
 * the group and entry {@code j}: what the JVM backend's {@code VariantCompiler} computes in double, here in float.
 * Values are floats (booleans 1 and 0), each definition one {@code let}; the dot product of the query and the key
 * is the head's {@code acc[h]}, which the attention template has summed. The IR's scalar functions are
 * {@link ScalarFns}' in float.
 */
public final class VariantLowering {
    private final LaneShape shape;
    private final Map<String, Object> params = new HashMap<>();
    private final StringBuilder sb = new StringBuilder();
    private final Set<Integer> arrays = new HashSet<>();
    private final String prefix;

    private VariantLowering(AttentionIr variant, LaneShape shape, String prefix) {
        this.shape = shape;
        this.prefix = prefix;
        for (PolicyIr.Param p : variant.params()) {
            if (p.init() == null) throw new IllegalArgumentException("variant " + variant.name() + " parameter " + p.name() + " has no value");
            Object v = Fold.evaluate(p.init(), new Fold.Lane(shape, 0, 0, params, f -> null));
            if (v == null) throw new IllegalArgumentException("variant parameter " + p.name() + " is not a constant");
            params.put(p.name(), v);
        }
    }

    /** The normalisation's number in the template: 0 softmax, 1 sigmoid, 2 none. */
    public static int norm(AttentionIr variant) {
        return switch (variant.normalize()) {
            case SOFTMAX -> 0;
            case SIGMOID -> 1;
            case NONE -> 2;
        };
    }

    /**
     * Statements that define {@code bool hv} (the head sees entry j) and {@code float l} (its logit), given
     * {@code acc[h]} (q . k of row h), {@code hg} (its head in the group), {@code head0} (the lane's first query head),
     * {@code qpos} (its query position) and {@code pos[j]}.
     */
    public static String score(AttentionIr given, LaneShape shape) {
        // scale, heads, head_dim, context and slopes as plain operations: their one definition
        AttentionIr variant = dev.kvpc.ir.VariantSignals.desugar(given, shape);
        VariantLowering logit = new VariantLowering(variant, shape, "vl");
        String l = logit.computation(variant.logits());
        StringBuilder out = new StringBuilder(logit.sb);
        if (variant.mask() == null) {
            out.append("let bool hv = (pos[j] <= qpos);\n");
        } else {
            VariantLowering mask = new VariantLowering(variant, shape, "vm");
            String m = mask.computation(variant.mask());
            out.append(mask.sb).append("let bool hv = (").append(m).append(" != 0.0f);\n");
        }
        out.append("let float l = ").append(l).append(";\n");
        return out.toString();
    }

    /** Emits the computation's definitions; returns the name of its result. */
    private String computation(Computation c) {
        for (Instr i : c.block().instrs()) {
            if (!(i instanceof Instr.Def d)) throw new IllegalArgumentException("attention variants compute values only");
            def(d);
        }
        if (arrays.contains(c.result())) throw new IllegalArgumentException("an attention variant's result is a number, not q or k");
        return name(c.result());
    }

    private String name(int id) {
        return prefix + id;
    }

    private void let(int id, String expr) {
        sb.append("let float ").append(name(id)).append(" = ").append(expr).append(";\n");
    }

    private String ref(int id) {
        if (arrays.contains(id)) throw new IllegalArgumentException("%" + id + " is q or k, where a number is needed");
        return name(id);
    }

    private void def(Instr.Def d) {
        switch (d.op()) {
            case Op.Const c -> let(d.id(), lit(toDouble(c.value())));
            case Op.Param p -> {
                Object v = params.get(p.name());
                if (v == null) throw new IllegalArgumentException("unknown variant parameter " + p.name());
                let(d.id(), lit(toDouble(v)));
            }
            case Op.Signal s -> {
                switch (s.signal()) {
                    case Q, K -> arrays.add(d.id());
                    case QPOS -> let(d.id(), "float(qpos)");
                    case KPOS -> let(d.id(), "float(pos[j])");
                    case HEAD -> let(d.id(), "float((head0 + hg))");
                    default -> throw new IllegalArgumentException("attention variants cannot read " + s.signal().word());
                }
            }
            case Op.Dot dot -> {
                if (!arrays.contains(dot.a()) || !arrays.contains(dot.b()) || dot.a() == dot.b()) {
                    throw new IllegalArgumentException("dot takes q and k in an attention variant");
                }
                let(d.id(), "acc[h]");
            }
            case Op.Map1 m -> let(d.id(), fn1(m.fn(), ref(m.x())));
            case Op.Map2 m -> let(d.id(), fn2(m.fn(), ref(m.a()), ref(m.b())));
            case Op.Choose c -> let(d.id(), "select((" + ref(c.cond()) + " != 0.0f), " + ref(c.a()) + ", " + ref(c.b()) + ")");
            default -> throw new IllegalArgumentException("attention variants cannot use " + d.op().getClass().getSimpleName());
        }
    }

    static String fn1(Op.Fn1 fn, String x) {
        return ScalarFns.FLOAT.fn1(fn, x);
    }

    static String fn2(Op.Fn2 fn, String a, String b) {
        return ScalarFns.FLOAT.fn2(fn, a, b);
    }

    static String lit(double v) {
        return ScalarFns.FLOAT.lit(v);
    }

    private static double toDouble(Object v) {
        return v instanceof Long l ? l : v instanceof Double d ? d : v instanceof Integer i ? i : ((Boolean) v ? 1 : 0);
    }
}
