package dev.kvpc.gpu.policy;

import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.loop.LoopLowering;

import java.util.ArrayList;
import java.util.List;

/** A specialised policy's lane classes on an OpenCL device: one {@link ClLaneClass} (one program) per class. */
public final class ClPolicies {
    private ClPolicies() {}

    public static List<ClLaneClass> compile(Specialized program, ClContext cl) {
        List<ClLaneClass> out = new ArrayList<>();
        for (int c = 0; c < program.classes().size(); c++) out.add(new ClLaneClass(LoopLowering.lower(program.classes().get(c)), cl, "c" + c + "_"));
        return out;
    }
}
