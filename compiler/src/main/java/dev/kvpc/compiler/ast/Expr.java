package dev.kvpc.compiler.ast;

import java.util.List;

/** Expressions of KVP: numbers, names, calls and operators over named-axis tensors and token sets. */
public sealed interface Expr {
    Span span();

    record IntLit(long value, Span span) implements Expr {}

    /** {@code text} keeps the literal as written so formatting never changes a number's spelling. */
    record FloatLit(double value, String text, Span span) implements Expr {}

    record BoolLit(boolean value, Span span) implements Expr {}

    record StringLit(String value, Span span) implements Expr {}

    record NameRef(String name, Span span) implements Expr {}

    /** {@code all}: every entry of the lane. */
    record AllSet(Span span) implements Expr {}

    /** {@code compensation}: the lane's one summary entry that merged entries fold into. */
    record Compensation(Span span) implements Expr {}

    record Unary(UnaryOp op, Expr operand, Span span) implements Expr {}

    record Binary(BinaryOp op, Expr left, Expr right, Span span) implements Expr {}

    record Conditional(Expr condition, Expr ifTrue, Expr ifFalse, Span span) implements Expr {}

    /** {@code int(x)} or {@code float(x)}. */
    record Cast(ScalarKind to, Expr operand, Span span) implements Expr {}

    /** A call of a builtin or a user function; {@code over} is null when no {@code over:} clause was written. */
    /**
     * {@code callee(args, over: ...)}; {@code axis} is the bracketed axis of {@code table[channel]("f.tsv")}, null
     * for every other call.
     */
    record Call(Name callee, List<Arg> args, List<Name> over, Name axis, Span span) implements Expr {
        public Call {
            args = List.copyOf(args);
            over = over == null ? null : List.copyOf(over);
        }

        public Call(Name callee, List<Arg> args, List<Name> over, Span span) {
            this(callee, args, over, null, span);
        }
    }

    enum ScalarKind { INT, FLOAT }

    enum UnaryOp {
        NEG("-"), NOT("!");
        public final String symbol;
        UnaryOp(String symbol) { this.symbol = symbol; }
    }

    /** Binary operators, tightest first; {@link #precedence} follows the grammar's order. */
    enum BinaryOp {
        MUL("*", 7), DIV("/", 7), MOD("%", 7),
        INTERSECT("&", 6),
        ADD("+", 5), SUB("-", 5),
        WITHIN("within", 4),
        LT("<", 3), LE("<=", 3), GT(">", 3), GE(">=", 3), EQ("==", 3), NE("!=", 3),
        AND("&&", 2),
        OR("||", 1);

        public final String symbol;
        public final int precedence;

        BinaryOp(String symbol, int precedence) {
            this.symbol = symbol;
            this.precedence = precedence;
        }

        public boolean isComparison() { return precedence == 3; }
    }
}
