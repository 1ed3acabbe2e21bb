package dev.kvpc.compiler.api;

import dev.kvpc.compiler.check.CheckedProgram;
import dev.kvpc.compiler.check.Tables;
import dev.kvpc.compiler.lower.Lowering;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.ir.IrProgram;
import dev.kvpc.ir.LaneShape;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.pass.Pipeline;

import java.util.HashMap;
import java.util.Map;
import java.util.function.BiConsumer;
import java.util.function.Function;

/** From a checked program to optimised, specialised IR: lowering, then the pass pipeline. */
public final class Compilation {
    private Compilation() {}

    public static LaneShape lanes(ModelShape m) {
        return new LaneShape(m.layers(), m.heads(), m.kvHeads(), m.headDim());
    }

    /** The policy a file is about: the last policy or config declared in the root file. */
    public static String defaultRoot(CheckedProgram p) {
        return p.program().defaultRoot();
    }

    public static Function<String, double[][]> tables(CheckedProgram p) {
        Map<String, double[][]> cache = new HashMap<>();
        return file -> cache.computeIfAbsent(file, f -> Tables.readForProgram(p.program(), f, p.model()));
    }

    public static IrProgram lower(CheckedProgram p) {
        return Lowering.lower(p);
    }

    public static Specialized optimise(CheckedProgram p, String root, Map<String, Object> params, Pipeline.Options options,
                                       BiConsumer<String, Specialized> after) {
        return Pipeline.run(lower(p), root, lanes(p.model()), params, tables(p), options, after);
    }
}
