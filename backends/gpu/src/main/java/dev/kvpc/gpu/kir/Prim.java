package dev.kvpc.gpu.kir;

import java.util.List;

/**
 * Every operation of the kernel IR's expressions: one row each, with its text name, how it is written (an infix
 * operator, or a call), its typing rule, and its spelling in each C dialect ({@link dev.kvpc.gpu.emit.Dialect} reads
 * {@link #opencl} and {@link #cuda}). A new primitive is a new row here; the parser, printer, verifier and emitters
 * read the table.
 */
public enum Prim {
    ADD("+", true, Sig.ARITH, "+", "+"),
    SUB("-", true, Sig.ARITH, "-", "-"),
    MUL("*", true, Sig.ARITH, "*", "*"),
    DIV("/", true, Sig.ARITH, "/", "/"),
    REM("%", true, Sig.INT2, "%", "%"),
    SHL("<<", true, Sig.INT2, "<<", "<<"),
    SHR(">>", true, Sig.INT2, ">>", ">>"),
    BAND("&", true, Sig.INT2, "&", "&"),
    BOR("|", true, Sig.INT2, "|", "|"),
    BXOR("^", true, Sig.INT2, "^", "^"),
    LT("<", true, Sig.CMP, "<", "<"),
    LE("<=", true, Sig.CMP, "<=", "<="),
    GT(">", true, Sig.CMP, ">", ">"),
    GE(">=", true, Sig.CMP, ">=", ">="),
    EQ("==", true, Sig.CMP, "==", "=="),
    NE("!=", true, Sig.CMP, "!=", "!="),
    AND("&&", true, Sig.LOGIC, "&&", "&&"),
    OR("||", true, Sig.LOGIC, "||", "||"),
    NEG("neg", false, Sig.NUM1, "-", "-"),
    NOT("not", false, Sig.BOOL1, "!", "!"),
    EXP("exp", false, Sig.FLOAT1, "exp", "expf"),
    LOG("log", false, Sig.FLOAT1, "log", "logf"),
    SQRT("sqrt", false, Sig.FLOAT1, "sqrt", "sqrtf"),
    RSQRT("rsqrt", false, Sig.FLOAT1, "rsqrt", "rsqrtf"),
    FABS("fabs", false, Sig.FLOAT1, "fabs", "fabsf"),
    TANH("tanh", false, Sig.FLOAT1, "tanh", "tanhf"),
    POW("pow", false, Sig.FLOAT2, "pow", "powf"),
    FMOD("fmod", false, Sig.FLOAT2, "fmod", "fmodf"),
    FMAX("fmax", false, Sig.FLOAT2, "fmax", "fmaxf"),
    FMIN("fmin", false, Sig.FLOAT2, "fmin", "fminf"),
    FMA("fma", false, Sig.FLOAT3, "fma", "fmaf"),
    IMAX("imax", false, Sig.INT2, "max", "max"),
    IMIN("imin", false, Sig.INT2, "min", "min"),
    TO_FLOAT("float", false, Sig.TO_FLOAT, "(float)", "(float)"),
    /** An int or a float as a double. */
    TO_DOUBLE("double", false, Sig.TO_DOUBLE, "(double)", "(double)"),
    /** Rounding toward zero, staying a float or double. */
    TRUNC("trunc", false, Sig.FLOAT1, "trunc", "truncf"),
    /** The magnitude of the first with the sign of the second (how -0.0 is told from 0.0). */
    COPYSIGN("copysign", false, Sig.FLOAT2, "copysign", "copysignf"),
    TO_INT("int", false, Sig.TO_INT, "(int)", "(int)"),
    /** The float whose bits are the int's (a bit pattern below 2^31: the sign is applied apart). */
    AS_FLOAT("as_float", false, Sig.BITS, "as_float", "__int_as_float"),
    SELECT("select", false, Sig.SELECT, "?:", "?:");

    /** How operand types give the result type. */
    public enum Sig {
        /** int,int to int or float,float to float */
        ARITH,
        INT2, CMP, LOGIC, NUM1, BOOL1,
        /** float to float or double to double (likewise for two and three operands) */
        FLOAT1, FLOAT2, FLOAT3,
        TO_FLOAT, TO_DOUBLE, TO_INT, BITS,
        /** bool, T, T to T */
        SELECT
    }

    public final String text;
    public final boolean infix;
    public final Sig sig;
    public final String opencl, cuda;

    Prim(String text, boolean infix, Sig sig, String opencl, String cuda) {
        this.text = text;
        this.infix = infix;
        this.sig = sig;
        this.opencl = opencl;
        this.cuda = cuda;
    }

    public int arity() {
        return switch (sig) {
            case NUM1, BOOL1, FLOAT1, TO_FLOAT, TO_DOUBLE, TO_INT, BITS -> 1;
            case FLOAT3, SELECT -> 3;
            default -> 2;
        };
    }

    /** The result type for these operand types, or null where the operands do not fit. */
    public KType result(List<KType> args) {
        if (args.size() != arity()) return null;
        KType a = args.get(0);
        return switch (sig) {
            case ARITH -> (a == KType.INT || a.real()) && args.get(1) == a ? a : null;
            case INT2 -> a == KType.INT && args.get(1) == KType.INT ? KType.INT : null;
            case CMP -> (a == KType.INT || a.real()) && args.get(1) == a ? KType.BOOL : null;
            case LOGIC -> a == KType.BOOL && args.get(1) == KType.BOOL ? KType.BOOL : null;
            case NUM1 -> a == KType.INT || a.real() ? a : null;
            case BOOL1 -> a == KType.BOOL ? KType.BOOL : null;
            case FLOAT1 -> a.real() ? a : null;
            case FLOAT2 -> a.real() && args.get(1) == a ? a : null;
            case FLOAT3 -> a.real() && args.stream().allMatch(t -> t == a) ? a : null;
            case TO_FLOAT -> a == KType.INT || a == KType.DOUBLE ? KType.FLOAT : null;
            case TO_DOUBLE -> a == KType.INT || a == KType.FLOAT ? KType.DOUBLE : null;
            case TO_INT -> a.real() ? KType.INT : null;
            case BITS -> a == KType.INT ? KType.FLOAT : null;
            case SELECT -> a == KType.BOOL && args.get(1) == args.get(2) && args.get(1) != KType.BOOL ? args.get(1) : null;
        };
    }

    public static Prim infix(String text) {
        for (Prim p : values()) if (p.infix && p.text.equals(text)) return p;
        return null;
    }

    public static Prim call(String text) {
        for (Prim p : values()) if (!p.infix && p.text.equals(text)) return p;
        return null;
    }
}
