package dev.kvpc.compiler.diag;

/**
 * Every diagnostic the compiler can give, with a stable code. Codes are never renumbered or reused:
 * tests, docs/language.md and users' scripts rely on them.
 */
public enum Code {
    // syntax and files
    E001("syntax error",
            "`policy p { keep all }` (actions belong in handlers)"),
    E010("imported file not found or unreadable",
            "`import \"missing.kvp\"`"),
    E011("import cycle",
            "`a.kvp` imports `b.kvp`, which imports `a.kvp`"),
    E012("file not found or unreadable",
            "`kvpc check nosuch.kvp`"),
    // names
    E100("unknown name",
            "`keep last(windw)`"),
    E101("unknown function",
            "`keep top(softmax(acc), 8)`"),
    E102("unknown axis",
            "`sum(attn, over: tokens)`"),
    E103("duplicate definition",
            "two `policy h2o` in a file and its imports"),
    E104("unknown policy or attention variant",
            "`layers 2.. use h2o2`"),
    E105("bad argument: unknown parameter, repeated, or too many",
            "`use h2o(budgett = 256)`"),
    E106("missing argument for a parameter without default",
            "`use p` where `policy p(n: int) { ... }`"),
    E107("recursive function or policy",
            "`fn f(n: int) -> int { f(n - 1) }`, `policy p = p`"),
    E108("assignment to something that is not state",
            "`budget += 1`"),
    E109("wrong number or kind of arguments to a builtin",
            "`quantile(gates)`"),
    E110("unknown option word",
            "`selection per head`"),
    E111("argument outside the parameter's declared range",
            "`window(size = 0)` with `size: int in 1..65536`"),
    E112("composition nested too deeply",
            "65 aliases, each `policy aN = aN-1`: each alias, `use` or inline body is a level, at most 64"),
    // types and shapes
    E200("type mismatch",
            "`n = 0.5` for `state n: i32 per lane`"),
    E201("shape mismatch",
            "`keep top(attn, 8)` (score not per token)"),
    E202("reduction or pooling over an axis the value does not have",
            "`sum(k, over: query)`"),
    E203("token set expected",
            "`keep acc`"),
    E204("not a constant where one is needed",
            "`every len { ... }`"),
    E205("integer outside the 64-bit range",
            "`overflow(budget * 4)` with `budget = 4611686018427387904`; a literal of 20 digits"),
    // budgets and sets
    E300("budget or count can be negative",
            "`top(acc, budget - 600)` with `budget = 512`"),
    E301("protected sets exceed the budget",
            "`on overflow(8) { keep first(4) + last(8) }`"),
    E302("overflow handler can leave the lane over budget",
            "`on overflow(size) { keep all }`"),
    E303("keep or attend of a set that can be empty",
            "`attend all - last(page)`"),
    E304("period, page size or kernel must be positive",
            "`every 0 { ... }`"),
    E305("action not allowed in this event",
            "`every 64 { keep last(8) }`"),
    // evidence
    E400("prefill queries read but not observed",
            "`on prefill { let s = mean(maxpool(attn, 7, over: token), over: query, group) }`"),
    E401("attention probabilities read under a variant that has none",
            "`h2o` in a config whose variant has `normalize none`"),
    E402("signal not available here",
            "`fn f(n: int) -> int { n - len }`"),
    // storage, tables and composition
    E500("unsupported storage format or bit width",
            "`store keys as int(3)`"),
    E501("quantisation group does not divide the head dimension",
            "`store values as int4 per token group(48)` with `head_dim` 128"),
    E502("table file missing or malformed",
            "`table(\"nosuch.tsv\")`"),
    E503("table shape does not match the model",
            "a 5 × 4 table under the 32 × 8 reference shape"),
    E504("lanes claimed by two policies",
            "`layers 0..4 use full` then `layers 4.. use h2o`"),
    E505("per-head allocation outside `selection per layer`, or sets per query head inside it",
            "`top(s, 64, per head at least 8)` in a per-lane policy; `top(sum(q * k, over: channel, query), 64)` under `selection per layer`"),
    // warnings
    W100("unused parameter",
            "`policy p(unused: int = 3) { }`"),
    W101("dead state: written but never read",
            "`acc += ...` with no read of `acc`"),
    W102("unused let binding",
            "`let r = 3` never read"),
    W103("a name hides a signal",
            "`policy recent(pos: int = 512)`: within the policy `pos` reads the parameter"),
    W200("lossy: quantised to 4 bits or fewer with no full-precision recent window",
            "`store keys as int2 per channel group(32)`"),
    W201("attention sinks kept under a variant whose rows do not sum to 1",
            "`streaming_llm` in a config with `attention sigmoid`");

    private final String title, example;

    Code(String title, String example) {
        this.title = title;
        this.example = example;
    }

    public String title() {
        return title;
    }

    /**
     * What gives it, for example (Markdown: code in backticks), as docs/language.md's table of checks shows it
     * ({@code CodeDocsTest} holds the table to this enum).
     */
    public String example() {
        return example;
    }

    public Severity severity() {
        return name().charAt(0) == 'W' ? Severity.WARNING : Severity.ERROR;
    }
}
