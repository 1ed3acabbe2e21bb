package dev.kvpc.backend.jvm;

import dev.kvpc.backend.interp.PolicyText;
import dev.kvpc.ir.Specialized;
import dev.kvpc.runtime.exec.NativeRunner;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.trace.Trace;

/** A policy compiled by the JVM backend and run by the runtime's native runner on its own lanes, as hosts run it. */
final class CompiledOnLanes {
    private CompiledOnLanes() {}

    /** The runner of {@code s}'s compiled classes (statistics from attention rows, as the interpreter computes them). */
    static NativeRunner runner(Specialized s) {
        return new NativeRunner(s, JvmPolicies.compile(s, s.root() + ".kvp").define(), null, false);
    }

    /** Per-token state {@code state} of layer 0, KV head 0 once the trace's first step (the prompt) has run there. */
    static double[] stateAfterPrompt(Specialized s, Trace t, String state) {
        double[][] got = new double[1][];
        PolicyText.runOnLanes(runner(s), t, (seq, step, layer) -> {
            if (step != 0 || layer != 0) return;
            Lane lane = seq.lane(0, 0);
            float[] col = lane.state(state);
            got[0] = new double[lane.size()];
            for (int i = 0; i < got[0].length; i++) got[0][i] = col[i];
        }, seq -> { });
        return got[0];
    }
}
