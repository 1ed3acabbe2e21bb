package dev.kvpc.ir.pass;

import dev.kvpc.ir.*;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Pass 2, common-subexpression elimination: a definition equal to an earlier one (same type and op, operands
 * renamed) is dropped and its uses renamed. Values that read the lane or state are only shared up to the next
 * effect (keep, evict, merge, store, state write, attend, if), since those change what they read.
 */
public final class Cse {
    private Cse() {}

    public static PolicyIr run(PolicyIr p) {
        // one renaming for the whole policy: ids are unique in it
        Map<Integer, Integer> rename = new HashMap<>();
        return Rewrite.blocks(p, b -> block(b, rename, new HashMap<>()), id -> rename.getOrDefault(id, id));
    }

    private static Block block(Block b, Map<Integer, Integer> rename, Map<Key, Integer> seen) {
        List<Instr> out = new ArrayList<>();
        Map<Key, Integer> avail = new HashMap<>(seen);
        for (Instr raw : b.instrs()) {
            Instr i = Rewrite.instr(raw, id -> rename.getOrDefault(id, id));
            switch (i) {
                case Instr.Def d -> {
                    Key key = new Key(d.type(), d.op());
                    Integer prior = avail.get(key);
                    if (prior != null) {
                        rename.put(d.id(), prior);
                    } else {
                        avail.put(key, d.id());
                        out.add(d);
                    }
                }
                case Instr.If f -> {
                    out.add(new Instr.If(f.cond(), block(raw instanceof Instr.If rf ? rf.then() : f.then(), rename, avail),
                            block(raw instanceof Instr.If rf ? rf.otherwise() : f.otherwise(), rename, avail)));
                    avail.keySet().removeIf(k -> readsLane(k.op()));
                }
                default -> {
                    out.add(i);
                    avail.keySet().removeIf(k -> readsLane(k.op()));
                }
            }
        }
        return new Block(out);
    }

    /** Values that can change when the lane or a state changes. Constants and pure arithmetic on them cannot. */
    private record Key(Ty type, Op op) {}

    private static boolean readsLane(Op op) {
        return switch (op) {
            case Op.Const c -> false;
            case Op.Param p -> false;
            case Op.Table t -> false;
            case Op.Vector v -> false;
            case Op.Signal s -> !s.signal().location();
            default -> true;
        };
    }
}
