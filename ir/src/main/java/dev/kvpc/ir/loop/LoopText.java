package dev.kvpc.ir.loop;

import dev.kvpc.ir.*;
import dev.kvpc.ir.loop.Loop.*;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * The text form of the loop IR, printer and parser: {@code parse(print(p))} gives {@code p} back, and
 * {@code print(parse(text)).equals(text)} for printed text. Set primitives and effects use the tensor IR's own
 * syntax, so both levels read alike.
 */
public final class LoopText {
    private LoopText() {}

    // ---------------------------------------------------------------- printing

    public static String print(Loop.Program p) {
        StringBuilder sb = new StringBuilder("loop policy ").append(p.policy()).append('\n');
        for (Kernel k : p.kernels()) {
            sb.append("kernel ").append(k.name()).append(k.result() >= 0 ? " -> %" + k.result() : "").append(k.origin() != null ? " @" + k.origin() : "").append(" {\n");
            stmts(k.body(), 1, sb);
            sb.append("}\n");
        }
        return sb.toString();
    }

    private static void stmts(List<Stmt> body, int indent, StringBuilder sb) {
        for (Stmt s : body) stmt(s, indent, sb);
    }

    private static void stmt(Stmt s, int indent, StringBuilder sb) {
        String pad = "  ".repeat(indent);
        switch (s) {
            case Alloc a -> sb.append(pad).append("alloc %").append(a.id()).append(": ").append(a.elem().word())
                    .append(a.dims().isEmpty() ? "" : a.dims().stream().map(Dim::show).collect(Collectors.joining(", ", "[", "]"))).append('\n');
            case Bind b -> sb.append(pad).append("bind %").append(b.id()).append(": ").append(b.type().show()).append(" = ")
                    .append(b.kind()).append(' ').append(b.what()).append('\n');
            case For f -> {
                sb.append(pad).append("for ").append(f.var()).append(" in ").append(expr(f.from())).append(" .. ").append(expr(f.to())).append(" {\n");
                stmts(f.body(), indent + 1, sb);
                sb.append(pad).append("}\n");
            }
            case Assign a -> sb.append(pad).append(ref(a.buf(), a.index())).append(" = ").append(expr(a.value())).append('\n');
            case Accumulate a -> sb.append(pad).append(ref(a.buf(), a.index())).append(' ')
                    .append(a.op() == Op.Red.SUM ? "+=" : a.op().word() + "=").append(' ').append(expr(a.value())).append('\n');
            case SetPrim p -> sb.append(pad).append("prim ").append(IrPrinter.print(new PolicyIr("x", List.of(), PolicyIr.Positions.ORIGINAL,
                    PolicyIr.Selection.LANE, List.of(), List.of(), new Block(List.of(new Instr.Def(p.id(), p.type(), p.op()))), List.of(), List.of(), null))
                    .lines().filter(l -> l.strip().startsWith("%")).findFirst().orElseThrow().strip()).append('\n');
            case Effect e -> sb.append(pad).append(effectText(e.effect())).append('\n');
            case Loop.If f -> {
                sb.append(pad).append("if ").append(expr(f.cond())).append(" {\n");
                stmts(f.then(), indent + 1, sb);
                if (!f.otherwise().isEmpty()) {
                    sb.append(pad).append("} else {\n");
                    stmts(f.otherwise(), indent + 1, sb);
                }
                sb.append(pad).append("}\n");
            }
        }
    }

    private static String effectText(Instr effect) {
        String printed = IrPrinter.print(new PolicyIr("x", List.of(), PolicyIr.Positions.ORIGINAL, PolicyIr.Selection.LANE, List.of(), List.of(),
                new Block(List.of(effect)), List.of(), List.of(), null));
        return printed.lines().map(String::strip).filter(l -> !l.startsWith("policy") && !l.equals("standing {") && !l.equals("}"))
                .findFirst().orElseThrow();
    }

    private static String ref(int buf, List<Expr> index) {
        return "%" + buf + index.stream().map(LoopText::expr).collect(Collectors.joining(", ", "[", "]"));
    }

    static String expr(Expr e) {
        return switch (e) {
            case Const c -> c.value() instanceof Double d ? Double.toString(d) : c.value().toString();
            case Var v -> v.name();
            case Extent x -> "#" + x.dim().show();
            case Load l -> ref(l.buf(), l.index());
            case Un u -> u.fn().word() + "(" + expr(u.x()) + ")";
            case Bin b -> b.fn().word() + "(" + expr(b.a()) + ", " + expr(b.b()) + ")";
            case Loop.Choose c -> "choose(" + expr(c.cond()) + ", " + expr(c.a()) + ", " + expr(c.b()) + ")";
        };
    }

    // ---------------------------------------------------------------- parsing

    /** Thrown with the 1-based line of a malformed loop IR text. */
    public static final class LoopParseException extends RuntimeException {
        LoopParseException(int line, String message) {
            super("line " + line + ": " + message);
        }
    }

    public static Loop.Program parse(String text) {
        return new Parser(text.split("\n", -1)).program();
    }

    private static final class Parser {
        private final String[] lines;
        private int at;

        Parser(String[] lines) {
            this.lines = lines;
        }

        private String next() {
            while (at < lines.length && lines[at].isBlank()) at++;
            if (at >= lines.length) throw new LoopParseException(at, "unexpected end of text");
            return lines[at++].strip();
        }

        private String peek() {
            while (at < lines.length && lines[at].isBlank()) at++;
            return at >= lines.length ? null : lines[at].strip();
        }

        Loop.Program program() {
            String head = next();
            if (!head.startsWith("loop policy ")) throw new LoopParseException(at, "expected 'loop policy NAME'");
            List<Kernel> ks = new ArrayList<>();
            while (peek() != null) {
                String l = next();
                if (!l.startsWith("kernel ") || !l.endsWith(" {")) throw new LoopParseException(at, "expected 'kernel NAME {'");
                String h = l.substring(7, l.length() - 2).strip();
                String origin = null;
                int o = h.indexOf(" @");
                if (o >= 0) {
                    origin = h.substring(o + 2).strip();
                    h = h.substring(0, o);
                }
                int result = -1;
                int arrow = h.indexOf(" -> %");
                if (arrow >= 0) {
                    result = Integer.parseInt(h.substring(arrow + 5));
                    h = h.substring(0, arrow);
                }
                ks.add(new Kernel(h, body(), result, origin));
            }
            return new Loop.Program(head.substring(12).strip(), ks);
        }

        /** Statements up to "}" (consumed). Sets {@link #sawElse} when it stopped at "} else {". */
        private boolean sawElse;

        private List<Stmt> body() {
            List<Stmt> out = new ArrayList<>();
            while (true) {
                String l = next();
                if (l.equals("}") || l.equals("} else {")) {
                    sawElse = l.equals("} else {");
                    return out;
                }
                out.add(stmt(l));
            }
        }

        private Stmt stmt(String l) {
            try {
                if (l.startsWith("alloc %")) {
                    int colon = l.indexOf(':');
                    int id = Integer.parseInt(l.substring(7, colon));
                    String t = l.substring(colon + 1).strip();
                    int b = t.indexOf('[');
                    Ty.Elem elem = Ty.Elem.valueOf((b < 0 ? t : t.substring(0, b)).toUpperCase(Locale.ROOT));
                    List<Dim> dims = new ArrayList<>();
                    if (b >= 0) {
                        for (String d : t.substring(b + 1, t.length() - 1).split(",")) {
                            String x = d.strip();
                            dims.add(x.matches("\\d+") ? Dim.of(Long.parseLong(x)) : Dim.sym(x));
                        }
                    }
                    return new Alloc(id, elem, dims);
                }
                if (l.startsWith("bind %")) {
                    int colon = l.indexOf(':'), eq = l.indexOf(" = ");
                    int id = Integer.parseInt(l.substring(6, colon));
                    String typeText = l.substring(colon + 1, eq).strip();
                    String[] kw = l.substring(eq + 3).strip().split(" ", 2);
                    return new Bind(id, Bind.source(kw[0], kw[1]), typeOf(typeText));
                }
                if (l.startsWith("for ") && l.endsWith(" {")) {
                    String h = l.substring(4, l.length() - 2);
                    int in = h.indexOf(" in "), dots = h.indexOf(" .. ");
                    String var = h.substring(0, in).strip();
                    Expr from = new ExprParser(h.substring(in + 4, dots)).parse(), to = new ExprParser(h.substring(dots + 4)).parse();
                    List<Stmt> b = body();
                    return new For(var, from, to, b);
                }
                if (l.startsWith("if ") && l.endsWith(" {")) {
                    Expr c = new ExprParser(l.substring(3, l.length() - 2)).parse();
                    List<Stmt> then = body();
                    List<Stmt> otherwise = sawElse ? body() : List.of();
                    return new Loop.If(c, then, otherwise);
                }
                if (l.startsWith("prim ")) {
                    IrProgram p = IrParser.parse("policy x {\n  standing {\n    keep %0\n  }\n}\n".replace("keep %0", l.substring(5)));
                    Instr.Def d = (Instr.Def) p.policies().getFirst().standing().instrs().getFirst();
                    return new SetPrim(d.id(), d.type(), d.op());
                }
                if (l.startsWith("%")) {
                    int close = l.indexOf(']');
                    String target = l.substring(0, close + 1);
                    String rest = l.substring(close + 1).strip();
                    int sp = rest.indexOf(' ');
                    String op = rest.substring(0, sp);
                    Expr value = new ExprParser(rest.substring(sp + 1)).parse();
                    Load ref = (Load) new ExprParser(target).parse();
                    return switch (op) {
                        case "=" -> new Assign(ref.buf(), ref.index(), value);
                        case "+=" -> new Accumulate(ref.buf(), ref.index(), Op.Red.SUM, value);
                        case "max=" -> new Accumulate(ref.buf(), ref.index(), Op.Red.MAX, value);
                        case "min=" -> new Accumulate(ref.buf(), ref.index(), Op.Red.MIN, value);
                        default -> throw new LoopParseException(at, "unknown assignment '" + op + "'");
                    };
                }
                // an effect, in tensor IR syntax
                IrProgram p = IrParser.parse("policy x {\n  standing {\n    " + l + "\n  }\n}\n");
                return new Effect(p.policies().getFirst().standing().instrs().getFirst());
            } catch (LoopParseException e) {
                throw e;
            } catch (RuntimeException e) {
                throw new LoopParseException(at, "malformed '" + l + "': " + e.getMessage());
            }
        }

        private static Ty typeOf(String t) {
            IrProgram p = IrParser.parse("policy x {\n  standing {\n    %0: " + t + " = all\n  }\n}\n");
            return ((Instr.Def) p.policies().getFirst().standing().instrs().getFirst()).type();
        }
    }

    /** Expressions: {@code fn(a, b)}, {@code %n[i, j]}, {@code #extent}, numbers, booleans, variables. */
    private static final class ExprParser {
        private final String s;
        private int i;

        ExprParser(String s) {
            this.s = s.strip();
        }

        Expr parse() {
            Expr e = expr();
            skip();
            if (i != s.length()) throw new IllegalArgumentException("trailing text in expression '" + s + "'");
            return e;
        }

        private void skip() {
            while (i < s.length() && s.charAt(i) == ' ') i++;
        }

        private Expr expr() {
            skip();
            char c = s.charAt(i);
            if (c == '%') {
                int j = i + 1;
                while (Character.isDigit(s.charAt(j))) j++;
                int buf = Integer.parseInt(s.substring(i + 1, j));
                i = j;
                if (s.charAt(i) != '[') throw new IllegalArgumentException("expected '[' after %" + buf);
                i++;
                List<Expr> idx = new ArrayList<>();
                skip();
                if (s.charAt(i) == ']') {
                    i++;
                    return new Load(buf, idx);
                }
                while (true) {
                    idx.add(expr());
                    skip();
                    char d = s.charAt(i++);
                    if (d == ']') return new Load(buf, idx);
                    if (d != ',') throw new IllegalArgumentException("expected ',' or ']'");
                }
            }
            if (c == '#') {
                int j = i + 1;
                while (j < s.length() && (Character.isLetterOrDigit(s.charAt(j)) || s.charAt(j) == '_')) j++;
                String d = s.substring(i + 1, j);
                i = j;
                return new Extent(d.matches("\\d+") ? Dim.of(Long.parseLong(d)) : Dim.sym(d));
            }
            int j = i;
            while (j < s.length() && "(),[] ".indexOf(s.charAt(j)) < 0) j++;
            String word = s.substring(i, j);
            i = j;
            if (i < s.length() && s.charAt(i) == '(') {
                i++;
                List<Expr> args = new ArrayList<>();
                while (true) {
                    args.add(expr());
                    skip();
                    char d = s.charAt(i++);
                    if (d == ')') break;
                    if (d != ',') throw new IllegalArgumentException("expected ',' or ')'");
                }
                if (word.equals("choose")) return new Loop.Choose(args.get(0), args.get(1), args.get(2));
                for (Op.Fn1 f : Op.Fn1.values()) if (f.word().equals(word)) return new Un(f, args.getFirst());
                for (Op.Fn2 f : Op.Fn2.values()) if (f.word().equals(word)) return new Bin(f, args.get(0), args.get(1));
                throw new IllegalArgumentException("unknown function '" + word + "'");
            }
            if (word.equals("true") || word.equals("false")) return new Const(Boolean.parseBoolean(word));
            if (word.matches("-?\\d+")) return new Const(Long.parseLong(word));
            if (word.matches("-?[\\d.]+([eE][-+]?\\d+)?|-?Infinity|NaN")) return new Const(Double.parseDouble(word));
            if (word.matches("[a-z_][a-z_0-9]*")) return new Var(word);
            throw new IllegalArgumentException("unexpected '" + word + "'");
        }
    }
}
