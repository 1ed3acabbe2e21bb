package dev.kvpc.compiler.diag;

/**
 * Every diagnostic the compiler can give, with a stable code. Codes are never renumbered or reused:
 * tests, docs/language.md and users' scripts rely on them.
 */
public enum Code {
    // syntax and files
    E001("syntax error"),
    E010("imported file not found or unreadable"),
    E011("import cycle"),
    E012("file not found or unreadable"),
    // names
    E100("unknown name"),
    E101("unknown function"),
    E102("unknown axis"),
    E103("duplicate definition"),
    E104("unknown policy or attention variant"),
    E105("bad argument: unknown parameter, repeated, or too many"),
    E106("missing argument for a parameter without default"),
    E107("recursive function or policy"),
    E108("assignment to something that is not state"),
    E109("wrong number or kind of arguments to a builtin"),
    E110("unknown option word"),
    E111("argument outside the parameter's declared range"),
    E112("composition nested too deeply"),
    // types and shapes
    E200("type mismatch"),
    E201("shape mismatch"),
    E202("reduction or pooling over an axis the value does not have"),
    E203("token set expected"),
    E204("not a constant where one is needed"),
    E205("integer outside the 64-bit range"),
    // budgets and sets
    E300("budget or count can be negative"),
    E301("protected sets exceed the budget"),
    E302("overflow handler can leave the lane over budget"),
    E303("keep or attend of a set that can be empty"),
    E304("period, page size or kernel must be positive"),
    E305("action not allowed in this event"),
    // evidence
    E400("prefill queries read but not observed"),
    E401("attention probabilities read under a variant that has none"),
    E402("signal not available here"),
    // storage, tables and composition
    E500("unsupported storage format or bit width"),
    E501("quantisation group does not divide the head dimension"),
    E502("table file missing or malformed"),
    E503("table shape does not match the model"),
    E504("lanes claimed by two policies"),
    E505("per-head allocation outside `selection per layer`, or sets per query head inside it"),
    // warnings
    W100("unused parameter"),
    W101("dead state: written but never read"),
    W102("unused let binding"),
    W103("a name hides a signal"),
    W200("lossy: quantised to 4 bits or fewer with no full-precision recent window"),
    W201("attention sinks kept under a variant whose rows do not sum to 1");

    private final String title;

    Code(String title) {
        this.title = title;
    }

    public String title() {
        return title;
    }

    public Severity severity() {
        return name().charAt(0) == 'W' ? Severity.WARNING : Severity.ERROR;
    }
}
