package dev.kvpc.gpu.kir;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The kernel IR's text form: {@link #print} and {@link #parse}, with {@code parse(print(m))} equal to {@code m}.
 * Infix operations are fully parenthesised, so the text needs no precedence rules:
 *
 * <pre>
 * kernel scale [group 64] (buffer float x, out buffer float y, int n, float a) {
 *   local float tmp[64];
 *   let int i = global_id(0);
 *   if (i &lt; n) {
 *     store y[i] = (a * x[i]);
 *   }
 * }
 * </pre>
 *
 * Arrays private to each work-item are declared as {@code private float acc[4];} after the local ones.
 *
 * <p>Kernels written as templates name module constants ({@code D}, {@code G}, ...): {@link #parse(String, Map)} binds
 * them to int literals as it reads, and work-group and local array sizes are int expressions of literals and
 * constants, evaluated then.
 */
public final class KirText {
    private KirText() {
    }

    // ---------------------------------------------------------------- printing

    public static String print(KirModule m) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < m.kernels().size(); i++) {
            if (i > 0) sb.append('\n');
            print(m.kernels().get(i), sb);
        }
        return sb.toString();
    }

    public static String print(Kernel k) {
        StringBuilder sb = new StringBuilder();
        print(k, sb);
        return sb.toString();
    }

    private static void print(Kernel k, StringBuilder sb) {
        sb.append("kernel ").append(k.name());
        if (k.groupSize() > 0) sb.append(" [group ").append(k.groupSize()).append(']');
        sb.append(" (");
        for (int i = 0; i < k.params().size(); i++) {
            if (i > 0) sb.append(", ");
            switch (k.params().get(i)) {
                case Kernel.BufferParam b -> sb.append(b.writable() ? "out buffer " : "buffer ").append(b.elem().text).append(' ').append(b.name());
                case Kernel.ScalarParam s -> sb.append(s.type().text).append(' ').append(s.name());
            }
        }
        sb.append(") {\n");
        for (Kernel.LocalArray l : k.locals()) {
            sb.append(l.shared() ? "  local " : "  private ").append(l.elem().text).append(' ').append(l.name()).append('[').append(l.size()).append("];\n");
        }
        block(k.body(), 1, sb);
        sb.append("}\n");
    }

    private static void block(List<Stmt> body, int depth, StringBuilder sb) {
        for (Stmt s : body) stmt(s, depth, sb);
    }

    private static void stmt(Stmt s, int depth, StringBuilder sb) {
        String ind = "  ".repeat(depth);
        sb.append(ind);
        switch (s) {
            case Stmt.Let l -> sb.append("let ").append(l.type().text).append(' ').append(l.name()).append(" = ").append(expr(l.init())).append(";\n");
            case Stmt.Assign a -> sb.append(a.name()).append(" = ").append(expr(a.value())).append(";\n");
            case Stmt.Store st -> sb.append("store ").append(st.array()).append('[').append(expr(st.index())).append("] = ").append(expr(st.value())).append(";\n");
            case Stmt.AtomicAdd a -> sb.append("atomic ").append(a.array()).append('[').append(expr(a.index())).append("] += ").append(expr(a.value())).append(";\n");
            case Stmt.Barrier b -> sb.append("barrier;\n");
            case Stmt.For f -> {
                sb.append("for ").append(f.var()).append(" = ").append(expr(f.from())).append(" to ").append(expr(f.to())).append(" step ").append(expr(f.step())).append(" {\n");
                block(f.body(), depth + 1, sb);
                sb.append(ind).append("}\n");
            }
            case Stmt.If i -> {
                sb.append("if ").append(expr(i.cond())).append(" {\n");
                block(i.then(), depth + 1, sb);
                sb.append(ind).append('}');
                if (!i.otherwise().isEmpty()) {
                    sb.append(" else {\n");
                    block(i.otherwise(), depth + 1, sb);
                    sb.append(ind).append('}');
                }
                sb.append('\n');
            }
        }
    }

    public static String expr(Expr e) {
        return switch (e) {
            case Expr.Lit l -> literal(l);
            case Expr.Ref r -> r.name();
            case Expr.Id id -> id.fn().text + "(" + id.dim() + ")";
            case Expr.Load ld -> ld.array() + "[" + expr(ld.index()) + "]";
            case Expr.Call c -> {
                if (c.prim().infix) yield "(" + expr(c.args().get(0)) + " " + c.prim().text + " " + expr(c.args().get(1)) + ")";
                StringBuilder sb = new StringBuilder(c.prim().text).append('(');
                for (int i = 0; i < c.args().size(); i++) sb.append(i > 0 ? ", " : "").append(expr(c.args().get(i)));
                yield sb.append(')').toString();
            }
        };
    }

    static String literal(Expr.Lit l) {
        return switch (l.type()) {
            case INT -> Integer.toString((int) l.value());
            case BOOL -> l.value() != 0 ? "true" : "false";
            case DOUBLE -> Double.isInfinite(l.value()) ? (l.value() > 0 ? "infd" : "-infd") : Double.toString(l.value()) + "d";
            default -> Double.isInfinite(l.value()) ? (l.value() > 0 ? "inf" : "-inf") : Float.toString((float) l.value()) + "f";
        };
    }

    // ---------------------------------------------------------------- parsing

    public static KirModule parse(String text) {
        return parse(text, Map.of());
    }

    /** Parses {@code text}, each name in {@code constants} read as that int. */
    public static KirModule parse(String text, Map<String, Integer> constants) {
        return new Parser(text, constants).module();
    }

    private static final class Parser {
        private final String src;
        private final Map<String, Integer> constants;
        private int pos, line = 1, col = 1;
        private String tok;
        private int tokLine, tokCol;

        Parser(String src, Map<String, Integer> constants) {
            this.src = src;
            this.constants = constants;
            next();
        }

        KirModule module() {
            List<Kernel> kernels = new ArrayList<>();
            while (tok != null) kernels.add(kernel());
            return new KirModule(kernels);
        }

        private Kernel kernel() {
            expect("kernel");
            String name = name();
            int group = 0;
            if (accept("[")) {
                expect("group");
                group = constant(expr(), "work-group size");
                expect("]");
            }
            expect("(");
            List<Kernel.Param> params = new ArrayList<>();
            if (!accept(")")) {
                do {
                    boolean out = accept("out");
                    if (out || "buffer".equals(tok)) {
                        expect("buffer");
                        KType t = type();
                        params.add(new Kernel.BufferParam(name(), t, out));
                    } else {
                        KType t = type();
                        params.add(new Kernel.ScalarParam(name(), t));
                    }
                } while (accept(","));
                expect(")");
            }
            expect("{");
            List<Kernel.LocalArray> locals = new ArrayList<>();
            while ("local".equals(tok) || "private".equals(tok)) {
                boolean shared = tok.equals("local");
                next();
                KType t = type();
                String n = name();
                expect("[");
                int size = constant(expr(), "local array size");
                expect("]");
                expect(";");
                locals.add(new Kernel.LocalArray(n, t, size, shared));
            }
            List<Stmt> body = blockRest();
            return new Kernel(name, group, params, locals, body);
        }

        /** Statements up to and including the closing brace. */
        private List<Stmt> blockRest() {
            List<Stmt> body = new ArrayList<>();
            while (!accept("}")) {
                if (tok == null) throw error("a '}' closes the block");
                body.add(stmt());
            }
            return body;
        }

        private Stmt stmt() {
            switch (tok) {
                case "let" -> {
                    next();
                    KType t = type();
                    String n = name();
                    expect("=");
                    Expr e = expr();
                    expect(";");
                    return new Stmt.Let(n, t, e);
                }
                case "store", "atomic" -> {
                    boolean atomic = tok.equals("atomic");
                    next();
                    String a = name();
                    expect("[");
                    Expr i = expr();
                    expect("]");
                    expect(atomic ? "+=" : "=");
                    Expr v = expr();
                    expect(";");
                    return atomic ? new Stmt.AtomicAdd(a, i, v) : new Stmt.Store(a, i, v);
                }
                case "barrier" -> {
                    next();
                    expect(";");
                    return new Stmt.Barrier();
                }
                case "for" -> {
                    next();
                    String v = name();
                    expect("=");
                    Expr from = expr();
                    expect("to");
                    Expr to = expr();
                    expect("step");
                    Expr step = expr();
                    expect("{");
                    return new Stmt.For(v, from, to, step, blockRest());
                }
                case "if" -> {
                    next();
                    Expr c = expr();
                    expect("{");
                    List<Stmt> then = blockRest();
                    List<Stmt> otherwise = List.of();
                    if (accept("else")) {
                        expect("{");
                        otherwise = blockRest();
                    }
                    return new Stmt.If(c, then, otherwise);
                }
                default -> {
                    String n = name();
                    expect("=");
                    Expr e = expr();
                    expect(";");
                    return new Stmt.Assign(n, e);
                }
            }
        }

        private Expr expr() {
            if (tok == null) throw error("an expression");
            if (accept("(")) {
                Expr a = expr();
                Prim p = tok == null ? null : Prim.infix(tok);
                if (p == null) throw error("an infix operator");
                next();
                Expr b = expr();
                expect(")");
                return new Expr.Call(p, List.of(a, b));
            }
            switch (tok) {
                case "true", "false" -> {
                    Expr e = new Expr.Lit(KType.BOOL, tok.equals("true") ? 1 : 0);
                    next();
                    return e;
                }
                case "inf", "-inf", "infd", "-infd" -> {
                    Expr e = new Expr.Lit(tok.endsWith("d") ? KType.DOUBLE : KType.FLOAT, tok.startsWith("-") ? Double.NEGATIVE_INFINITY : Double.POSITIVE_INFINITY);
                    next();
                    return e;
                }
                default -> { }
            }
            char c0 = tok.charAt(0);
            if (Character.isDigit(c0) || c0 == '-') return number();
            if (!Character.isLetter(c0) && c0 != '_') throw error("an expression");
            int nameLine = tokLine, nameCol = tokCol;
            String n = name();
            if (accept("(")) {
                Expr.IdFn id = Expr.IdFn.of(n);
                if (id != null) {
                    int line0 = tokLine, col0 = tokCol;
                    Expr d = number();
                    if (!(d instanceof Expr.Lit l) || l.type() != KType.INT || l.value() < 0 || l.value() > 2) {
                        throw new KirException(line0 + ":" + col0 + ": " + n + " takes a dimension 0, 1 or 2");
                    }
                    expect(")");
                    return new Expr.Id(id, (int) l.value());
                }
                Prim p = Prim.call(n);
                if (p == null) throw new KirException(nameLine + ":" + nameCol + ": " + n + " is not an operation of the kernel IR");
                List<Expr> args = new ArrayList<>();
                if (!accept(")")) {
                    do {
                        args.add(expr());
                    } while (accept(","));
                    expect(")");
                }
                if (args.size() != p.arity()) throw new KirException(nameLine + ":" + nameCol + ": " + n + " takes " + p.arity() + " operands, not " + args.size());
                return new Expr.Call(p, args);
            }
            if (accept("[")) {
                Expr i = expr();
                expect("]");
                return new Expr.Load(n, i);
            }
            Integer k = constants.get(n);
            return k != null ? Expr.i(k) : new Expr.Ref(n);
        }

        private Expr number() {
            String t = tok;
            try {
                Expr e;
                if (t.endsWith("d")) {
                    e = new Expr.Lit(KType.DOUBLE, Double.parseDouble(t.substring(0, t.length() - 1)));
                } else if (t.endsWith("f") || t.contains(".") || t.contains("e") || t.contains("E")) {
                    float v = Float.parseFloat(t.endsWith("f") ? t.substring(0, t.length() - 1) : t);
                    e = new Expr.Lit(KType.FLOAT, v);
                } else {
                    e = Expr.i(Integer.parseInt(t));
                }
                next();
                return e;
            } catch (NumberFormatException ex) {
                throw error("a number");
            }
        }

        /** Evaluates an int expression of literals (constants are already literals). */
        private int constant(Expr e, String what) {
            return switch (e) {
                case Expr.Lit l when l.type() == KType.INT -> (int) l.value();
                case Expr.Call c when c.prim().infix && c.prim().sig == Prim.Sig.ARITH || c.prim().sig == Prim.Sig.INT2 && c.prim().infix -> {
                    int a = constant(c.args().get(0), what), b = constant(c.args().get(1), what);
                    yield switch (c.prim()) {
                        case ADD -> a + b;
                        case SUB -> a - b;
                        case MUL -> a * b;
                        case DIV -> b == 0 ? fail(what) : a / b;
                        case REM -> b == 0 ? fail(what) : a % b;
                        case SHL -> a << b;
                        case SHR -> a >> b;
                        case BOR -> a | b;
                        default -> a & b;
                    };
                }
                default -> throw error("the " + what + " as an int of literals and constants");
            };
        }

        private int fail(String what) {
            throw error("the " + what + " without a division by zero");
        }

        private KType type() {
            KType t = tok == null ? null : KType.of(tok);
            if (t == null) throw error("a type (bool, int, float, half, uchar)");
            next();
            return t;
        }

        private String name() {
            if (tok == null || !(Character.isLetter(tok.charAt(0)) || tok.charAt(0) == '_')) throw error("a name");
            String n = tok;
            next();
            return n;
        }

        private boolean accept(String t) {
            if (t.equals(tok)) {
                next();
                return true;
            }
            return false;
        }

        private void expect(String t) {
            if (!accept(t)) throw error("'" + t + "'");
        }

        private KirException error(String wanted) {
            return new KirException(tokLine + ":" + tokCol + ": expected " + wanted + (tok == null ? " at the end" : ", found '" + tok + "'"));
        }

        private void next() {
            // skip blanks and // comments
            while (pos < src.length()) {
                char c = src.charAt(pos);
                if (c == '/' && pos + 1 < src.length() && src.charAt(pos + 1) == '/') {
                    while (pos < src.length() && src.charAt(pos) != '\n') advance();
                } else if (Character.isWhitespace(c)) {
                    advance();
                } else {
                    break;
                }
            }
            tokLine = line;
            tokCol = col;
            if (pos >= src.length()) {
                tok = null;
                return;
            }
            int start = pos;
            char c = src.charAt(pos);
            if (Character.isLetter(c) || c == '_') {
                while (pos < src.length() && (Character.isLetterOrDigit(src.charAt(pos)) || src.charAt(pos) == '_')) advance();
            } else if (Character.isDigit(c) || c == '-' && pos + 1 < src.length() && (Character.isDigit(src.charAt(pos + 1)) || src.startsWith("inf", pos + 1))) {
                advance();
                if (src.startsWith("inf", pos)) {
                    advance();
                    advance();
                    advance();
                    if (pos < src.length() && src.charAt(pos) == 'd') advance();
                } else {
                    while (pos < src.length()) {
                        char d = src.charAt(pos);
                        boolean exp = (d == '-' || d == '+') && (src.charAt(pos - 1) == 'e' || src.charAt(pos - 1) == 'E');
                        if (Character.isLetterOrDigit(d) || d == '.' || exp) advance();
                        else break;
                    }
                }
            } else {
                String[] two = {"<=", ">=", "==", "!=", "&&", "||", "<<", ">>", "+="};  // before their one-character prefixes
                boolean matched = false;
                for (String t : two) {
                    if (src.startsWith(t, pos)) {
                        advance();
                        advance();
                        matched = true;
                        break;
                    }
                }
                if (!matched) advance();
            }
            tok = src.substring(start, pos);
        }

        private void advance() {
            if (src.charAt(pos) == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
            pos++;
        }
    }
}
