package dev.kvpc.ir;

import java.util.ArrayList;
import java.util.List;

/**
 * What an attention variant reads that is not a value of its query and key, written once as plain operations for
 * every backend: the model's numbers ({@code scale} = 1/sqrt(head_dim), {@code heads} = the KV heads,
 * {@code head_dim}) become constants, {@code context} (the tokens the query has seen) becomes {@code qpos + 1}, and
 * {@code slope(h)} (ALiBi's) becomes {@code 2^((-8 (h + 1)) / query heads)}. The interpreter, the JVM backend and the
 * device's lowering take the variant through {@link #desugar} and define none of these themselves.
 */
public final class VariantSignals {
    private VariantSignals() {}

    /** {@code v} for a model of {@code shape}, its derived signals and slopes written as operations. */
    public static AttentionIr desugar(AttentionIr v, LaneShape shape) {
        return new AttentionIr(v.name(), v.params(), computation(v.logits(), shape), v.mask() == null ? null : computation(v.mask(), shape), v.normalize());
    }

    /** Values are numbered anew in order (an operand's number is below its user's): the new operations take numbers too. */
    private static final class Renumber {
        final LaneShape shape;
        final java.util.Map<Integer, Integer> ids = new java.util.HashMap<>();
        int next;

        Renumber(LaneShape shape) {
            this.shape = shape;
        }

        int id(int old) {
            Integer n = ids.get(old);
            if (n == null) throw new IllegalArgumentException("%" + old + " is used before it is defined");
            return n;
        }
    }

    private static Computation computation(Computation c, LaneShape shape) {
        Renumber r = new Renumber(shape);
        Block b = block(c.block(), r);
        return new Computation(b, r.id(c.result()));
    }

    private static Block block(Block b, Renumber r) {
        List<Instr> out = new ArrayList<>();
        for (Instr i : b.instrs()) {
            switch (i) {
                case Instr.Def d -> def(d, r, out);
                case Instr.If f -> out.add(new Instr.If(r.id(f.cond()), block(f.then(), r), block(f.otherwise(), r)));
                default -> throw new IllegalArgumentException("an attention variant holds definitions and conditions, not " + i);
            }
        }
        return new Block(out);
    }

    private static void def(Instr.Def d, Renumber r, List<Instr> out) {
        LaneShape shape = r.shape;
        Op op = switch (d.op()) {
            case Op.Signal s when s.signal() == Signal.SCALE -> new Op.Const(1.0 / Math.sqrt(shape.headDim()));
            case Op.Signal s when s.signal() == Signal.HEADS -> new Op.Const((long) shape.kvHeads());
            case Op.Signal s when s.signal() == Signal.HEAD_DIM -> new Op.Const((long) shape.headDim());
            case Op.Signal s when s.signal() == Signal.CONTEXT -> {
                int qpos = fresh(r, out, Ty.INT, new Op.Signal(Signal.QPOS));
                int one = fresh(r, out, Ty.INT, new Op.Const(1L));
                yield new Op.Map2(Op.Fn2.ADD, qpos, one);
            }
            case Op.Slope s -> {
                int head = r.id(s.head());
                int one = fresh(r, out, Ty.INT, new Op.Const(1L));
                int h1 = fresh(r, out, Ty.INT, new Op.Map2(Op.Fn2.ADD, head, one));
                int minus8 = fresh(r, out, Ty.FLOAT, new Op.Const(-8.0));
                int scaled = fresh(r, out, Ty.FLOAT, new Op.Map2(Op.Fn2.MUL, minus8, h1));
                int heads = fresh(r, out, Ty.FLOAT, new Op.Const((double) shape.heads()));
                int exponent = fresh(r, out, Ty.FLOAT, new Op.Map2(Op.Fn2.DIV, scaled, heads));
                int two = fresh(r, out, Ty.FLOAT, new Op.Const(2.0));
                yield new Op.Map2(Op.Fn2.POW, two, exponent);
            }
            default -> dev.kvpc.ir.pass.Rewrite.op(d.op(), r::id);
        };
        int id = r.next++;
        r.ids.put(d.id(), id);
        out.add(new Instr.Def(id, d.type(), op));
    }

    private static int fresh(Renumber r, List<Instr> out, Ty type, Op op) {
        int id = r.next++;
        out.add(new Instr.Def(id, type, op));
        return id;
    }
}
