package dev.kvpc.ir.pass;

import dev.kvpc.ir.*;

import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;
import java.util.function.Function;

/** The optimisation pipeline: every pass in order, each result verified when asked and offered for dumping. */
public final class Pipeline {
    /** Pass names, in the order {@link #run} applies them. */
    public static final List<String> PASSES = List.of("specialize", "cse", "fuse-statistics", "dead-code", "incrementalize",
            "amortize-eviction", "select-algorithm");

    /**
     * @param slack  amortised-eviction slack (0: evict on every overflow)
     * @param verify run the verifier after every pass
     */
    public record Options(int slack, boolean verify) {
        public static final Options DEFAULT = new Options(0, true);
    }

    private Pipeline() {}

    /** Runs every pass; {@code after} sees the result of each (by name). */
    public static Specialized run(IrProgram program, String root, LaneShape shape, Map<String, Object> params,
                                  Function<String, double[][]> tables, Options options, BiConsumer<String, Specialized> after) {
        Specialized s = Specialize.run(program, root, shape, params, tables);
        s = done("specialize", s, options, after);
        s = done("cse", s.map(Cse::run), options, after);
        s = done("fuse-statistics", s.map(FuseStatistics::run), options, after);
        s = done("dead-code", s.map(DeadCode::run), options, after);
        s = done("incrementalize", s.map(Incrementalize::run), options, after);
        s = done("amortize-eviction", s.map(p -> AmortizeEviction.run(p, options.slack())), options, after);
        s = done("select-algorithm", s.map(SelectAlgorithm::run), options, after);
        return s;
    }

    private static Specialized done(String pass, Specialized s, Options options, BiConsumer<String, Specialized> after) {
        if (options.verify()) {
            try {
                s.classes().forEach(Verifier::verify);
            } catch (Verifier.VerifyException e) {
                throw new Verifier.VerifyException("after pass " + pass + ":\n" + e.getMessage());
            }
        }
        after.accept(pass, s);
        return s;
    }
}
