package dev.kvpc.runtime.exec;

/**
 * The block screen of {@link Select#allButFewWorstOfColumns}: whether every float of {@code c[a..b)} ranks strictly
 * before {@code bar} (above it for {@code top}, below it otherwise; a NaN does not). With the Vector API present
 * ({@code --add-modules jdk.incubator.vector}) a block is a few vector compares; without it, one branch-free pass.
 * Both answer the same: the screen only decides which blocks the scan reads entry by entry.
 */
sealed interface Screens permits Screens.Scalar, VectorScreens {
    boolean allBetter(float[] c, int a, int b, float bar, boolean top);

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
    }
}
