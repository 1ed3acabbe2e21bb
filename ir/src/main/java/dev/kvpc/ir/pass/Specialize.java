package dev.kvpc.ir.pass;

import dev.kvpc.ir.*;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * Pass 1, constant folding and specialisation: for every lane of the model, resolves the composition (clauses,
 * aliases, configs) down to a leaf policy with its parameter values, folds it for that lane, and merges lanes whose
 * folded policies are identical into one class. Lanes no clause claims run the full cache (class -1).
 */
public final class Specialize {
    private Specialize() {}

    /**
     * @param overrides parameter values of the root policy that replace its defaults
     * @param tables    reads a calibration table by file name (rows = layers, columns = KV heads)
     */
    public static Specialized run(IrProgram program, String root, LaneShape shape, Map<String, Object> overrides,
                                  Function<String, double[][]> tables) {
        PolicyIr rootPolicy = program.policy(root).orElseThrow(() -> new IllegalArgumentException("no policy '" + root + "'"));
        List<PolicyIr> classes = new ArrayList<>();
        Map<PolicyIr, Integer> index = new HashMap<>();
        int[][] classOf = new int[shape.layers()][shape.kvHeads()];
        for (int l = 0; l < shape.layers(); l++) {
            for (int h = 0; h < shape.kvHeads(); h++) {
                Map<String, Object> env = params(rootPolicy, overrides, shape, l, h, tables, Map.of());
                PolicyIr leaf = resolve(program, rootPolicy, env, shape, l, h, tables, 0);
                if (leaf == null) {
                    classOf[l][h] = -1;
                    continue;
                }
                int c = index.computeIfAbsent(leaf, k -> {
                    classes.add(k);
                    return classes.size() - 1;
                });
                classOf[l][h] = c;
            }
        }
        // standard attention is built in: a file need not import variants.kvp to run under it
        String name = rootPolicy.variant() == null ? "standard" : rootPolicy.variant();
        AttentionIr variant = name.equals("standard") ? program.variant(name).orElse(null)
                : program.variant(name).orElseThrow(() -> new IllegalArgumentException("no attention variant " + name));
        return new Specialized(root, shape, classes, classOf, variant);
    }

    /** Parameter values: explicit ones first, then defaults evaluated in order (a default may read earlier params). */
    private static Map<String, Object> params(PolicyIr p, Map<String, Object> given, LaneShape shape, int l, int h,
                                              Function<String, double[][]> tables, Map<String, Object> outer) {
        Map<String, Object> env = new LinkedHashMap<>(outer);
        for (PolicyIr.Param prm : p.params()) {
            if (given.containsKey(prm.name())) {
                Object v = given.get(prm.name());
                // a table is given by its file's name, as a default names one: the table it holds
                if (v instanceof String file) {
                    double[][] t = tables.apply(file);
                    if (t == null) throw new IllegalArgumentException("parameter " + prm.name() + " of " + p.name() + ": no table " + file + " was read");
                    v = t;
                }
                env.put(prm.name(), v);
            } else if (prm.init() != null) {
                Object v = Fold.evaluate(prm.init(), new Fold.Lane(shape, l, h, env, tables));
                if (v == null) throw new IllegalStateException("default of " + p.name() + "." + prm.name() + " is not a constant");
                env.put(prm.name(), v);
            } else {
                throw new IllegalArgumentException("policy " + p.name() + " needs a value for parameter " + prm.name());
            }
        }
        return env;
    }

    /**
     * How many policies deep a composition may go (each alias, {@code use} or inline body one level): the checker
     * reports deeper ones (E112), so this limit is never met by a program that checked.
     */
    public static final int MAX_DEPTH = 64;

    private static PolicyIr resolve(IrProgram program, PolicyIr p, Map<String, Object> env, LaneShape shape, int l, int h,
                                    Function<String, double[][]> tables, int depth) {
        if (depth > MAX_DEPTH) throw new IllegalStateException("composition nested too deeply at " + p.name());
        Fold.Lane lane = new Fold.Lane(shape, l, h, env, tables);
        if (p.isLeaf()) return Fold.policy(p, lane);
        for (PolicyIr.Clause c : p.clauses()) {
            Object g = Fold.evaluate(c.guard(), lane);
            if (!(g instanceof Boolean b)) throw new IllegalStateException("guard of a clause of " + p.name() + " is not a lane constant");
            if (!b) continue;
            return switch (c.target()) {
                case PolicyIr.Inline in -> resolve(program, in.body(), env, shape, l, h, tables, depth + 1);
                case PolicyIr.Use u -> {
                    PolicyIr target = program.policy(u.policy()).orElseThrow(() -> new IllegalArgumentException("no policy " + u.policy()));
                    Map<String, Object> args = new HashMap<>();
                    u.args().forEach((name, comp) -> {
                        Object v = Fold.evaluate(comp, lane);
                        if (v == null) throw new IllegalStateException("argument " + name + " of " + u.policy() + " is not a lane constant");
                        args.put(name, v);
                    });
                    yield resolve(program, target, params(target, args, shape, l, h, tables, Map.of()), shape, l, h, tables, depth + 1);
                }
            };
        }
        return null;
    }
}
