package dev.kvpc.backend.jvm;

import dev.kvpc.backend.interp.Interpreter;
import dev.kvpc.backend.interp.PolicyText;
import dev.kvpc.backend.interp.Result;
import dev.kvpc.backend.interp.RuntimeDifferentialTest;
import dev.kvpc.ir.Specialized;
import dev.kvpc.runtime.exec.NativeRunner;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.trace.Trace;

import java.util.Arrays;
import java.util.List;

/** A policy compiled by the JVM backend and run by the runtime's native runner on its own lanes, as hosts run it. */
final class CompiledOnLanes {
    private CompiledOnLanes() {}

    /** The runner of {@code s}'s compiled classes (statistics from attention rows, as the interpreter computes them). */
    static NativeRunner runner(Specialized s) {
        return new NativeRunner(s, JvmPolicies.compile(s, s.root() + ".kvp").define(), null, false);
    }

    /**
     * A policy given as text run by the reference interpreter on {@code t}; compiled code must give the same on the
     * interpreter's events and on the runtime's lanes. The interpreter's result.
     */
    static Result everyEngine(String root, String text, Trace t) {
        return everyEngine(root, text, null, t);
    }

    /** As {@link #everyEngine(String, String, Trace)}, with the text's tables found in {@code dir}. */
    static Result everyEngine(String root, String text, java.nio.file.Path dir, Trace t) {
        Specialized s = PolicyText.optimise(root, text, dir);
        Result r = Interpreter.run(s, t);
        PolicyCompilerTest.agree(s, List.of(t), root);
        RuntimeDifferentialTest.compare(s, t, root, null, runner(s));
        return r;
    }

    /** The positions a lane holds after a step, in order. */
    static int[] kept(Result r, int step, int layer, int kvHead) {
        int[] p = r.steps().get(step).lanes()[layer][kvHead].positions().clone();
        Arrays.sort(p);
        return p;
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
