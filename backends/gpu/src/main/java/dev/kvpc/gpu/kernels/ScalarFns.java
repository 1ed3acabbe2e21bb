package dev.kvpc.gpu.kernels;

import dev.kvpc.gpu.kir.KType;
import dev.kvpc.ir.Op;

/**
 * The IR's scalar functions ({@link Op.Fn1}, {@link Op.Fn2}, whose {@code apply} is their meaning) as kernel IR
 * text, in float (attention variants) or double (policy kernels): each spelled here once, for both widths.
 * {@code VariantLoweringTest} and {@code PolicyKernelsTest} hold every one to {@code apply} on the device.
 */
public final class ScalarFns {
    /** Floats: attention variants' logits and masks. */
    public static final ScalarFns FLOAT = new ScalarFns(KType.FLOAT);
    /** Doubles: policy kernels, which compute as the JVM backend and the interpreter do. */
    public static final ScalarFns DOUBLE = new ScalarFns(KType.DOUBLE);

    private final KType type;
    private final String zero, one, inf, nan;

    private ScalarFns(KType type) {
        this.type = type;
        this.zero = lit(0.0);
        this.one = lit(1.0);
        this.inf = lit(Double.POSITIVE_INFINITY);
        this.nan = "(" + inf + " - " + inf + ")";
    }

    public KType type() {
        return type;
    }

    /** {@link Op.Fn1#apply} in kernel IR. */
    public String fn1(Op.Fn1 fn, String x) {
        return switch (fn) {
            case NEG -> "neg(" + x + ")";
            case NOT -> "select((" + x + " == " + zero + "), " + one + ", " + zero + ")";
            case ABS -> "fabs(" + x + ")";
            case EXP -> "exp(" + x + ")";
            case LOG -> "log(" + x + ")";
            case SQRT -> "sqrt(" + x + ")";
            case TANH -> "tanh(" + x + ")";
            case SIGMOID -> "(" + one + " / (" + one + " + exp(neg(" + x + "))))";
            case TO_INT -> toInt(x);
            case TO_FLOAT -> x;
        };
    }

    /**
     * Truncation toward zero, as {@code (double) (long) x} is: NaN gives 0, values past the long's range its extreme
     * (2^63 as a float or double; floats past 2^23 and doubles past 2^52 are whole already), and never -0.0 (adding 0.0
     * makes trunc's -0.0 the long's 0).
     */
    private String toInt(String x) {
        if (type == KType.FLOAT) {
            return "select((" + x + " != " + x + "), 0.0f, select((fabs(" + x + ") < 8.388608E6f), float(int(" + x + ")), select((fabs(" + x
                    + ") >= 9.223372E18f), select((" + x + " > 0.0f), 9.223372E18f, -9.223372E18f), " + x + ")))";
        }
        String big = lit(9.223372036854775807E18);
        return "select((" + x + " != " + x + "), " + zero + ", select((fabs(" + x + ") >= " + big + "), select((" + x + " > " + zero + "), " + big + ", "
                + lit(-9.223372036854775807E18) + "), (trunc(" + x + ") + " + zero + ")))";
    }

    /** {@link Op.Fn2#apply} in kernel IR. */
    public String fn2(Op.Fn2 fn, String a, String b) {
        return switch (fn) {
            case ADD -> "(" + a + " + " + b + ")";
            case SUB -> "(" + a + " - " + b + ")";
            case MUL -> "(" + a + " * " + b + ")";
            case DIV -> "(" + a + " / " + b + ")";
            case MOD -> "fmod(" + a + ", " + b + ")";
            case LT -> truth("(" + a + " < " + b + ")");
            case LE -> truth("(" + a + " <= " + b + ")");
            case GT -> truth("(" + a + " > " + b + ")");
            case GE -> truth("(" + a + " >= " + b + ")");
            case EQ -> truth("(" + a + " == " + b + ")");
            case NE -> truth("(" + a + " != " + b + ")");
            case AND -> truth("((" + a + " != " + zero + ") && (" + b + " != " + zero + "))");
            case OR -> truth("((" + a + " != " + zero + ") || (" + b + " != " + zero + "))");
            // Math.max and min: NaN if either is NaN (fmax and fmin would drop it); 0.0 above -0.0 (fmax may give either):
            // for two zeros, a + b is max's answer and -((-a) + (-b)) min's
            case MAX -> "select(((" + a + " != " + a + ") || (" + b + " != " + b + ")), (" + a + " + " + b + "), select(((" + a + " == " + zero + ") && (" + b
                    + " == " + zero + ")), (" + a + " + " + b + "), fmax(" + a + ", " + b + ")))";
            case MIN -> "select(((" + a + " != " + a + ") || (" + b + " != " + b + ")), (" + a + " + " + b + "), select(((" + a + " == " + zero + ") && (" + b
                    + " == " + zero + ")), neg((neg(" + a + ") + neg(" + b + "))), fmin(" + a + ", " + b + ")))";
            // Math.pow: NaN for a NaN exponent and for (+-1) to an infinite one, where C's pow gives 1
            case POW -> "select(((" + b + " != " + b + ") || ((fabs(" + a + ") == " + one + ") && (fabs(" + b + ") == " + inf + "))), " + nan + ", pow(" + a + ", "
                    + b + "))";
        };
    }

    /** A comparison's truth as 1 or 0. */
    public String truth(String cond) {
        return "select(" + cond + ", " + one + ", " + zero + ")";
    }

    /** A literal of this width (a double rounded to float for floats); NaN as inf - inf. */
    public String lit(double v) {
        if (type == KType.DOUBLE) {
            if (Double.isNaN(v)) return "(infd - infd)";
            if (Double.isInfinite(v)) return v > 0 ? "infd" : "-infd";
            return Double.toString(v) + "d";
        }
        float f = (float) v;
        if (Float.isNaN(f)) return "(inf - inf)";
        if (Float.isInfinite(f)) return f > 0 ? "inf" : "-inf";
        return Float.toString(f) + "f";
    }
}
