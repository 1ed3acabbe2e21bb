package dev.kvpc.ir;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/** Reads the text form written by {@link IrPrinter}. Errors name the line. */
public final class IrParser {
    /** A malformed IR text, with the 1-based line it was found on. */
    public static final class IrParseException extends RuntimeException {
        public final int line;

        IrParseException(int line, String message) {
            super("line " + line + ": " + message);
            this.line = line;
        }
    }

    private final String[] lines;
    private int at;

    private IrParser(String text) {
        this.lines = text.split("\n", -1);
    }

    public static IrProgram parse(String text) {
        IrParser p = new IrParser(text);
        List<PolicyIr> policies = new ArrayList<>();
        List<AttentionIr> variants = new ArrayList<>();
        while (p.skipBlank()) {
            String l = p.peek();
            if (l.startsWith("policy ")) policies.add(p.policy());
            else if (l.startsWith("attention ")) variants.add(p.variant());
            else throw p.error("expected 'policy' or 'attention', got '" + l + "'");
        }
        return new IrProgram(policies, variants);
    }

    // ---------------------------------------------------------------- lines

    private boolean skipBlank() {
        while (at < lines.length && lines[at].isBlank()) at++;
        return at < lines.length;
    }

    private String peek() {
        if (!skipBlank()) throw error("unexpected end of text");
        return lines[at].strip();
    }

    private String next() {
        String l = peek();
        at++;
        return l;
    }

    private IrParseException error(String message) {
        return new IrParseException(Math.min(at + 1, lines.length), message);
    }

    private void expect(String exact) {
        String l = next();
        if (!l.equals(exact)) throw new IrParseException(at, "expected '" + exact + "', got '" + l + "'");
    }

    private static String strip(String l, String prefix, String suffix) {
        return l.substring(prefix.length(), l.length() - suffix.length()).strip();
    }

    // ---------------------------------------------------------------- declarations

    private AttentionIr variant() {
        String l = next();
        if (!l.endsWith(" {")) throw new IrParseException(at, "expected 'attention NAME {'");
        String name = strip(l, "attention ", " {");
        List<PolicyIr.Param> params = new ArrayList<>();
        Computation logits = null, mask = null;
        AttentionIr.Normalize norm = null;
        while (!peek().equals("}")) {
            String h = peek();
            if (h.startsWith("param ")) params.add(param());
            else if (h.startsWith("logits ")) logits = comp("logits");
            else if (h.startsWith("mask ")) mask = comp("mask");
            else if (h.startsWith("normalize ")) norm = enumOf(AttentionIr.Normalize.class, next().substring(10).strip());
            else throw error("unexpected '" + h + "' in attention " + name);
        }
        next();
        if (logits == null || norm == null) throw new IrParseException(at, "attention " + name + " needs logits and normalize");
        return new AttentionIr(name, params, logits, mask, norm);
    }

    private PolicyIr policy() {
        String l = next();
        if (!l.endsWith(" {")) throw new IrParseException(at, "expected 'policy NAME {'");
        String head = strip(l, "policy ", " {");
        String name = head, variant = null;
        int v = head.indexOf(" variant ");
        if (v >= 0) {
            name = head.substring(0, v);
            variant = head.substring(v + 9).strip();
        }
        PolicyIr p = items(name, variant);
        expect("}");
        return p;
    }

    /** Policy items up to (not including) the closing brace. */
    private PolicyIr items(String name, String variant) {
        List<PolicyIr.Param> params = new ArrayList<>();
        PolicyIr.Positions positions = PolicyIr.Positions.ORIGINAL;
        PolicyIr.Selection selection = PolicyIr.Selection.LANE;
        List<PolicyIr.State> states = new ArrayList<>();
        List<PolicyIr.Observe> observes = new ArrayList<>();
        Block standing = Block.EMPTY;
        List<PolicyIr.Handler> handlers = new ArrayList<>();
        List<PolicyIr.Clause> clauses = new ArrayList<>();
        while (!peek().equals("}")) {
            String h = peek();
            if (h.startsWith("param ")) {
                params.add(param());
            } else if (h.startsWith("positions ")) {
                positions = enumOf(PolicyIr.Positions.class, next().substring(10).strip());
            } else if (h.startsWith("selection ")) {
                selection = enumOf(PolicyIr.Selection.class, next().substring(10).strip());
            } else if (h.startsWith("state ")) {
                states.add(state());
            } else if (h.startsWith("observe ")) {
                observes.add(observe());
            } else if (h.equals("standing {")) {
                next();
                standing = blockUntilClose();
            } else if (h.startsWith("on ")) {
                handlers.add(handler());
            } else if (h.equals("clause {")) {
                clauses.add(clause());
            } else {
                throw error("unexpected '" + h + "' in policy " + name);
            }
        }
        return new PolicyIr(name, params, positions, selection, states, observes, standing, handlers, clauses, variant);
    }

    private PolicyIr.Param param() {
        String l = peek();
        if (l.endsWith(" {")) {
            int eq = l.indexOf(" = %");
            if (eq < 0) throw error("expected 'param NAME: KIND = %N {'");
            String[] nk = l.substring(6, eq).split(":");
            Computation c = comp(l.substring(0, eq + 2));
            return new PolicyIr.Param(nk[0].strip(), enumOf(PolicyIr.ParamKind.class, nk[1].strip()), c);
        }
        next();
        String[] nk = l.substring(6).split(":");
        if (nk.length != 2) throw new IrParseException(at, "expected 'param NAME: KIND'");
        return new PolicyIr.Param(nk[0].strip(), enumOf(PolicyIr.ParamKind.class, nk[1].strip()), null);
    }

    private PolicyIr.State state() {
        String l = next();
        if (!l.endsWith(" {")) throw new IrParseException(at, "expected 'state NAME: TYPE per SCOPE {'");
        String body = strip(l, "state ", " {");
        boolean derived = body.endsWith(" derived");
        if (derived) body = body.substring(0, body.length() - 8);
        int colon = body.indexOf(':'), per = body.lastIndexOf(" per ");
        if (colon < 0 || per < 0) throw new IrParseException(at, "expected 'state NAME: TYPE per SCOPE {'");
        String name = body.substring(0, colon).strip();
        Ty t = type(body.substring(colon + 1, per).strip());
        if (!(t instanceof Ty.Tensor tt)) throw new IrParseException(at, "state type must be a tensor");
        PolicyIr.StateScope scope = enumOf(PolicyIr.StateScope.class, body.substring(per + 5).strip());
        Computation size = null, init = null;
        while (!peek().equals("}")) {
            String h = peek();
            if (h.startsWith("size ")) size = comp("size");
            else if (h.startsWith("init ")) init = comp("init");
            else throw error("unexpected '" + h + "' in state " + name);
        }
        next();
        return new PolicyIr.State(name, tt, scope, size, init, derived);
    }

    private PolicyIr.Observe observe() {
        String l = peek();
        if (l.endsWith(" {")) {
            int c = l.indexOf(" count %");
            String[] w = l.substring(8, c).split(" ");
            Computation count = comp(l.substring(0, c + 6));
            return new PolicyIr.Observe(enumOf(Op.End.class, w[0]), count, enumOf(PolicyIr.Event.class, w[2]));
        }
        next();
        String[] w = l.substring(8).split(" ");
        if (w.length != 3 || !w[1].equals("at")) throw new IrParseException(at, "expected 'observe END at EVENT'");
        return new PolicyIr.Observe(w[0].equals("all") ? null : enumOf(Op.End.class, w[0]), null, enumOf(PolicyIr.Event.class, w[2]));
    }

    private PolicyIr.Handler handler() {
        String l = next();
        if (!l.endsWith(" {")) throw new IrParseException(at, "expected 'on EVENTS {'");
        String head = strip(l, "on ", " {");
        String origin = null;
        int o = head.indexOf(" @");
        if (o >= 0) {
            origin = head.substring(o + 2).strip();
            head = head.substring(0, o);
        }
        int slack = 0;
        int s = head.indexOf(" slack ");
        if (s >= 0) {
            slack = integer(head.substring(s + 7).strip());
            head = head.substring(0, s);
        }
        List<PolicyIr.Event> events = new ArrayList<>();
        for (String e : head.split(",")) events.add(enumOf(PolicyIr.Event.class, e.strip()));
        Computation limit = peek().startsWith("limit %") ? comp("limit") : null;
        Block body = blockUntilClose();
        return new PolicyIr.Handler(events, limit, slack, body, origin);
    }

    private PolicyIr.Clause clause() {
        expect("clause {");
        Computation guard = comp("guard");
        String l = next();
        PolicyIr.Target target;
        if (l.equals("inline {")) {
            target = new PolicyIr.Inline(items("inline", null));
            expect("}");
        } else if (l.startsWith("use ") && l.endsWith(" {")) {
            String policy = strip(l, "use ", " {");
            Map<String, Computation> args = new LinkedHashMap<>();
            while (!peek().equals("}")) {
                String a = peek();
                if (!a.startsWith("arg ")) throw error("expected 'arg NAME %N {'");
                String argName = a.substring(4, a.indexOf(" %")).strip();
                args.put(argName, comp("arg " + argName));
            }
            next();
            target = new PolicyIr.Use(policy, args);
        } else {
            throw new IrParseException(at, "expected 'use NAME {' or 'inline {'");
        }
        expect("}");
        return new PolicyIr.Clause(guard, target);
    }

    /** {@code <head> %N {}, definitions, {@code }}. */
    private Computation comp(String head) {
        String l = next();
        if (!l.startsWith(head + " %") || !l.endsWith(" {")) throw new IrParseException(at, "expected '" + head + " %N {', got '" + l + "'");
        int result = ref(strip(l, head, " {"));
        Block b = blockUntilClose();
        try {
            return new Computation(b, result);
        } catch (IllegalArgumentException e) {
            throw new IrParseException(at, e.getMessage());
        }
    }

    // ---------------------------------------------------------------- instructions

    /** True when the last {@link #blockUntil} ended on "} else {" rather than "}". */
    private boolean endedWithElse;

    /** Instructions up to a line "}" (consumed); an "} else {" there is an error. */
    private Block blockUntilClose() {
        Block b = blockUntil();
        if (endedWithElse) throw new IrParseException(at, "'else' without 'if'");
        return b;
    }

    /** Instructions up to a line "}" or "} else {" (consumed; {@link #endedWithElse} says which). */
    private Block blockUntil() {
        List<Instr> out = new ArrayList<>();
        while (true) {
            String l = peek();
            if (l.equals("}") || l.equals("} else {")) {
                next();
                endedWithElse = l.equals("} else {");
                return new Block(out);
            }
            out.add(instr());
        }
    }

    private Instr instr() {
        String l = next();
        try {
            if (l.startsWith("%")) return def(l);
            String[] w = words(l);
            return switch (w[0]) {
                case "keep" -> new Instr.Keep(ref(w[1]));
                case "evict" -> new Instr.Evict(ref(w[1]));
                case "attend" -> new Instr.Attend(ref(w[1]));
                case "merge" -> new Instr.Merge(ref(w[1]), ref(w[3]), enumOf(Instr.MergeBy.class, w[5]), w.length > 7 ? ref(w[7]) : -1);
                case "store" -> store(l.trim().split("\\s+"));
                case "state" -> new Instr.StateWrite(w[1], assign(w[2]), ref(w[3]));
                case "if" -> {
                    int c = ref(w[1]);
                    Block then = blockUntil();
                    Block otherwise = endedWithElse ? blockUntilClose() : Block.EMPTY;
                    yield new Instr.If(c, then, otherwise);
                }
                default -> throw new IrParseException(at, "unknown instruction '" + w[0] + "'");
            };
        } catch (IrParseException e) {
            throw e;
        } catch (RuntimeException e) {
            throw new IrParseException(at, "malformed instruction '" + l + "': " + e.getMessage());
        }
    }

    private Instr.Store store(String[] w) {
        // store parts as fmt [bits %b] per axis [group %g] scope S [%set]
        Set<Instr.Part> parts = EnumSet.noneOf(Instr.Part.class);
        for (String p : w[1].split(",")) parts.add(enumOf(Instr.Part.class, p));
        Instr.Format fmt = enumOf(Instr.Format.class, w[3]);
        int i = 4, bits = -1, group = -1, set = -1;
        if (w[i].equals("bits")) {
            bits = ref(w[i + 1]);
            i += 2;
        }
        Instr.QuantAxis axis = enumOf(Instr.QuantAxis.class, w[i + 1]);
        i += 2;
        if (w[i].equals("group")) {
            group = ref(w[i + 1]);
            i += 2;
        }
        Instr.Scope scope = enumOf(Instr.Scope.class, w[i + 1]);
        if (i + 2 < w.length) set = ref(w[i + 2]);
        return new Instr.Store(parts, fmt, bits, axis, group, scope, set);
    }

    private Instr.Def def(String l) {
        int colon = l.indexOf(':'), eq = l.indexOf(" = ");
        if (colon < 0 || eq < 0) throw new IrParseException(at, "expected '%N: TYPE = OP'");
        int id = ref(l.substring(0, colon));
        Ty type = type(l.substring(colon + 1, eq).strip());
        Op op = op(l.substring(eq + 3).strip());
        return new Instr.Def(id, type, op);
    }

    private Op op(String text) {
        String[] w = words(text);
        String k = w[0];
        return switch (k) {
            case "const" -> new Op.Const(constant(w[1]));
            case "param" -> new Op.Param(w[1]);
            case "signal" -> new Op.Signal(enumOf(Signal.class, w[1]));
            case "state" -> new Op.StateRead(w[1]);
            case "table" -> new Op.Table(unquote(text.substring(6).strip()));
            case "vector" -> vector(w, 1);
            case "choose" -> new Op.Choose(ref(w[1]), ref(w[2]), ref(w[3]));
            case "reduce" -> new Op.Reduce(enumOf(Op.Red.class, w[1]), ref(w[2]), axesAfter(w, 4));
            case "pool" -> new Op.Pool(enumOf(Op.Red.class, w[1]), ref(w[2]), ref(w[4]), Axis.of(w[6]));
            case "quantile" -> new Op.Quantile(ref(w[1]), ref(w[2]), w.length > 3 ? axesAfter(w, 4) : List.of());
            case "dot" -> new Op.Dot(ref(w[1]), ref(w[2]));
            case "slope" -> new Op.Slope(ref(w[1]));
            case "rank" -> {
                int floor = -1;
                Op.Algorithm alg = Op.Algorithm.AUTO;
                for (int i = 4; i + 1 < w.length; i += 2) {
                    if (w[i].equals("floor")) floor = ref(w[i + 1]);
                    else if (w[i].equals("algorithm")) alg = enumOf(Op.Algorithm.class, w[i + 1]);
                    else throw new IrParseException(at, "unknown rank option '" + w[i] + "'");
                }
                yield new Op.Rank(enumOf(Op.Order.class, w[1]), ref(w[2]), ref(w[3]), floor, alg);
            }
            case "range" -> new Op.Range(enumOf(Op.End.class, w[1]), ref(w[2]));
            case "all" -> new Op.All();
            case "compensation" -> new Op.Compensation();
            case "where" -> new Op.Where(ref(w[1]));
            case "pages" -> new Op.Pages(ref(w[1]));
            case "set" -> new Op.SetOp(enumOf(Op.SetFn.class, w[1]), ref(w[2]), ref(w[3]));
            case "within" -> new Op.Within(ref(w[1]), ref(w[2]));
            case "prim" -> {
                Op.PrimFn fn = enumOf(Op.PrimFn.class, w[1]);
                List<Integer> args = new ArrayList<>();
                for (int i = 2; i < w.length; i++) args.add(ref(w[i]));
                if (args.size() != fn.operands.length) throw new IrParseException(at, fn.word() + " takes " + fn.operands.length + " operands");
                yield new Op.Prim(fn, args);
            }
            case "kernelstat" -> new Op.KernelStat(enumOf(Signal.class, w[1]), enumOf(Op.Red.class, w[2]), axesAfter(w, 4));
            case "modelstat" -> new Op.ModelStat(enumOf(Op.CellStat.class, w[1]), w[2], axesAfter(w, 4));
            default -> {
                for (Op.Fn1 f : Op.Fn1.values()) if (f.word().equals(k)) yield new Op.Map1(f, ref(w[1]));
                for (Op.Fn2 f : Op.Fn2.values()) if (f.word().equals(k)) yield new Op.Map2(f, ref(w[1]), ref(w[2]));
                throw new IrParseException(at, "unknown op '" + k + "'");
            }
        };
    }

    private static List<Axis> axesAfter(String[] w, int from) {
        List<Axis> out = new ArrayList<>();
        for (int i = from; i < w.length; i++) out.add(Axis.of(w[i]));
        return out;
    }

    private Ty type(String t) {
        if (t.equals("tokens")) return Ty.TOKENS;
        if (t.equals("tokens[head]")) return new Ty.SetTy(Axis.TOKEN, true);
        if (t.equals("tokens[group]")) return new Ty.SetTy(Axis.TOKEN, false, true);
        if (t.equals("pages")) return new Ty.SetTy(Axis.PAGE, false);
        if (t.equals("pages[head]")) return new Ty.SetTy(Axis.PAGE, true);
        int b = t.indexOf('[');
        Ty.Elem e = enumOf(Ty.Elem.class, b < 0 ? t : t.substring(0, b));
        List<Axis> axes = new ArrayList<>();
        if (b >= 0) {
            if (!t.endsWith("]")) throw new IrParseException(at, "bad type '" + t + "'");
            for (String a : t.substring(b + 1, t.length() - 1).split(",")) axes.add(Axis.of(a.strip()));
        }
        try {
            return new Ty.Tensor(e, axes);
        } catch (IllegalArgumentException ex) {
            throw new IrParseException(at, ex.getMessage());
        }
    }

    /** A vector constant from word {@code from} on: its extents joined by {@code x}, then its values. */
    public static Op.Vector vector(String[] w, int from) {
        String[] ds = w[from].split("x");
        int[] dims = new int[ds.length];
        for (int i = 0; i < ds.length; i++) dims[i] = Integer.parseInt(ds[i]);
        double[] v = new double[w.length - from - 1];
        for (int i = from + 1; i < w.length; i++) v[i - from - 1] = Double.parseDouble(w[i]);
        return new Op.Vector(dims, v);
    }

    private static Object constant(String w) {
        if (w.equals("true") || w.equals("false")) return Boolean.parseBoolean(w);
        if (w.contains(".") || w.contains("E") || w.contains("Infinity") || w.contains("NaN")) return Double.parseDouble(w);
        return Long.parseLong(w);
    }

    private static Instr.Assign assign(String s) {
        for (Instr.Assign a : Instr.Assign.values()) if (a.symbol.equals(s)) return a;
        throw new IllegalArgumentException("unknown assignment '" + s + "'");
    }

    private int ref(String w) {
        String s = w.strip();
        if (!s.startsWith("%")) throw new IrParseException(at, "expected a value '%N', got '" + s + "'");
        return integer(s.substring(1));
    }

    private int integer(String s) {
        try {
            return Integer.parseInt(s.strip());
        } catch (NumberFormatException e) {
            throw new IrParseException(at, "expected a number, got '" + s + "'");
        }
    }

    private <E extends Enum<E>> E enumOf(Class<E> type, String word) {
        try {
            return Enum.valueOf(type, word.strip().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IrParseException(at, "unknown " + type.getSimpleName().toLowerCase(Locale.ROOT) + " '" + word + "'");
        }
    }

    private static String[] words(String l) {
        return l.replace(",", " ").trim().split("\\s+");
    }

    private static String unquote(String q) {
        if (q.length() < 2 || !q.startsWith("\"") || !q.endsWith("\"")) throw new IllegalArgumentException("expected a quoted string");
        StringBuilder sb = new StringBuilder();
        for (int i = 1; i < q.length() - 1; i++) {
            char c = q.charAt(i);
            if (c == '\\' && i + 1 < q.length() - 1) {
                char n = q.charAt(++i);
                sb.append(n == 'n' ? '\n' : n);
            } else {
                sb.append(c);
            }
        }
        return sb.toString();
    }
}
