package dev.kvpc.compiler.api;

import java.math.BigDecimal;
import java.util.Map;
import java.util.StringJoiner;

/**
 * A policy put under an attention variant from a command line ({@code kvpc run --attention V}, {@code kvpc eval
 * --attention V}): the KVP text of a config that imports the policy's file and the standard variants, names the
 * variant and uses the policy, with its parameters, on every layer. Checked like any file, so a wrong variant name or
 * argument is reported with a caret on this text, whose display name says where it came from.
 */
public final class Deployment {
    /** The config's name in the generated text. */
    public static final String CONFIG = "kvpc_deployment";
    /** The display name diagnostics give the generated text. */
    public static final String NAME = "<--attention>";

    private Deployment() {}

    /**
     * The text: {@code policyImport} is the file that declares {@code policy} (a path, absolute or relative to the
     * folder the text is checked in, or a standard library file name), {@code attention} a variant with optional
     * arguments ({@code softcap(cap = 30.0)}) declared there or in the standard {@code variants.kvp}.
     */
    public static String text(String policyImport, String policy, Map<String, Object> params, String attention) {
        StringJoiner args = new StringJoiner(", ");
        params.forEach((k, v) -> args.add(k + " = " + literal(v)));
        return "import " + dev.kvpc.compiler.fmt.Formatter.quote(policyImport.replace('\\', '/')) + "\n"
                + "import \"variants.kvp\"\n"
                + "config " + CONFIG + " {\n"
                + "    attention " + attention + "\n"
                + "    layers 0.. use " + policy + (params.isEmpty() ? "" : "(" + args + ")") + "\n"
                + "}\n";
    }

    /** A parameter value as a KVP literal: integers, floats in plain notation, booleans, strings quoted. */
    static String literal(Object v) {
        return switch (v) {
            case Long l -> Long.toString(l);
            case Integer i -> Integer.toString(i);
            case Double d -> {
                // the shortest decimal that reads back as d, with a point so that it stays a float
                String s = BigDecimal.valueOf(d).toPlainString();
                yield s.contains(".") ? s : s + ".0";
            }
            case Float f -> literal((double) f);
            case Boolean b -> Boolean.toString(b);
            case String s -> dev.kvpc.compiler.fmt.Formatter.quote(s);
            default -> throw new IllegalArgumentException("a parameter value must be a number, a boolean or a string, not " + v);
        };
    }
}
