package dev.kvpc.runtime.exec;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** {@link Screens} by vector compares; loaded only when the Vector API module is present. */
final class VectorScreens implements Screens {
    static final VectorScreens INSTANCE = new VectorScreens();
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
    /** 0, 1, 0, 1, ...: which part each int of a chain table's vector belongs to (a vector starts at an even index). */
    private static final int[] PARTS = new int[I.length()];

    static {
        for (int i = 0; i < PARTS.length; i++) PARTS[i] = i & 1;
    }

    private VectorScreens() {}

    @Override
    public boolean allBetter(float[] c, int a, int b, float bar, boolean top) {
        int t = a, step = S.length();
        VectorOperators.Comparison op = top ? VectorOperators.GT : VectorOperators.LT;
        for (; t + step <= b; t += step) if (!FloatVector.fromArray(S, c, t).compare(op, bar).allTrue()) return false;
        for (; t < b; t++) if (!(top ? c[t] > bar : c[t] < bar)) return false;
        return true;
    }

    /**
     * Up to two chains marked: a vector of the table (half as many entries as lanes) compared with each, the lanes
     * of the other part masked off, the matches counted. More chains: the scalar loop.
     */
    @Override
    public int countIn(int[] table, int from, int to, int part, boolean[] at) {
        int first = -1, second = -1, marked = 0;
        for (int c = 0; c < at.length; c++) {
            if (!at[c]) continue;
            if (marked++ == 0) first = c;
            else second = c;
        }
        if (marked == 0 || from >= to) return 0;
        if (marked > 2) return Screens.Scalar.INSTANCE.countIn(table, from, to, part, at);
        if (second < 0) second = first;
        VectorMask<Integer> mine = IntVector.fromArray(I, PARTS, 0).compare(VectorOperators.EQ, part);
        int n = 0, i = 2 * from, end = 2 * to, step = I.length();
        for (; i + step <= end; i += step) {
            IntVector v = IntVector.fromArray(I, table, i);
            n += v.compare(VectorOperators.EQ, first).or(v.compare(VectorOperators.EQ, second)).and(mine).trueCount();
        }
        for (int e = i / 2; e < to; e++) n += at[table[2 * e + part]] ? 1 : 0;
        return n;
    }
}
