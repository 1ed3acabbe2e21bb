package dev.kvpc.compiler;

import dev.kvpc.compiler.ast.KvpFile;
import dev.kvpc.compiler.ast.Span;

import java.lang.reflect.RecordComponent;
import java.util.List;
import java.util.Objects;

/** Structural equality of AST values that ignores source spans and comments (the formatter moves both). */
final class AstEquality {
    private AstEquality() {}

    /** Null when equal, else the path of the first difference. */
    static String diff(Object a, Object b, String path) {
        if (a == b) return null;
        if (a == null || b == null) return path + ": " + a + " vs " + b;
        if (a instanceof Span && b instanceof Span) return null;
        if (a.getClass() != b.getClass()) return path + ": " + a.getClass().getSimpleName() + " vs " + b.getClass().getSimpleName();
        if (a instanceof List<?> la && b instanceof List<?> lb) {
            if (la.size() != lb.size()) return path + ": " + la.size() + " items vs " + lb.size();
            for (int i = 0; i < la.size(); i++) {
                String d = diff(la.get(i), lb.get(i), path + "[" + i + "]");
                if (d != null) return d;
            }
            return null;
        }
        if (a.getClass().isRecord()) {
            for (RecordComponent rc : a.getClass().getRecordComponents()) {
                if (a instanceof KvpFile && (rc.getName().equals("comments") || rc.getName().equals("path"))) continue;
                try {
                    String d = diff(rc.getAccessor().invoke(a), rc.getAccessor().invoke(b), path + "." + rc.getName());
                    if (d != null) return d;
                } catch (ReflectiveOperationException e) {
                    throw new IllegalStateException(e);
                }
            }
            return null;
        }
        return Objects.equals(a, b) ? null : path + ": " + a + " vs " + b;
    }
}
