package dev.kvpc.compiler.ast;

import java.util.List;

/** A use of a policy or attention variant by name, with arguments ({@code args} null when no parentheses). */
public record PolicyRef(Name name, List<Arg> args, Span span) {
    public PolicyRef { args = args == null ? null : List.copyOf(args); }

    public List<Arg> argList() { return args == null ? List.of() : args; }
}
