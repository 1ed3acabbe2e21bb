package dev.kvpc.runtime.exec;

/**
 * Scans the runtime's selection and store code makes over whole arrays, in two forms that answer the same: with the
 * Vector API present ({@code --add-modules jdk.incubator.vector}) a few vector compares per block; without it, plain
 * loops.
 */
sealed interface Screens permits Screens.Scalar, VectorScreens {
    /**
     * The block screen of {@link Select#allButFewWorstOfColumns}: whether every float of {@code c[a..b)} ranks strictly
     * before {@code bar} (above it for {@code top}, below it otherwise; a NaN does not). It only decides which blocks
     * the scan reads entry by entry.
     */
    boolean allBetter(float[] c, int a, int b, float bar, boolean top);

    /**
     * How many entries {@code i} in {@code [from, to)} have {@code at[table[2 * i + part]]}: of a lane's
     * {@link dev.kvpc.runtime.lane.Lane#chainTable chain table} (a chain per entry and part), how many entries' part
     * is in one of the chains marked in {@code at} ({@link LaneView#notAt}'s count of the entries outside a store's
     * set that are already at its precision).
     */
    int countIn(int[] table, int from, int to, int part, boolean[] at);

    /** The Vector API screen when its module is present, else the scalar one. */
    Screens BEST = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent() ? VectorScreens.INSTANCE : Scalar.INSTANCE;

    /** One pass of float compares. */
    final class Scalar implements Screens {
        static final Scalar INSTANCE = new Scalar();

        private Scalar() {}

        @Override
        public boolean allBetter(float[] c, int a, int b, float bar, boolean top) {
            int miss = 0;
            if (top) {
                for (int t = a; t < b; t++) miss |= c[t] > bar ? 0 : 1;
            } else {
                for (int t = a; t < b; t++) miss |= c[t] < bar ? 0 : 1;
            }
            return miss == 0;
        }

        @Override
        public int countIn(int[] table, int from, int to, int part, boolean[] at) {
            int n = 0;
            for (int i = from; i < to; i++) n += at[table[2 * i + part]] ? 1 : 0;
            return n;
        }
    }
}
