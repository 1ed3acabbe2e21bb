package dev.kvpc.compiler.gen;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

/**
 * Random, well-typed KVP programs for differential and property tests of compiler passes.
 *
 * <p>{@link #generate(long)} returns the text of one file: optional helper {@code fn}s, then one policy named
 * {@code gen_<seed>} that {@code kvpc check} accepts under the reference model shape (32 layers, 8 KV heads, group 4,
 * head dimension 128) with no diagnostic at all, errors or warnings. The same seed always gives the same text.
 *
 * <p>Expressions are built over named axes (docs/language.md section 5): every sub-expression is generated for an
 * exact target shape from the signals and states that carry it, reduced or broadcast as needed. The generator keeps
 * the checker's other rules by construction:
 * <ul>
 *   <li>evidence (E400): in handlers that run at prefill (or overflow) without {@code observe}, and in {@code on
 *       chunk}, {@code q}, {@code attn} and {@code logits} are only read as the direct operand of a reduction whose
 *       {@code over:} includes {@code query};</li>
 *   <li>budgets (E300-E303): every count it writes is a compile-time constant it knows, or a form whose lower bound is
 *       0; every {@code on overflow(B)} ends with a keep whose largest size is provably at most {@code B} (and whose
 *       first/last part fits); every keep and attend set includes {@code last(n)}, n &gt;= 1, or another provably
 *       non-empty part;</li>
 *   <li>usage (W100-W102): every parameter, let binding and function is created at the point where it is read, and
 *       every state is read somewhere (a final {@code on decode} reads any that the random part left unread);</li>
 *   <li>storage (W200, E500, E501): 2- and 4-bit formats always come with {@code except last(r)}, r &gt;= 1 (or a
 *       {@code for} scope), per-token groups divide 128.</li>
 * </ul>
 * Programs have 5 to 40 lines.
 */
public final class ProgramGenerator {
    /** Layers of the reference shape, for depth-dependent budgets. */
    private static final int LAYERS = 32;

    private enum Ax {
        QUERY("query"), GROUP("group"), HEAD("head"), TOKEN("token"), CHANNEL("channel"), PAGE("page");
        final String word;

        Ax(String word) {
            this.word = word;
        }
    }

    private enum El { INT, FLOAT, BOOL }

    /** Operator precedence levels (docs/language.md section 3); higher binds tighter. */
    private static final int P_COND = 1, P_OR = 2, P_AND = 3, P_CMP = 4, P_WITHIN = 5, P_ADD = 6, P_AMP = 7, P_MUL = 8,
            P_UNARY = 9, P_PRIM = 10;

    /** An expression: its text, precedence, element kind and axes ({@code sh} is null for token sets). */
    private record Ex(String t, int p, El el, EnumSet<Ax> sh) {}

    /** An int that is known at compile time in each lane, with its smallest and largest value over the lanes. */
    private record K(String t, int p, long lo, long hi) {}

    private static final class St {
        final String name;
        final El el;
        final EnumSet<Ax> sh;
        final String scope;
        boolean read, written;

        St(String name, El el, EnumSet<Ax> sh, String scope) {
            this.name = name;
            this.el = el;
            this.sh = sh;
            this.scope = scope;
        }
    }

    /**
     * Something an expression can read: a signal, a state, or a small composite ({@code dot(k, v)}).
     * {@code rows}: a query-row signal, readable where restricted only as the direct operand of a reduction over query.
     * {@code composite}: reads query rows but is not a name, so never readable where restricted.
     */
    private record Src(String t, El el, EnumSet<Ax> sh, boolean rows, boolean composite, St st) {}

    /** A block of statements being generated, with what its handler allows. */
    private final class Block {
        final int indent;
        final boolean restricted, canKeep, canAttend, lets;
        final List<String> lines = new ArrayList<>();

        Block(int indent, boolean restricted, boolean canKeep, boolean canAttend, boolean lets) {
            this.indent = indent;
            this.restricted = restricted;
            this.canKeep = canKeep;
            this.canAttend = canAttend;
            this.lets = lets;
        }

        Block child() {
            return new Block(indent + 1, restricted, canKeep, canAttend, lets);
        }

        void add(String line) {
            lines.add("    ".repeat(indent) + line);
        }
    }

    private static final Set<String> RESERVED = Set.of(
            // keywords
            "import", "policy", "fn", "attention", "config", "state", "let", "on", "every", "keep", "evict", "attend",
            "merge", "store", "if", "else", "otherwise", "within", "all", "compensation", "true", "false", "int", "float",
            "use",
            // soft keywords
            "positions", "selection", "per", "observe", "queries", "at", "token", "lane", "model", "page", "prefill", "chunk",
            "decode", "overflow", "into", "by", "weighted", "cosine", "nearest", "keys", "values", "as", "group", "for",
            "except", "heads", "head", "where", "layers", "logits", "mask", "normalize", "over", "least", "table", "bool",
            "in",
            // signals, builtins, axes, formats and option words
            "k", "v", "q", "attn", "pos", "age", "index", "len", "step", "context", "layer", "head_dim", "qpos", "kpos", "scale",
            "sum", "mean", "max", "min", "norm", "maxpool", "avgpool", "quantile", "abs", "exp", "log", "sqrt", "tanh",
            "sigmoid", "dot", "slope", "first", "last", "top", "bottom", "pages", "rank", "strata", "count", "member",
            "uniform", "gumbel", "maxcos", "maxdot", "share", "query", "channel", "f32", "f16",
            "bf16", "int8", "int4", "int2", "i32", "softmax", "none", "original", "cache", "standard");

    private static final String[] FLOATS = {"0.5", "0.25", "0.9", "1.0", "2.0", "0.1", "1e-3", "2.5e-1", "3.0", "0.75", "10.0"};
    private static final String[] UNIT_FLOATS = {"0.5", "0.25", "0.9", "0.1", "0.75", "0.125", "0.95"};

    // ---------------------------------------------------------------- entry point

    /** One KVP file holding the policy {@code gen_<seed>} (and perhaps helper functions); deterministic for a seed. */
    public static String generate(long seed) {
        return generate(seed, 0);
    }

    /**
     * As {@link #generate(long)}, with every overflow budget at most {@code budgetCap} (0: no cap), so that short
     * traces make the policy evict.
     */
    public static String generate(long seed, int budgetCap) {
        // sequential seeds give correlated first draws from java.util.Random: scramble them first (SplitMix64)
        long z = seed + 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        Random rnd = new Random(z ^ (z >>> 31));
        String first = null;
        for (int attempt = 0; attempt < 100; attempt++) {
            ProgramGenerator g = new ProgramGenerator(rnd, seed);
            g.budgetCap = budgetCap;
            String text = g.program();
            long lines = text.lines().count();
            if (lines >= 5 && lines <= 40) return text;
            if (first == null) first = text;
        }
        return first;
    }

    private final Random rnd;
    private final String policyName;
    private int budgetCap;
    private boolean perLayer, observe;
    private final List<String> fnDecls = new ArrayList<>();
    private final List<String> params = new ArrayList<>();
    private final List<String> header = new ArrayList<>();
    private final List<String> stateDecls = new ArrayList<>();
    private final List<String> policyLets = new ArrayList<>();
    private final List<String> policyStores = new ArrayList<>();
    private final List<String> handlers = new ArrayList<>();
    private final Set<String> taken = new HashSet<>(RESERVED);
    private final List<St> states = new ArrayList<>();
    /** Reductions over every cell of a per model state, read like signals. */
    private final List<String> cellStats = new ArrayList<>();
    /** Per model states whose cells an overflow budget may share a total by ({@code share(T, w)}). */
    private final List<String> shareWeights = new ArrayList<>();
    private final List<Src> sources = new ArrayList<>();
    private String boolFn, floatFn;

    private ProgramGenerator(Random rnd, long seed) {
        this.rnd = rnd;
        this.policyName = "gen_" + (seed < 0 ? "m" + Long.toString(seed).substring(1) : Long.toString(seed));
        taken.add(policyName);
    }

    private String program() {
        perLayer = chance(0.15);
        observe = chance(0.2);
        if (perLayer) header.add("selection per layer");
        if (observe) header.add(observeItem());
        if (chance(0.1)) header.add("positions " + (chance(0.7) ? "cache" : "original"));
        declareStates();
        buildSources();

        boolean pages = states.stream().anyMatch(s -> s.scope.equals("page"));
        boolean ints = states.stream().anyMatch(s -> s.el == El.INT && !s.scope.equals("page"));
        if (!updatable().isEmpty()) accumulateHandler();
        if (chance(observe || perLayer ? 0.6 : 0.25)) prefillHandler();
        if (chance(pages ? 0.85 : 0.35)) decodeHandler();
        if (chance(ints ? 0.55 : 0.25)) everyHandler();
        if (chance(0.55)) overflowHandler();
        if (chance(0.2)) policyStore();
        if (handlers.isEmpty() && policyStores.isEmpty()) {
            if (chance(0.5)) overflowHandler();
            else decodeHandler();
        }
        readUnreadStates();
        return render();
    }

    private String render() {
        StringBuilder sb = new StringBuilder();
        for (String f : fnDecls) sb.append(f).append("\n\n");
        if (chance(0.4)) sb.append("/// Generated policy ").append(policyName).append(".\n");
        sb.append("policy ").append(policyName);
        if (!params.isEmpty()) sb.append('(').append(String.join(", ", params)).append(')');
        else if (chance(0.3)) sb.append("()");
        sb.append(" {\n");
        for (List<String> part : List.of(header, stateDecls, policyLets)) {
            for (String item : part) sb.append("    ").append(item).append('\n');
        }
        for (String item : policyStores) sb.append(item).append('\n');
        for (String h : handlers) sb.append(h).append('\n');
        sb.append("}\n");
        return sb.toString();
    }

    private static String handler(String head, Block b) {
        StringBuilder sb = new StringBuilder("    ").append(head).append(" {\n");
        for (String l : b.lines) sb.append(l).append('\n');
        return sb.append("    }").toString();
    }

    // ---------------------------------------------------------------- random helpers

    private boolean chance(double p) {
        return rnd.nextDouble() < p;
    }

    private int between(int lo, int hi) {
        return lo + rnd.nextInt(hi - lo + 1);
    }

    private long betweenL(long lo, long hi) {
        return lo + (long) (rnd.nextDouble() * (hi - lo + 1));
    }

    @SafeVarargs
    private <T> T pick(T... xs) {
        return xs[rnd.nextInt(xs.length)];
    }

    private <T> T pick(List<T> xs) {
        return xs.get(rnd.nextInt(xs.size()));
    }

    private String fresh(String base) {
        if (taken.add(base)) return base;
        for (int i = 2; ; i++) {
            if (taken.add(base + i)) return base + i;
        }
    }

    private static EnumSet<Ax> ax(Collection<Ax> c) {
        EnumSet<Ax> s = EnumSet.noneOf(Ax.class);
        s.addAll(c);
        return s;
    }

    private static EnumSet<Ax> ax(Ax... a) {
        return ax(Arrays.asList(a));
    }

    private static String par(Ex e, int min) {
        return e.p >= min ? e.t : "(" + e.t + ")";
    }

    private static String par(K k, int min) {
        return k.p >= min ? k.t : "(" + k.t + ")";
    }

    private static Ex kex(K k) {
        return new Ex(k.t, k.p, El.INT, ax());
    }

    private static Ex set(String t, int p) {
        return new Ex(t, p, null, null);
    }

    /** A random subset of {@code t}: often empty or all of it. */
    private EnumSet<Ax> sub(Set<Ax> t) {
        int c = rnd.nextInt(10);
        if (c < 4) return ax();
        if (c < 7) return ax(t);
        EnumSet<Ax> s = ax();
        for (Ax a : t) if (chance(0.5)) s.add(a);
        return s;
    }

    /** The shape of a per-entry score: [token], or [head, token] under selection per layer. */
    private EnumSet<Ax> tok() {
        return perLayer && chance(0.4) ? ax(Ax.TOKEN, Ax.HEAD) : ax(Ax.TOKEN);
    }

    // ---------------------------------------------------------------- compile-time ints, parameters, functions

    private K lit(long v) {
        return new K(Long.toString(v), P_PRIM, v, v);
    }

    private K intParam(String base, long v) {
        String n = fresh(base);
        String decl = n + ": int";
        if (chance(0.3)) {
            long lo = chance(0.5) ? (v >= 1 ? 1 : 0) : betweenL(0, v);
            long hi = v + betweenL(0, Math.max(v, 8) * 4);
            decl += " in " + lo + ".." + hi;
        }
        params.add(decl + " = " + v);
        return new K(n, P_PRIM, v, v);
    }

    /** A float scalar in [0, 1]: a literal or a parameter. */
    private Ex unitFloat(String base, String[] choices) {
        String v = pick(choices);
        if (chance(0.6)) return new Ex(v, P_PRIM, El.FLOAT, ax());
        String n = fresh(base);
        params.add(n + ": float" + (chance(0.5) ? " in 0.0..1.0" : "") + " = " + v);
        return new Ex(n, P_PRIM, El.FLOAT, ax());
    }

    /** An int known at compile time with a value in [lo, hi]; may create parameters or policy-level lets. */
    private K intIn(long lo, long hi, String base, boolean allowLet) {
        if (hi < lo) hi = lo;
        long v = betweenL(lo, hi);
        int c = rnd.nextInt(10);
        if (c < 4) return lit(v);
        if (c < 7) return intParam(base, v);
        if (c == 7 && v >= 2 && v % 2 == 0) {
            K h = intParam(base, v / 2);
            return new K(h.t + " * 2", P_MUL, v, v);
        }
        if (c == 8 && v >= 1) {
            double f = pick(0.25, 0.5, 0.75);
            long total = (long) Math.ceil(v / f);
            long value = (long) (total * f);
            if (value >= lo && value <= hi) {
                K p = chance(0.6) ? intParam(base + "_total", total) : lit(total);
                Ex fx = chance(0.5) ? new Ex(Double.toString(f), P_PRIM, El.FLOAT, ax()) : floatParam(base + "_frac", Double.toString(f));
                return new K("int(" + p.t + " * " + fx.t + ")", P_PRIM, value, value);
            }
        }
        if (c == 9 && allowLet) {
            K inner = intIn(v, v, base, false);
            String n = fresh(base);
            policyLets.add("let " + n + " = " + inner.t);
            return new K(n, P_PRIM, inner.lo, inner.hi);
        }
        return lit(v);
    }

    private K intIn(long lo, long hi, String base) {
        return intIn(lo, hi, base, true);
    }

    private Ex floatParam(String base, String value) {
        String n = fresh(base);
        String range = Double.parseDouble(value) <= 1.0 ? " in 0.0..1.0" : " in 0.0..100.0";
        params.add(n + ": float" + (chance(0.5) ? range : "") + " = " + value);
        return new Ex(n, P_PRIM, El.FLOAT, ax());
    }

    /** A budget: a constant, a sum of two, or a depth-dependent function of the layer. */
    private K budget() {
        if (budgetCap > 0) {
            return chance(0.5) ? intIn(12, budgetCap, "budget") : lit(betweenL(12, budgetCap));
        }
        int c = rnd.nextInt(100);
        if (c < 45) return intIn(16, chance(0.5) ? 256 : 4096, "budget");
        if (c < 62) {
            K s = intIn(1, 16, "sinks");
            K w = intIn(16, 1024, "window");
            return new K(s.t + " + " + par(w, P_ADD + 1), P_ADD, s.lo + w.lo, s.hi + w.hi);
        }
        if (c < 82) return budgetFn();
        return lit(betweenL(16, 2048));
    }

    /**
     * A budget that is a share of a total among a model state's cells plus a fixed part: at least the fixed part, at
     * most both (literals, within the cap).
     */
    private K shareBudget() {
        long cap = budgetCap > 0 ? budgetCap : 1024;
        K fixed = lit(betweenL(12, Math.max(12, cap / 2)));
        K total = lit(betweenL(0, Math.max(0, cap - fixed.hi)));
        return new K("share(" + total.t + ", " + pick(shareWeights) + ") + " + par(fixed, P_ADD + 1), P_ADD, fixed.lo, total.hi + fixed.hi);
    }

    private K budgetFn() {
        String f = fresh(pick("depth_budget", "pyramid", "layer_budget"));
        String doc = chance(0.5) ? "/// A budget for this lane's layer.\n" : "";
        switch (rnd.nextInt(3)) {
            case 0 -> {
                String base = fresh("base"), extra = fresh("extra");
                String body;
                if (chance(0.5)) {
                    String span = fresh("span");
                    body = "    let " + span + " = layers - 1\n    int(" + base + " + " + extra + " * (" + span + " - layer) / " + span + ")\n";
                } else {
                    body = "    int(" + base + " + " + extra + " * (layers - 1 - layer) / (layers - 1))\n";
                }
                fnDecls.add(doc + "fn " + f + "(" + base + ": int, " + extra + ": int) -> int {\n" + body + "}");
                K b = intIn(16, 1024, "base");
                K e = intIn(0, 512, "extra");
                return new K(f + "(" + b.t + ", " + e.t + ")", P_PRIM, b.lo, b.hi + e.hi);
            }
            case 1 -> {
                String base = fresh("base");
                fnDecls.add(doc + "fn " + f + "(" + base + ": int) -> int {\n    layer < layers / 2 ? " + base + " * 2 : " + base + "\n}");
                K b = intIn(16, 1024, "base");
                return new K(f + "(" + b.t + ")", P_PRIM, b.lo, 2 * b.hi);
            }
            default -> {
                String base = fresh("base"), floor = fresh("floor");
                int step = between(1, 32);
                fnDecls.add(doc + "fn " + f + "(" + base + ": int, " + floor + ": int) -> int {\n    max(" + base + " - layer * " + step
                        + ", " + floor + ")\n}");
                K b = intIn(64, 2048, "base");
                K fl = intIn(16, 64, "floor");
                long lo = Math.max(b.lo - (long) (LAYERS - 1) * step, fl.lo);
                return new K(f + "(" + b.t + ", " + fl.t + ")", P_PRIM, lo, Math.max(b.hi, fl.hi));
            }
        }
    }

    private String boolFn() {
        if (boolFn == null) {
            boolFn = fresh(pick("deep", "late_layer", "gate"));
            String th = fresh("th");
            String body = switch (rnd.nextInt(3)) {
                case 0 -> "layer >= " + th;
                case 1 -> "layer % 2 == 0 || layer < " + th;
                default -> "head < heads / 2 && layer >= " + th;
            };
            fnDecls.add("fn " + boolFn + "(" + th + ": int) -> bool {\n    " + body + "\n}");
        }
        return boolFn;
    }

    private String floatFn() {
        if (floatFn == null) {
            floatFn = fresh(pick("decay_at", "rate_for"));
            String rate = fresh("rate");
            String body;
            if (chance(0.5)) {
                String depth = fresh("depth");
                body = "    let " + depth + " = layer / layers\n    " + rate + " + (1.0 - " + rate + ") * " + depth + "\n";
            } else {
                body = "    " + rate + " + (1.0 - " + rate + ") * layer / layers\n";
            }
            fnDecls.add("fn " + floatFn + "(" + rate + ": float) -> float {\n" + body + "}");
        }
        return floatFn;
    }

    // ---------------------------------------------------------------- declarations

    private String observeItem() {
        return switch (rnd.nextInt(4)) {
            case 0 -> "observe all queries at prefill";
            case 1 -> "observe first(" + intIn(1, 64, "window", false).t + ") queries at prefill";
            default -> "observe last(" + intIn(1, 64, "window", false).t + ") queries at prefill";
        };
    }

    private void declareStates() {
        int tokens = pick(0, 1, 1, 2);
        for (int i = 0; i < tokens; i++) {
            boolean f = chance(0.7);
            String n = fresh(f ? pick("acc", "imp", "heat") : pick("low", "hits", "cnt"));
            String init = chance(0.25) ? "" : " = " + (f ? pick("0", "0.0", "1.0") : pick("0", "1"));
            stateDecls.add("state " + n + ": " + (f ? "f32" : "i32") + " per token" + init);
            EnumSet<Ax> sh = ax(Ax.TOKEN);
            if (perLayer) sh.add(Ax.HEAD);
            states.add(new St(n, f ? El.FLOAT : El.INT, sh, "token"));
        }
        if (chance(0.2)) {
            // a per-token flag (4 bytes an entry in the runtime, as every state element)
            String n = fresh(pick("flag", "hot", "marked"));
            stateDecls.add("state " + n + ": bool per token" + (chance(0.5) ? "" : " = " + pick("true", "false")));
            EnumSet<Ax> sh = ax(Ax.TOKEN);
            if (perLayer) sh.add(Ax.HEAD);
            states.add(new St(n, El.BOOL, sh, "token"));
        }
        if (chance(0.25)) {
            boolean f = chance(0.5);
            String n = fresh(f ? pick("total", "mass") : pick("seen", "ticks"));
            stateDecls.add("state " + n + ": " + (f ? "f32" : "i32") + " per lane" + (chance(0.7) ? " = 0" : ""));
            states.add(new St(n, f ? El.FLOAT : El.INT, perLayer ? ax(Ax.HEAD) : ax(), "lane"));
        }
        if (chance(0.15)) {
            // shared by the policy's lanes across layers: a cell per layer, per lane, or one for the model; read at the
            // lane's own cell, and all of them through a reduction by name
            int kind = rnd.nextInt(3);
            String cells = kind == 0 ? "[layer]" : kind == 1 ? "[layer, head]" : "";
            String n = fresh(pick("pref", "spread", "weight"));
            stateDecls.add("state " + n + ": f32" + cells + " per model" + (chance(0.5) ? "" : " = " + pick("0", "1.0")));
            states.add(new St(n, El.FLOAT, perLayer && kind == 1 ? ax(Ax.HEAD) : ax(), "model"));
            if (kind != 2) cellStats.add(pick("sum", "mean", "max", "min") + "(" + n + ", over: " + (kind == 0 ? "layer" : "layer, head") + ")");
            // under per-layer selection a share is the layer's: weights per layer only
            if (kind == 0 || kind == 1 && !perLayer) shareWeights.add(n);
        }
        if (!perLayer && chance(0.12)) {
            // one value per text position, shared by the policy's lanes (per KV head with a head axis): read and written
            // at the lane's entries' positions, like a per token state
            String n = fresh(pick("marks", "chosen", "record"));
            stateDecls.add("state " + n + ": f32" + pick("[token]", "[head, token]") + " per model" + (chance(0.6) ? "" : " = " + pick("0", "-1.0", "0.5")));
            states.add(new St(n, El.FLOAT, ax(Ax.TOKEN), "token"));
        }
        if (chance(0.16)) {
            K size = intIn(4, 32, "page_size", false);
            int n = pick(1, 2, 2);
            String[][] channel = {{"kmin", "min(k, over: token)"}, {"kmax", "max(k, over: token)"}, {"vmean", "mean(v, over: token)"},
                    {"vmax", "max(v, over: token)"}};
            String[][] scalar = {{"pk", "max(norm(k, over: channel), over: token)"}, {"pv", "mean(norm(v, over: channel), over: token)"}};
            int start = rnd.nextInt(channel.length);
            for (int i = 0; i < n; i++) {
                boolean perChannel = chance(0.75);
                String[] d = perChannel ? channel[(start + i) % channel.length] : pick(scalar);
                String name = fresh(d[0]);
                stateDecls.add("state " + name + ": f32" + (perChannel ? "[channel]" : "") + " per page(" + size.t + ") = " + d[1]);
                EnumSet<Ax> sh = perChannel ? ax(Ax.CHANNEL, Ax.PAGE) : ax(Ax.PAGE);
                if (perLayer) sh.add(Ax.HEAD);
                states.add(new St(name, El.FLOAT, sh, "page"));
            }
        }
    }

    private void buildSources() {
        EnumSet<Ax> h = perLayer ? ax(Ax.HEAD) : ax();
        addSignal("k", El.FLOAT, h, false, false, Ax.TOKEN, Ax.CHANNEL);
        addSignal("v", El.FLOAT, h, false, false, Ax.TOKEN, Ax.CHANNEL);
        addSignal("q", El.FLOAT, h, true, false, Ax.QUERY, Ax.GROUP, Ax.CHANNEL);
        addSignal("attn", El.FLOAT, h, true, false, Ax.QUERY, Ax.GROUP, Ax.TOKEN);
        addSignal("attn", El.FLOAT, h, true, false, Ax.QUERY, Ax.GROUP, Ax.TOKEN);
        addSignal("logits", El.FLOAT, h, true, false, Ax.QUERY, Ax.GROUP, Ax.TOKEN);
        addSignal("pos", El.INT, h, false, false, Ax.TOKEN);
        addSignal("age", El.INT, h, false, false, Ax.TOKEN);
        addSignal("index", El.INT, h, false, false, Ax.TOKEN);
        addSignal("dot(k, v)", El.FLOAT, h, false, false, Ax.TOKEN);
        addSignal("dot(q, k)", El.FLOAT, h, false, true, Ax.QUERY, Ax.GROUP, Ax.TOKEN);
        for (String s : List.of("len", "step", "context", "layer", "layers", "heads", "head_dim")) {
            addSignal(s, El.INT, ax(), false, false);
        }
        for (String c : cellStats) sources.add(new Src(c, El.FLOAT, ax(), false, false, null));
        // states are read more often than any one signal; flags are read as truth values (boolEx), not numbers
        for (int twice = 0; twice < 2; twice++) {
            for (St s : states) if (s.el != El.BOOL) sources.add(new Src(s.name, s.el, s.sh, false, false, s));
        }
    }

    private void addSignal(String t, El el, EnumSet<Ax> extra, boolean rows, boolean composite, Ax... axes) {
        EnumSet<Ax> sh = ax(axes);
        if (!sh.isEmpty()) sh.addAll(extra);
        sources.add(new Src(t, el, sh, rows, composite, null));
    }

    private List<St> updatable() {
        return states.stream().filter(s -> !s.scope.equals("page")).toList();
    }

    // ---------------------------------------------------------------- handlers

    private Block block(boolean restricted, boolean canKeep, boolean canAttend) {
        return new Block(2, restricted, canKeep, canAttend, true);
    }

    private void accumulateHandler() {
        String ev = pick("prefill, decode", "prefill, decode", "decode", "decode, prefill", "chunk, decode", "prefill",
                "prefill, chunk, decode");
        boolean restricted = ev.contains("chunk") || (ev.contains("prefill") && !observe);
        Block b = block(restricted, true, ev.equals("decode"));
        List<St> us = updatable();
        boolean any = false;
        for (St s : us) {
            if (chance(0.8)) {
                update(b, s);
                any = true;
            }
        }
        if (!any) update(b, pick(us));
        if (chance(0.2)) stmt(b, 0, true);
        handlers.add(handler("on " + ev, b));
    }

    private void prefillHandler() {
        Block b = block(!observe, true, false);
        if (chance(0.3)) stmt(b, 0, false);
        int c = rnd.nextInt(4);
        if (c == 0) {
            K w = intIn(1, 64, "window");
            Ex s = tokScore(b);
            K n = intIn(0, 1024, "budget");
            b.add("keep top(" + par(s, P_WITHIN) + " within first(len - " + par(w, P_ADD + 1) + "), " + n.t + ") + last(" + w.t + ")");
        } else if (c == 1) {
            Ex s = tokScore(b);
            Ex f = unitFloat("ratio", UNIT_FLOATS);
            String count = chance(0.5) ? "int(len * " + f.t + ")" : "int(len * (1 - " + f.t + "))";
            b.add("keep top(" + s.t + ", " + count + ") + last(" + intIn(1, 32, "recent").t + ")");
        } else if (perLayer && (c == 2 || chance(0.4))) {
            b.add("keep " + perHeadTop(b).t + " + last(" + intIn(1, 64, "window").t + ")");
        } else {
            b.add("keep " + nonEmptySet(b).t);
        }
        if (chance(0.3)) stmt(b, 0, true);
        handlers.add(handler("on prefill", b));
    }

    private void decodeHandler() {
        Block b = block(false, true, true);
        boolean any = false;
        if (states.stream().anyMatch(s -> s.scope.equals("page")) && chance(0.8)) {
            b.add("attend pages(top(" + pageScore(b).t + ", " + intIn(1, 64, "pages").t + ")) + last(" + intIn(1, 64, "recent").t + ")");
            any = true;
        } else if (!perLayer && chance(0.25)) {
            // each query head of the group attends its own best (sets per query head, lane selection only)
            K r = intIn(1, 32, "recent");
            int form = between(0, 2);
            String score = form == 0 ? "max(sum(q * k, over: channel), over: query)"
                    : form == 1 ? "sum(abs(q) * abs(k), over: channel, query)"
                    : "mean(sum(q * k, over: channel), over: query) + " + unitFloat("bias", UNIT_FLOATS).t;
            String best = "top(" + score + " within first(len - " + r.t + "), " + intIn(1, 64, "tokens").t + ")";
            if (chance(0.3)) best = "where(member(" + best + "))";
            b.add("attend " + best + " + last(" + r.t + ")");
            any = true;
        }
        int n = any ? between(0, 1) : between(1, 2);
        for (int i = 0; i < n; i++) stmt(b, 0, true);
        handlers.add(handler("on decode", b));
    }

    private void everyHandler() {
        K period = intIn(1, 256, "period");
        Block b = block(false, false, false);
        int n = between(1, 2);
        for (int i = 0; i < n; i++) stmt(b, 0, false);
        handlers.add(handler("every " + period.t, b));
    }

    private void overflowHandler() {
        Block b = block(!observe, true, false);
        boolean share = !shareWeights.isEmpty() && chance(0.8);
        K budget = share ? shareBudget() : budget();
        int pre = pick(0, 0, 1, 2);
        for (int i = 0; i < pre; i++) stmt(b, 0, false);
        finalKeep(b, budget, share);
        handlers.add(handler("on overflow(" + budget.t + ")", b));
    }

    private void policyStore() {
        Block b = new Block(1, true, false, false, false);
        store(b);
        if (chance(0.3)) store(b);
        policyStores.addAll(b.lines);
    }

    /** Reads every state that nothing has read yet (W101), in one more decode handler. */
    private void readUnreadStates() {
        List<St> unread = states.stream().filter(s -> !s.read).toList();
        if (unread.isEmpty()) return;
        Block b = block(false, true, true);
        List<String> terms = new ArrayList<>();
        terms.add("last(" + intIn(1, 32, "recent").t + ")");
        List<String> tokenScores = new ArrayList<>();
        for (St s : unread) {
            s.read = true;
            if (s.el == El.BOOL) {
                terms.add("where(" + s.name + ")");
                continue;
            }
            switch (s.scope) {
                case "token" -> tokenScores.add(s.name);
                case "page" -> {
                    String score = s.sh.contains(Ax.CHANNEL) ? "sum(" + s.name + ", over: channel)" : s.name;
                    terms.add("pages(top(" + score + ", " + intIn(1, 32, "pages").t + "))");
                }
                default -> {
                    // a value per head of the layer (a per lane state, a [layer, head] model state) is reduced to one
                    String x = s.sh.contains(Ax.HEAD) ? "max(" + s.name + ", over: head)" : s.name;
                    terms.add("bottom(age, " + x + " > " + pick("0", "1", "0.5") + " ? " + intIn(1, 64, "n").t + " : " + intIn(0, 8, "m").t + ")");
                }
            }
        }
        if (!tokenScores.isEmpty()) terms.add("top(" + String.join(" + ", tokenScores) + ", " + intIn(1, 128, "n").t + ")");
        b.add("attend " + String.join(" + ", terms));
        handlers.add(handler("on decode", b));
    }

    // ---------------------------------------------------------------- statements

    private void stmt(Block b, int depth, boolean allowKeep) {
        List<String> kinds = new ArrayList<>();
        if (!updatable().isEmpty()) kinds.addAll(List.of("update", "update", "update"));
        if (b.canKeep) {
            kinds.add("evict");
            kinds.add("merge");
            kinds.add("merge");
            if (allowKeep) kinds.add("keep");
        }
        if (b.canAttend) kinds.addAll(List.of("attend", "attend"));
        kinds.add("store");
        if (depth < 2) kinds.add("if");
        switch (pick(kinds)) {
            case "update" -> {
                List<St> us = updatable();
                List<St> fresh = us.stream().filter(s -> !s.written).toList();
                update(b, pick(fresh.isEmpty() || chance(0.3) ? us : fresh));
            }
            case "evict" -> b.add("evict " + tokSet(between(0, 2), b).t);
            case "merge" -> merge(b);
            case "keep" -> b.add("keep " + nonEmptySet(b).t);
            case "attend" -> b.add("attend " + nonEmptySet(b).t);
            case "store" -> store(b);
            default -> ifStmt(b, depth, allowKeep);
        }
    }

    private void update(Block b, St s) {
        s.written = true;
        if (s.el == El.BOOL) {
            // a flag: set from a truth value of its axes or fewer
            b.add(s.name + " = " + boolEx(chance(0.7) ? ax(s.sh) : sub(s.sh), 1, b).t);
            return;
        }
        String op = pick("+=", "+=", "+=", "=", "=", "-=", "*=", "*=");
        String value;
        switch (op) {
            case "*=" -> value = factor(s.el, b).t;
            case "=" -> {
                int c = rnd.nextInt(3);
                if (c == 0) {
                    s.read = true;
                    Ex f = factor(s.el, b);
                    Ex v = stateValue(s, b);
                    value = s.name + " * " + par(f, P_MUL + 1) + " + " + par(v, P_ADD + 1);
                } else if (c == 1) {
                    value = pick("0", "1");
                } else {
                    value = stateValue(s, b).t;
                }
            }
            default -> value = stateValue(s, b).t;
        }
        b.add(s.name + " " + op + " " + value);
    }

    /** A value for state {@code s}: its kind, axes among its own. */
    private Ex stateValue(St s, Block b) {
        EnumSet<Ax> t = s.scope.equals("token") && chance(0.8) ? (perLayer && chance(0.5) ? ax(Ax.TOKEN) : ax(s.sh)) : sub(s.sh);
        if (s.scope.equals("token") && !t.contains(Ax.TOKEN) && chance(0.5)) t.add(Ax.TOKEN);
        return s.el == El.INT ? intNum(t, 2, b) : num(t, 2, b);
    }

    /** A scalar factor for {@code *=}: a decay. */
    private Ex factor(El el, Block b) {
        if (el == El.INT) return chance(0.5) ? new Ex(pick("0", "1", "2"), P_PRIM, El.INT, ax()) : kex(intIn(0, 4, "scale"));
        return switch (rnd.nextInt(5)) {
            case 0, 1 -> unitFloat("decay", UNIT_FLOATS);
            case 2 -> new Ex(floatFn() + "(" + unitFloat("rate", UNIT_FLOATS).t + ")", P_PRIM, El.FLOAT, ax());
            default -> num(ax(), 1, b);
        };
    }

    private void merge(Block b) {
        String src, dst;
        switch (rnd.nextInt(3)) {
            case 0 -> {
                dst = "compensation";
                src = tokSet(between(0, 2), b).t;
            }
            case 1 -> {
                Ex d = tokSet(between(0, 1), b);
                d = maybeLet(d, b, 0.5);
                dst = d.t;
                src = "all - " + par(d, P_ADD + 1);
            }
            default -> {
                src = tokSet(between(0, 1), b).t;
                dst = tokSet(between(0, 1), b).t;
            }
        }
        StringBuilder sb = new StringBuilder("merge ").append(src).append(" into ").append(dst);
        int by = rnd.nextInt(6);
        if (by == 0 || by == 1) sb.append(" by cosine(k)");
        else if (by == 2) sb.append(" by cosine(v)");
        else if (by == 3) sb.append(" by nearest");
        if (chance(0.4)) sb.append(" weighted by ").append(num(tok(), 1, b).t);
        b.add(sb.toString());
    }

    private void ifStmt(Block b, int depth, boolean allowKeep) {
        Ex cond = boolEx(ax(), 1, b);
        Block then = b.child();
        int n = between(1, 2);
        for (int i = 0; i < n; i++) stmt(then, depth + 1, allowKeep);
        b.add("if " + cond.t + " {");
        b.lines.addAll(then.lines);
        int c = rnd.nextInt(10);
        if (c < 4) {
            Block other = b.child();
            stmt(other, depth + 1, allowKeep);
            b.add("} else {");
            b.lines.addAll(other.lines);
        } else if (c == 4) {
            // the else-if condition cannot have let bindings of its own: check it in a block that makes none
            Ex cond2 = boolEx(ax(), 1, new Block(b.indent, b.restricted, b.canKeep, b.canAttend, false));
            Block other = b.child();
            stmt(other, depth + 1, allowKeep);
            b.add("} else if " + cond2.t + " {");
            b.lines.addAll(other.lines);
        }
        b.add("}");
    }

    private void store(Block b) {
        String targets = pick("keys", "values", "keys, values", "values, keys");
        int c = rnd.nextInt(10);
        if (c < 2) {
            // a `for` rule and an `otherwise` rule for the rest
            String fmt = pick("f16", "bf16", "f32", "int8");
            b.add("store " + targets + " as " + fmt + " for " + nonEmptySetOrAny(b));
            b.add("store " + targets + " as " + format() + " otherwise");
            return;
        }
        int bits;
        String fmt;
        String[] f = {"f16", "bf16", "f32", "int8", "int4", "int2", "int(b)"};
        String choice = pick(f);
        if (choice.equals("int(b)")) {
            bits = pick(2, 4, 8);
            K k = intIn(bits, bits, "bits");
            fmt = "int(" + k.t + ")";
        } else {
            fmt = choice;
            bits = switch (choice) {
                case "int8" -> 8;
                case "int4" -> 4;
                case "int2" -> 2;
                default -> 16;
            };
        }
        StringBuilder sb = new StringBuilder("store ").append(targets).append(" as ").append(fmt);
        if (bits <= 8) sb.append(quantOptions());
        if (bits <= 4) {
            if (chance(0.15)) {
                sb.append(" for ").append(tokSet(1, b).t);
            } else {
                String r = "last(" + intIn(1, 256, "residual").t + ")";
                int k = rnd.nextInt(4);
                if (k == 0) r = r + " + " + par(tokSet(0, b), P_ADD + 1);
                else if (k == 1) r = par(tokSet(0, b), P_ADD) + " + " + r;
                sb.append(" except ").append(r);
            }
        } else {
            int k = rnd.nextInt(4);
            if (k == 1) sb.append(" for ").append(tokSet(between(0, 1), b).t);
            else if (k == 2) sb.append(" except ").append(tokSet(between(0, 1), b).t);
        }
        b.add(sb.toString());
    }

    private String nonEmptySetOrAny(Block b) {
        return chance(0.5) ? nonEmptySet(b).t : tokSet(1, b).t;
    }

    /** A storage format with its options, for the entries an {@code otherwise} covers (no W200 check there). */
    private String format() {
        String fmt = pick("f16", "int8", "int4", "int2", "int(b)");
        if (fmt.equals("int(b)")) {
            int bits = pick(2, 4, 8);
            fmt = "int(" + intIn(bits, bits, "bits").t + ")";
        }
        if (fmt.startsWith("int")) fmt += quantOptions();
        return fmt;
    }

    private String quantOptions() {
        String per = pick("", "", " per token", " per channel");
        String group = "";
        if (chance(0.6)) {
            long n = per.equals(" per channel") ? pick(16, 32, 48, 64, 100) : pick(8, 16, 32, 64, 128);
            group = " group(" + (chance(0.7) ? Long.toString(n) : intIn(n, n, "group_size").t) + ")";
        }
        return chance(0.8) ? per + group : group + per;
    }

    /** The last keep of an overflow handler: at most {@code budget} entries, its protected part within it, non-empty. */
    private void finalKeep(Block b, K budget, boolean linear) {
        long lo = budget.lo;
        String bt = par(budget, P_ADD);
        // a share's budget is a symbol: only keeps whose sizes are the budget less constants are proved against it
        int c = linear ? pick(0, 1, 2, 4) : rnd.nextInt(12);
        switch (c) {
            case 0 -> {
                K s = intIn(1, Math.max(1, Math.min(8, lo / 4)), "sinks");
                K w = intIn(1, lo / 2, "window");
                b.add("keep first(" + s.t + ") + last(" + w.t + ") + " + rank() + "(" + tokScore(b).t + ", " + bt + " - "
                        + par(s, P_ADD + 1) + " - " + par(w, P_ADD + 1) + ")");
            }
            case 1 -> {
                K s = intIn(1, lo / 4, "sinks");
                b.add("keep first(" + s.t + ") + last(" + bt + " - " + par(s, P_ADD + 1) + ")");
            }
            case 2 -> b.add("keep last(" + budget.t + ")");
            case 3 -> {
                // compensation: the dropped entries merged into one extra entry
                K r = recent(budget, lo);
                String kept = fresh("kept");
                b.add("let " + kept + " = last(" + r.t + ") + " + rank() + "(" + tokScore(b).t + ", " + bt + " - " + par(r, P_ADD + 1) + " - 1)");
                b.add("merge all - " + kept + " into compensation" + mergeBy() + weight(b));
                b.add("keep " + kept + " + compensation");
            }
            case 4 -> {
                K s = intIn(1, Math.max(1, Math.min(8, lo / 4)), "sinks");
                K w = intIn(1, lo / 2, "window");
                // at most s + w + 1 <= budget
                b.add("merge all - first(" + s.t + ") - last(" + w.t + ") into compensation" + mergeBy());
                b.add("keep first(" + s.t + ") + last(" + w.t + ") + compensation");
            }
            case 5 -> {
                String kept = fresh("kept");
                b.add("let " + kept + " = " + recentPlusRanked(b, budget, lo));
                b.add("merge all - " + kept + " into " + kept + mergeBy() + weight(b));
                b.add("keep " + kept);
            }
            case 6 -> {
                Ex cond = boolEx(ax(), 1, b);
                Block then = b.child(), other = b.child();
                then.add("keep " + recentPlusRanked(then, budget, lo));
                if (chance(0.5)) other.add("keep last(" + budget.t + ")");
                else other.add("keep " + recentPlusRanked(other, budget, lo));
                b.add("if " + cond.t + " {");
                b.lines.addAll(then.lines);
                b.add("} else {");
                b.lines.addAll(other.lines);
                b.add("}");
            }
            case 7 -> {
                K r = recent(budget, lo);
                String rest = bt + " - " + par(r, P_ADD + 1);
                Ex where = whereSet(b);
                String part = chance(0.5) ? rank() + "(" + tokScore(b).t + ", " + rest + ") & " + where.t
                        : where.t + " & last(" + rest + ")";
                b.add("keep last(" + r.t + ") + (" + part + ")");
            }
            case 8 -> {
                K r = recent(budget, lo);
                Ex within = pick(1, 2, 3) == 1 ? set("first(len - " + par(r, P_ADD + 1) + ")", P_PRIM) : tokSet(1, b);
                b.add("keep last(" + r.t + ") + " + rank() + "(" + par(tokScore(b), P_WITHIN) + " within " + par(within, P_WITHIN + 1)
                        + ", " + bt + " - " + par(r, P_ADD + 1) + ")");
            }
            case 9 -> {
                K r = recent(budget, lo);
                String rest = bt + " - " + par(r, P_ADD + 1);
                Ex cond = boolEx(ax(), 1, b);
                b.add("keep last(" + r.t + ") + (" + par(cond, P_OR) + " ? " + rank() + "(" + tokScore(b).t + ", " + rest + ") : "
                        + rank() + "(" + tokScore(b).t + ", " + rest + "))");
            }
            case 10 -> {
                K r = recent(budget, lo);
                b.add("keep last(" + r.t + ") + (" + rank() + "(" + tokScore(b).t + ", " + bt + " - " + par(r, P_ADD + 1) + ") - "
                        + par(tokSet(1, b), P_ADD + 1) + ")");
            }
            default -> b.add("keep " + recentPlusRanked(b, budget, lo));
        }
    }

    /** {@code last(r) + top(score, B - r)}, in either order. */
    private String recentPlusRanked(Block b, K budget, long lo) {
        K r = recent(budget, lo);
        String ranked = rank() + "(" + tokScore(b).t + ", " + par(budget, P_ADD) + " - " + par(r, P_ADD + 1) + ")";
        String recent = "last(" + r.t + ")";
        return chance(0.7) ? recent + " + " + ranked : ranked + " + " + recent;
    }

    /** A recent window r with 1 <= r and B - r - 1 >= 0 in every lane: a constant up to half the lowest budget, or int(B * f), f <= 0.75. */
    private K recent(K budget, long lo) {
        if (chance(0.3)) {
            Ex f = unitFloat("recent", new String[] {"0.125", "0.25", "0.5", "0.75"});
            String t = "int(" + par(budget, P_MUL) + " * " + f.t + ")";
            if (chance(0.3)) {
                String n = fresh("r");
                policyLets.add("let " + n + " = " + t);
                t = n;
            }
            return new K(t, P_PRIM, 1, budget.hi);
        }
        return intIn(1, Math.max(1, lo / 2), "recent");
    }

    private String rank() {
        return chance(0.7) ? "top" : "bottom";
    }

    private String mergeBy() {
        return switch (rnd.nextInt(5)) {
            case 0, 1 -> " by cosine(k)";
            case 2 -> " by cosine(v)";
            case 3 -> " by nearest";
            default -> "";
        };
    }

    private String weight(Block b) {
        return chance(0.4) ? " weighted by " + tokScore(b).t : "";
    }

    // ---------------------------------------------------------------- token sets

    /** A set that is provably non-empty: a recent window joined to another set. */
    private Ex nonEmptySet(Block b) {
        K m = intIn(1, 64, "recent");
        Ex x = perLayer && chance(0.35) ? perHeadTop(b) : tokSet(between(0, 2), b);
        String recent = "last(" + m.t + ")";
        Ex r = chance(0.5) ? set(recent + " + " + par(x, P_ADD + 1), P_ADD) : set(par(x, P_ADD) + " + " + recent, P_ADD);
        return maybeLet(r, b, 0.1);
    }

    private Ex perHeadTop(Block b) {
        K n = intIn(1, 256, "per_head");
        K floor = intIn(0, n.lo, "floor");
        return set("top(" + tokScore(b).t + ", heads * " + par(n, P_MUL + 1) + ", per head at least " + floor.t + ")", P_PRIM);
    }

    private Ex tokSet(int d, Block b) {
        int c = rnd.nextInt(100);
        if (d > 0 && c < 30) {
            Ex l = tokSet(d - 1, b), r = tokSet(d - 1, b);
            return switch (rnd.nextInt(5)) {
                case 0, 1 -> set(par(l, P_ADD) + " + " + par(r, P_ADD + 1), P_ADD);
                case 2 -> set(par(l, P_ADD) + " - " + par(r, P_ADD + 1), P_ADD);
                case 3 -> set(par(l, P_AMP) + " & " + par(r, P_AMP + 1), P_AMP);
                default -> set(par(l, P_WITHIN) + " within " + par(r, P_WITHIN + 1), P_WITHIN);
            };
        }
        if (d > 0 && c < 34) {
            Ex cond = boolEx(ax(), 1, b);
            Ex x = tokSet(d - 1, b), y = tokSet(d - 1, b);
            return set(par(cond, P_OR) + " ? " + par(x, P_OR) + " : " + par(y, P_OR), P_COND);
        }
        int k = rnd.nextInt(100);
        if (k < 14) return set("first(" + (chance(0.3) ? "len - " + par(intIn(0, 64, "keep_from"), P_ADD + 1) : count(b).t) + ")", P_PRIM);
        if (k < 28) return set("last(" + count(b).t + ")", P_PRIM);
        if (k < 68) {
            Ex s = tokScore(b);
            String score = chance(0.2) ? par(s, P_WITHIN) + " within " + par(tokSet(0, b), P_WITHIN + 1) : s.t;
            return set(rank() + "(" + score + ", " + count(b).t + ")", P_PRIM);
        }
        if (k < 80) return whereSet(b);
        if (k < 85) return set("all", P_PRIM);
        if (k < 93 && states.stream().anyMatch(s -> s.scope.equals("page"))) {
            return set("pages(top(" + pageScore(b).t + ", " + intIn(0, 64, "pages").t + "))", P_PRIM);
        }
        if (k < 95) return set("compensation", P_PRIM);
        return set("last(" + count(b).t + ")", P_PRIM);
    }

    private Ex whereSet(Block b) {
        if (chance(0.2)) return set("where(rank(" + tokScore(b).t + ") < " + par(count(b), P_CMP + 1) + ")", P_PRIM);
        if (chance(0.15)) return set("strata(" + tokScore(b).t + ", " + count(b).t + ")", P_PRIM);
        return set("where(" + boolEx(tok(), 1, b).t + ")", P_PRIM);
    }

    /** A count that is never negative: a constant, or a form of len whose lower bound is 0. */
    private Ex count(Block b) {
        int c = rnd.nextInt(100);
        if (c < 55) return kex(intIn(0, 256, pick("n", "count", "keep_n")));
        if (c < 75) return new Ex("int(len * " + unitFloat("frac", UNIT_FLOATS).t + ")", P_PRIM, El.INT, ax());
        if (c < 85) return new Ex("max(len - " + par(intIn(0, 256, "n"), P_ADD + 1) + ", 0)", P_PRIM, El.INT, ax());
        if (c < 90) return new Ex("count(" + tokSet(0, b).t + ")", P_PRIM, El.INT, ax());
        // a lane's count from a calibration table: its cell, or its channel row's sum (not under per-layer selection,
        // where a table read is one value per KV head and a count one for the layer, E201)
        if (c < 93 && !perLayer) {
            String cell = pick("table(\"" + CELLS + "\")", "sum(table[channel](\"" + CHANNELS + "\"), over: channel) / 8.0");
            return new Ex("int(" + par(intIn(0, 128, "n"), P_MUL + 1) + " * " + cell + ")", P_PRIM, El.INT, ax());
        }
        K a = intIn(0, 128, "n"), z = intIn(0, 128, "m");
        return new Ex("len > " + par(intIn(0, 1024, "limit"), P_CMP + 1) + " ? " + a.t + " : " + z.t, P_COND, El.INT, ax());
    }

    /** A per-entry score ([token], or [head, token] under selection per layer). */
    private Ex tokScore(Block b) {
        Ex e;
        if (chance(0.06)) {
            e = channelScore(b);
        } else if (chance(0.35)) {
            int c = rnd.nextInt(b.restricted ? 6 : 12);
            e = switch (c) {
                case 0 -> new Ex("sum(attn, over: query, group)", P_PRIM, El.FLOAT, ax(Ax.TOKEN));
                case 1 -> new Ex("mean(attn, over: query, group)", P_PRIM, El.FLOAT, ax(Ax.TOKEN));
                case 2 -> new Ex("max(logits, over: query, group)", P_PRIM, El.FLOAT, ax(Ax.TOKEN));
                case 3 -> new Ex("mean(maxpool(sum(attn, over: query), " + intIn(1, 15, "kernel").t + ", over: token), over: group)",
                        P_PRIM, El.FLOAT, ax(Ax.TOKEN));
                case 4 -> new Ex("-norm(k, over: channel)", P_UNARY, El.FLOAT, ax(Ax.TOKEN));
                case 5 -> new Ex("norm(v, over: channel)", P_PRIM, El.FLOAT, ax(Ax.TOKEN));
                case 6 -> new Ex("mean(" + pick("maxpool", "avgpool") + "(attn, " + intIn(1, 15, "kernel").t + ", over: token), over: query, group)",
                        P_PRIM, El.FLOAT, ax(Ax.TOKEN));
                case 7 -> new Ex("max(dot(q, k), over: query, group)", P_PRIM, El.FLOAT, ax(Ax.TOKEN));
                case 8 -> new Ex(pick("maxcos", "maxdot") + "(" + pick("k", "v") + ", " + tokSet(0, b).t + ")", P_PRIM, El.FLOAT, ax(Ax.TOKEN));
                case 9 -> new Ex(pick("uniform", "gumbel") + "(" + intIn(0, 1000, "seed").t + ")", P_PRIM, El.FLOAT, ax(Ax.TOKEN));
                case 10 -> new Ex("rank(" + num(tok(), 1, b).t + ")", P_PRIM, El.FLOAT, ax(Ax.TOKEN));
                default -> new Ex("float(member(" + tokSet(0, b).t + ") ? " + between(1, 9) + " : 0)", P_PRIM, El.FLOAT, ax(Ax.TOKEN));
            };
        } else {
            e = num(tok(), 2, b);
        }
        return maybeLet(e, b, 0.25);
    }

    /** The calibration tables generated programs read: {@link #tables(ModelShape)} writes them for a shape. */
    public static final String CELLS = "gen_cells.tsv", CHANNELS = "gen_channels.tsv";

    /** A score over channels: weighed by a calibration table (channels of the keys, or a lane's cell), or a quantile of them. */
    private Ex channelScore(Block b) {
        return switch (rnd.nextInt(b.restricted ? 3 : 5)) {
            case 0 -> new Ex("sum(abs(k) * table[channel](\"" + CHANNELS + "\"), over: channel)", P_PRIM, El.FLOAT, ax(Ax.TOKEN));
            case 1 -> new Ex("norm(v, over: channel) * table(\"" + CELLS + "\")", P_MUL, El.FLOAT, ax(Ax.TOKEN));
            case 2 -> new Ex("quantile(" + pick("abs(k)", "v", "k") + ", " + pick("0.25", "0.5", "0.9") + ", over: channel)", P_PRIM, El.FLOAT, ax(Ax.TOKEN));
            // SparQ: q . k over each query head's largest channels
            case 3 -> new Ex("max(sum(q * k * (abs(q) >= quantile(abs(q), " + pick("0.5", "0.75") + ", over: channel) ? 1.0 : 0.0), over: channel), over: query, group)",
                    P_PRIM, El.FLOAT, ax(Ax.TOKEN));
            // Double Sparsity: q . k over the channels the table marks
            default -> new Ex("max(sum(q * k * table[channel](\"" + CHANNELS + "\"), over: channel), over: query, group)", P_PRIM, El.FLOAT, ax(Ax.TOKEN));
        };
    }

    /**
     * A folder holding the tables generated programs read ({@link #CELLS}, {@link #CHANNELS}), made for {@code shape}:
     * check a generated text with it as the text's folder.
     */
    public static synchronized java.nio.file.Path tables(dev.kvpc.compiler.model.ModelShape shape) {
        return TABLE_DIRS.computeIfAbsent(shape.layers() + "x" + shape.kvHeads() + "x" + shape.headDim(), k -> {
            try {
                java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("kvpc-gen-tables");
                dir.toFile().deleteOnExit();
                StringBuilder cells = new StringBuilder("# generated programs' cell table\n"), channels = new StringBuilder("# generated programs' channel table\n");
                for (int l = 0; l < shape.layers(); l++) {
                    for (int h = 0; h < shape.kvHeads(); h++) {
                        cells.append(h > 0 ? "\t" : "").append(0.5 + ((l * shape.kvHeads() + h) % 3) * 0.25);
                        for (int c = 0; c < shape.headDim(); c++) channels.append(c > 0 ? "\t" : "").append(((7 * c + 3 * l + h) % 5) * 0.25);
                        channels.append('\n');
                    }
                    cells.append('\n');
                }
                java.nio.file.Files.writeString(dir.resolve(CELLS), cells);
                java.nio.file.Files.writeString(dir.resolve(CHANNELS), channels);
                dir.resolve(CELLS).toFile().deleteOnExit();
                dir.resolve(CHANNELS).toFile().deleteOnExit();
                return dir;
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
    }

    private static final java.util.Map<String, java.nio.file.Path> TABLE_DIRS = new java.util.HashMap<>();

    /** A per-page score ([page], or [head, page] under selection per layer). */
    private Ex pageScore(Block b) {
        List<St> ch = states.stream().filter(s -> s.scope.equals("page") && s.sh.contains(Ax.CHANNEL)).toList();
        if (!b.restricted && !ch.isEmpty() && chance(0.6)) {
            // Quest: an upper bound of q.k over each page's channel-wise extremes
            St a = pick(ch), c = pick(ch);
            a.read = true;
            c.read = true;
            String inner = a == c ? "q * " + a.name : "max(q * " + a.name + ", q * " + c.name + ")";
            return new Ex("max(sum(" + inner + ", over: channel), over: query, group)", P_PRIM, El.FLOAT, ax(Ax.PAGE));
        }
        EnumSet<Ax> t = perLayer && chance(0.4) ? ax(Ax.PAGE, Ax.HEAD) : ax(Ax.PAGE);
        return num(t, 1, b);
    }

    // ---------------------------------------------------------------- typed expressions

    private Ex maybeLet(Ex e, Block b, double p) {
        if (!b.lets || e.p == P_PRIM && !e.t.contains("(") || !chance(p)) return e;
        String n = fresh(e.sh == null ? pick("sel", "chosen", "part") : e.el == El.BOOL ? pick("cond", "hot") : pick("s", "x", "score", "w"));
        b.add("let " + n + " = " + e.t);
        return new Ex(n, P_PRIM, e.el, e.sh);
    }

    private boolean usable(Src s, Block b) {
        return !(b.restricted && s.composite);
    }

    /** A numeric expression with exactly the axes {@code t}. */
    private Ex num(EnumSet<Ax> t, int d, Block b) {
        if (!singleReachable(t, b)) return split(t, d, b);
        Ex e;
        int c = d <= 0 ? 0 : rnd.nextInt(100);
        if (c < 30) e = leaf(t, b);
        else if (c < 46) e = arith(t, d, b);
        else if (c < 59) e = reduce(t, d, b);
        else if (c < 66 && t.contains(Ax.TOKEN)) e = pool(t, d, b);
        else if (c < 74) e = unary(t, d, b);
        else if (c < 80) e = cond(t, d, b);
        else if (c < 85) {
            Ex x = num(t, d - 1, b), y = num(sub(t), d - 1, b);
            e = new Ex(pick("max", "min") + "(" + x.t + ", " + y.t + ")", P_PRIM, join(x.el, y.el), t);
        } else if (c < 91) {
            Ex x = num(t, d - 1, b);
            boolean toInt = chance(0.5);
            e = new Ex((toInt ? "int(" : "float(") + x.t + ")", P_PRIM, toInt ? El.INT : El.FLOAT, t);
        } else if (c < 95) {
            Ex x = num(t, d - 1, b);
            e = new Ex("-" + par(x, P_PRIM), P_UNARY, x.el, t);
        } else {
            e = leaf(t, b);
        }
        return d >= 2 ? maybeLet(e, b, 0.1) : e;
    }

    private static El join(El a, El b) {
        return a == El.FLOAT || b == El.FLOAT ? El.FLOAT : El.INT;
    }

    private boolean singleReachable(EnumSet<Ax> t, Block b) {
        for (Src s : sources) if (usable(s, b) && s.sh.containsAll(t)) return true;
        return false;
    }

    /** Axes no single source has: the product or sum of two parts that each have some of them. */
    private Ex split(EnumSet<Ax> t, int d, Block b) {
        List<Src[]> pairs = new ArrayList<>();
        for (Src x : sources) {
            for (Src y : sources) {
                if (!usable(x, b) || !usable(y, b)) continue;
                EnumSet<Ax> u = ax(x.sh);
                u.addAll(y.sh);
                if (u.containsAll(t)) pairs.add(new Src[] {x, y});
            }
        }
        if (pairs.isEmpty()) throw new IllegalStateException("no source for " + t);
        Src[] p = pick(pairs);
        EnumSet<Ax> t1 = ax(t), t2 = ax(t);
        t1.retainAll(p[0].sh);
        t2.retainAll(p[1].sh);
        Ex x = num(t1, d - 1, b), y = num(t2, d - 1, b);
        String op = pick("*", "*", "+", "-");
        int lvl = op.equals("*") ? P_MUL : P_ADD;
        return new Ex(par(x, lvl) + " " + op + " " + par(y, lvl + 1), lvl, join(x.el, y.el), t);
    }

    private Ex leaf(EnumSet<Ax> t, Block b) {
        List<Src> exact = new ArrayList<>(), wider = new ArrayList<>();
        for (Src s : sources) {
            if (!usable(s, b)) continue;
            if (s.sh.equals(t)) {
                if (!(b.restricted && s.rows)) exact.add(s);
            } else if (s.sh.containsAll(t)) {
                wider.add(s);
            }
        }
        if (t.isEmpty() && (chance(0.35) || exact.isEmpty() && wider.isEmpty())) return constant();
        List<Src> unread = new ArrayList<>();
        for (Src s : exact) if (s.st != null && !s.st.read) unread.add(s);
        for (Src s : wider) if (s.st != null && !s.st.read) unread.add(s);
        Src s;
        if (!unread.isEmpty() && chance(0.6)) s = pick(unread);
        else if (!exact.isEmpty() && (wider.isEmpty() || chance(0.5))) s = pick(exact);
        else s = pick(wider);
        if (s.st != null) s.st.read = true;
        if (s.sh.equals(t)) return new Ex(s.t, P_PRIM, s.el, t);
        EnumSet<Ax> over = ax(s.sh);
        over.removeAll(t);
        return reduction(s.t, s.el, over, t);
    }

    private Ex reduction(String arg, El el, EnumSet<Ax> over, EnumSet<Ax> result) {
        String f = pick("sum", "sum", "mean", "max", "min", "norm");
        StringBuilder sb = new StringBuilder(f).append('(').append(arg).append(", over: ");
        List<String> words = new ArrayList<>();
        for (Ax a : over) words.add(a.word);
        if (chance(0.3)) java.util.Collections.reverse(words);
        sb.append(String.join(", ", words)).append(')');
        El e = f.equals("mean") || f.equals("norm") ? El.FLOAT : el;
        return new Ex(sb.toString(), P_PRIM, e, result);
    }

    private Ex constant() {
        int c = rnd.nextInt(100);
        if (c < 40) return new Ex(pick(FLOATS), P_PRIM, El.FLOAT, ax());
        if (c < 70) return new Ex(Integer.toString(between(0, 100)), P_PRIM, El.INT, ax());
        if (c < 85) return floatParam(pick("alpha", "beta", "gain"), pick(FLOATS));
        return kex(intIn(0, 512, pick("offset", "bias")));
    }

    private Ex arith(EnumSet<Ax> t, int d, Block b) {
        Ex x = num(t, d - 1, b);
        String op = pick("+", "-", "*", "*", "/", "%");
        if (op.equals("%") && x.el != El.INT) op = "+";
        if (op.equals("/")) {
            Ex den;
            if (chance(0.5)) {
                Ex y = num(sub(t), d - 1, b);
                den = new Ex("abs(" + y.t + ") + 1.0", P_ADD, El.FLOAT, y.sh);
            } else {
                den = new Ex(pick("2.0", "4.0", "0.5", "10.0"), P_PRIM, El.FLOAT, ax());
            }
            return new Ex(par(x, P_MUL) + " / " + par(den, P_MUL + 1), P_MUL, El.FLOAT, t);
        }
        if (op.equals("%")) {
            return new Ex(par(x, P_MUL) + " % " + between(2, 16), P_MUL, El.INT, t);
        }
        Ex y = num(sub(t), d - 1, b);
        if (chance(0.5)) {
            Ex s = x;
            x = y;
            y = s;
        }
        int lvl = op.equals("*") ? P_MUL : P_ADD;
        return new Ex(par(x, lvl) + " " + op + " " + par(y, lvl + 1), lvl, join(x.el, y.el), t);
    }

    /** Reduces a wider value (over some axes that one source, or the product of two, has) down to {@code t}. */
    private Ex reduce(EnumSet<Ax> t, int d, Block b) {
        List<EnumSet<Ax>> supers = new ArrayList<>();
        for (Src s : sources) {
            if (!usable(s, b)) continue;
            EnumSet<Ax> u = ax(s.sh);
            if (b.restricted) u.remove(Ax.QUERY);
            if (u.containsAll(t) && u.size() > t.size()) supers.add(u);
        }
        if (chance(0.25)) {
            Src x = pick(sources), y = pick(sources);
            if (usable(x, b) && usable(y, b)) {
                EnumSet<Ax> u = ax(x.sh);
                u.addAll(y.sh);
                if (b.restricted) u.remove(Ax.QUERY);
                if (u.containsAll(t) && u.size() > t.size()) supers.add(u);
            }
        }
        if (supers.isEmpty()) return leaf(t, b);
        EnumSet<Ax> extra = ax(pick(supers));
        extra.removeAll(t);
        List<Ax> list = new ArrayList<>(extra);
        EnumSet<Ax> over = ax();
        for (Ax a : list) if (chance(0.5)) over.add(a);
        if (over.isEmpty()) over.add(pick(list));
        EnumSet<Ax> inner = ax(t);
        inner.addAll(over);
        Ex x = num(inner, d - 1, b);
        return reduction(x.t, x.el, over, t);
    }

    private Ex pool(EnumSet<Ax> t, int d, Block b) {
        Ex x = num(t, d - 1, b);
        boolean max = chance(0.6);
        K kernel = intIn(1, 15, "kernel");
        return new Ex((max ? "maxpool(" : "avgpool(") + x.t + ", " + kernel.t + ", over: token)", P_PRIM, max ? x.el : El.FLOAT, t);
    }

    private Ex unary(EnumSet<Ax> t, int d, Block b) {
        Ex x = num(t, d - 1, b);
        return switch (rnd.nextInt(8)) {
            case 0 -> new Ex("abs(" + x.t + ")", P_PRIM, x.el, t);
            case 1 -> new Ex("tanh(" + x.t + ")", P_PRIM, El.FLOAT, t);
            case 2 -> new Ex("sigmoid(" + x.t + ")", P_PRIM, El.FLOAT, t);
            case 3 -> new Ex("sqrt(abs(" + x.t + "))", P_PRIM, El.FLOAT, t);
            case 4 -> new Ex("log(abs(" + x.t + ") + 1.0)", P_PRIM, El.FLOAT, t);
            case 5 -> new Ex("exp(-abs(" + x.t + "))", P_PRIM, El.FLOAT, t);
            case 6 -> new Ex("exp(tanh(" + x.t + "))", P_PRIM, El.FLOAT, t);
            default -> new Ex("log(1.0 + exp(-abs(" + x.t + ")))", P_PRIM, El.FLOAT, t);
        };
    }

    private Ex cond(EnumSet<Ax> t, int d, Block b) {
        Ex c = boolEx(sub(t), d - 1, b);
        Ex x = num(t, d - 1, b), y = num(sub(t), d - 1, b);
        if (chance(0.5)) {
            Ex s = x;
            x = y;
            y = s;
        }
        return new Ex(par(c, P_OR) + " ? " + par(x, P_OR) + " : " + par(y, P_OR), P_COND, join(x.el, y.el), t);
    }

    /** An int expression with exactly the axes {@code t}. */
    private Ex intNum(EnumSet<Ax> t, int d, Block b) {
        if (chance(0.35)) {
            Ex c = boolEx(t, d - 1, b);
            K x = intIn(0, 4, "inc"), y = intIn(0, 2, "dec");
            return new Ex(par(c, P_OR) + " ? " + par(x, P_OR) + " : " + par(y, P_OR), P_COND, El.INT, t);
        }
        Ex x = num(t, d, b);
        return x.el == El.INT ? x : new Ex("int(" + x.t + ")", P_PRIM, El.INT, t);
    }

    /** A bool expression with exactly the axes {@code t}. */
    private Ex boolEx(EnumSet<Ax> t, int d, Block b) {
        if (t.isEmpty() && chance(0.3)) return scalarBool(b);
        List<St> flags = states.stream().filter(x -> x.el == El.BOOL && x.sh.equals(t)).toList();
        if (!flags.isEmpty() && chance(0.4)) {
            St f = pick(flags);
            f.read = true;
            return new Ex(f.name, P_PRIM, El.BOOL, t);
        }
        int c = d <= 0 ? 0 : rnd.nextInt(100);
        if (c < 60) {
            Ex x = num(t, Math.max(d - 1, 0), b);
            Ex y = chance(0.1) ? quantile(b) : chance(0.5) ? num(sub(t), Math.max(d - 1, 0), b) : constant();
            String op = pick("<", "<=", ">", ">=", ">", "<", "==", "!=");
            if (chance(0.5)) {
                Ex s = x;
                x = y;
                y = s;
            }
            return new Ex(par(x, P_CMP + 1) + " " + op + " " + par(y, P_CMP + 1), P_CMP, El.BOOL, t);
        }
        if (c < 82) {
            Ex x = boolEx(t, d - 1, b), y = boolEx(sub(t), d - 1, b);
            if (chance(0.5)) {
                Ex s = x;
                x = y;
                y = s;
            }
            boolean and = chance(0.6);
            int lvl = and ? P_AND : P_OR;
            return new Ex(par(x, lvl) + (and ? " && " : " || ") + par(y, lvl + 1), lvl, El.BOOL, t);
        }
        Ex x = boolEx(t, d - 1, b);
        return new Ex("!" + par(x, P_PRIM), P_UNARY, El.BOOL, t);
    }

    /** A threshold: the p-quantile of a per-entry value. */
    private Ex quantile(Block b) {
        Ex x = num(tok(), 1, b);
        return new Ex("quantile(" + x.t + ", " + unitFloat("q", UNIT_FLOATS).t + ")", P_PRIM, El.FLOAT, ax());
    }

    private Ex scalarBool(Block b) {
        String t = switch (rnd.nextInt(6)) {
            case 0 -> "step % " + par(intIn(2, 64, "every_n"), P_MUL + 1) + " == 0";
            case 1 -> "layer " + pick("<", ">=") + " " + par(intIn(1, 31, "split"), P_CMP + 1);
            case 2 -> "len > " + par(intIn(0, 4096, "limit"), P_CMP + 1);
            case 3 -> "context " + pick(">", "<=") + " " + par(intIn(0, 8192, "horizon"), P_CMP + 1);
            default -> boolFn() + "(" + intIn(0, 31, "th").t + ")";
        };
        return new Ex(t, t.contains(" ") ? P_CMP : P_PRIM, El.BOOL, ax());
    }
}
