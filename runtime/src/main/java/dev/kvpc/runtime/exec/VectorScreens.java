package dev.kvpc.runtime.exec;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** {@link Screens} by vector compares; loaded only when the Vector API module is present. */
final class VectorScreens implements Screens {
    static final VectorScreens INSTANCE = new VectorScreens();
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    private VectorScreens() {}

    @Override
    public boolean allBetter(float[] c, int a, int b, float bar, boolean top) {
        int t = a, step = S.length();
        VectorOperators.Comparison op = top ? VectorOperators.GT : VectorOperators.LT;
        for (; t + step <= b; t += step) if (!FloatVector.fromArray(S, c, t).compare(op, bar).allTrue()) return false;
        for (; t < b; t++) if (!(top ? c[t] > bar : c[t] < bar)) return false;
        return true;
    }
}
