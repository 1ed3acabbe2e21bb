package dev.kvpc.compiler.ast;

import java.util.List;

/** One parsed source file. {@code comments} are the ordinary comments, kept so the formatter loses nothing. */
public record KvpFile(String path, List<Import> imports, List<Decl> decls, List<Comment> comments, Span span) {
    public KvpFile {
        imports = List.copyOf(imports);
        decls = List.copyOf(decls);
        comments = List.copyOf(comments);
    }

    public record Import(String path, Span span) {}

    /** A {@code //} or block comment as written, including its delimiters. */
    public record Comment(String text, Span span) {}
}
