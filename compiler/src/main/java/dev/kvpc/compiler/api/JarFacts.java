package dev.kvpc.compiler.api;

import dev.kvpc.compiler.memory.MemoryModel;
import dev.kvpc.ir.Instr;
import dev.kvpc.ir.IrWalk;
import dev.kvpc.ir.Op;
import dev.kvpc.ir.PolicyIr;
import dev.kvpc.ir.Specialized;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeSet;

/**
 * What a policy jar's manifest says of its program, derived in one place: {@code kvpc compile} writes it, and a host
 * loading the jar derives it again from the program the jar carries and refuses a manifest that says otherwise.
 */
public final class JarFacts {
    private JarFacts() {
    }

    /** What the policy reads: signals (attn, logits, k, v, q, pos, age), fused statistics of attention, observed queries. */
    public static TreeSet<String> evidence(Specialized s) {
        TreeSet<String> e = new TreeSet<>();
        for (PolicyIr p : s.classes()) {
            IrWalk.forEachInstr(p, i -> {
                if (i instanceof Instr.Def d) {
                    if (d.op() instanceof Op.Signal sg && sg.signal().perLane()) e.add(sg.signal().word());
                    if (d.op() instanceof Op.KernelStat k) e.add(k.input().word());
                }
            });
            for (PolicyIr.Observe o : p.observes()) if (o.end() != null) e.add("observed-queries");
        }
        return e;
    }

    /**
     * Predicted bytes per lane, averaged over the lanes, by category ({@code kv}, {@code scales}, {@code state}), once a
     * prompt of {@code context} tokens is processed with a host KV cache of {@code dtype}.
     */
    public static Map<String, Long> memoryPerLane(Specialized s, long context, String dtype) {
        MemoryModel.Report rep = MemoryModel.predict(s, context, dtype);
        long lanes = (long) s.shape().layers() * s.shape().kvHeads(), kv = 0, scales = 0, state = 0;
        for (var row : rep.lanes()) {
            for (var lm : row) {
                kv += lm.kvBytes();
                scales += lm.scaleBytes();
                state += lm.stateBytes();
            }
        }
        Map<String, Long> m = new LinkedHashMap<>();
        m.put("kv", kv / lanes);
        m.put("scales", scales / lanes);
        m.put("state", state / lanes);
        return m;
    }
}
