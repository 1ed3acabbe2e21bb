package dev.kvpc.ir;

import org.junit.jupiter.api.Test;

import java.util.BitSet;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/** The run forms of set algebra and store scopes agree with the rules on bits, for every small pair of runs. */
class RunsTest {
    private static BitSet bits(long run) {
        BitSet b = new BitSet();
        b.set(Runs.from(run), Runs.to(run));
        return b;
    }

    /** Whether a set of bits is one run (empty counts as one). */
    private static boolean oneRun(BitSet b) {
        return b.isEmpty() || b.cardinality() == b.length() - b.nextSetBit(0);
    }

    private static void assertAgrees(BitSet want, long got, String what) {
        if (got == Runs.NONE) assertNotEquals(true, oneRun(want), what + ": said not one run, but it is " + want);
        else assertEquals(want, bits(got), what);
    }

    @Test
    void setAlgebraOnRunsIsSetAlgebraOnBits() {
        int n = 7;
        for (Op.SetFn fn : Op.SetFn.values()) {
            for (int af = 0; af <= n; af++) for (int at = af; at <= n; at++) for (int bf = 0; bf <= n; bf++) for (int bt = bf; bt <= n; bt++) {
                BitSet want = fn.apply(bits(Runs.of(af, at)), bits(Runs.of(bf, bt)));
                assertAgrees(want, fn.run(af, at, bf, bt), fn + " [" + af + "," + at + ") [" + bf + "," + bt + ")");
            }
        }
    }

    @Test
    void setAlgebraWithARunIsSetAlgebraWithItsBits() {
        Random rnd = new Random(4);
        for (int trial = 0; trial < 20_000; trial++) {
            BitSet a = new BitSet();
            for (int i = 0; i < 12; i++) if (rnd.nextBoolean()) a.set(i);
            int from = rnd.nextInt(14), to = rnd.nextInt(14);
            for (Op.SetFn fn : Op.SetFn.values()) {
                BitSet want = fn.apply((BitSet) a.clone(), bits(Runs.of(from, to)));
                assertEquals(want, fn.applyRun((BitSet) a.clone(), from, to), fn + " " + a + " [" + from + "," + to + ")");
            }
        }
    }

    @Test
    void storeScopesOnRunsAreScopesOnBits() {
        Random rnd = new Random(3);
        for (int trial = 0; trial < 20_000; trial++) {
            int size = rnd.nextInt(9);
            long set = Runs.of(rnd.nextInt(size + 1), rnd.nextInt(size + 1));
            long last = rnd.nextInt(4) == 0 ? Runs.NONE : Runs.of(rnd.nextInt(size + 1), rnd.nextInt(size + 1));
            BitSet all = bits(Runs.of(0, size));
            for (Instr.Scope sc : Instr.Scope.values()) {
                BitSet want = sc.covered(all, bits(set), last == Runs.NONE ? null : bits(last));
                assertAgrees(want, sc.coveredRun(size, set, last), sc + " size " + size);
            }
        }
    }
}
