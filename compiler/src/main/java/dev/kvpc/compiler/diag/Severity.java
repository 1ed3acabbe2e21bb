package dev.kvpc.compiler.diag;

public enum Severity {
    ERROR, WARNING;

    public String word() { return this == ERROR ? "error" : "warning"; }
}
