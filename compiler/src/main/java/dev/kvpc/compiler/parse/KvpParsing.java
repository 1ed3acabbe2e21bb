package dev.kvpc.compiler.parse;

import dev.kvpc.compiler.ast.KvpFile;
import dev.kvpc.compiler.ast.Span;
import dev.kvpc.compiler.diag.Code;
import dev.kvpc.compiler.diag.Diagnostic;
import dev.kvpc.compiler.diag.Diagnostics;
import dev.kvpc.grammar.KvpLexer;
import dev.kvpc.grammar.KvpParser;
import org.antlr.v4.runtime.BaseErrorListener;
import org.antlr.v4.runtime.CharStreams;
import org.antlr.v4.runtime.CommonTokenStream;
import org.antlr.v4.runtime.RecognitionException;
import org.antlr.v4.runtime.Recognizer;
import org.antlr.v4.runtime.Token;
import org.antlr.v4.runtime.misc.IntervalSet;

import java.util.ArrayList;
import java.util.List;

/** Parses KVP source text into a {@link KvpFile}; syntax errors become E001 diagnostics (several per file). */
public final class KvpParsing {
    private KvpParsing() {}

    /** Returns the file's AST, or null when it has syntax errors (then reported to {@code diags}). */
    public static KvpFile parse(String file, String text, Diagnostics diags) {
        KvpLexer lexer = new KvpLexer(CharStreams.fromString(text, file));
        lexer.removeErrorListeners();
        CommonTokenStream tokens = new CommonTokenStream(lexer);
        KvpParser parser = new KvpParser(tokens);
        parser.removeErrorListeners();
        List<Diagnostic> found = new ArrayList<>();
        parser.addErrorListener(new BaseErrorListener() {
            @Override
            public void syntaxError(Recognizer<?, ?> recognizer, Object offending, int line, int col, String msg, RecognitionException e) {
                if (found.size() >= 20) return;
                Token t = offending instanceof Token tok ? tok : null;
                found.add(syntaxDiagnostic(file, parser, t, line, col, e));
            }
        });
        Token deep = tooDeep(tokens);
        if (deep != null) {
            diags.report(new Diagnostic(Code.E001, "nested more than " + MAX_DEPTH + " brackets deep here", span(file, deep),
                    List.of(new Diagnostic.Note("parentheses, brackets and braces nest at most " + MAX_DEPTH + " deep: name a part with let", null))));
            return null;
        }
        KvpParser.FileContext tree;
        try {
            tree = parser.file();
        } catch (StackOverflowError e) {
            // a chain that nests without brackets (else if ..., a ? b : c ? ...): where the parser had got to
            Token at = parser.getCurrentToken();
            diags.report(new Diagnostic(Code.E001, "nested too deeply to parse, at the latest here", span(file, at),
                    List.of(new Diagnostic.Note("a chain of else-if or of ?: this long nests one level per link: split it with let or a lookup", null))));
            return null;
        }
        if (!found.isEmpty()) {
            found.forEach(diags::report);
            return null;
        }
        AstBuilder builder = new AstBuilder(file, tokens);
        KvpFile built = builder.build(tree);
        builder.problems().forEach(diags::report);
        // a tree cut short where it nested too deeply is not checked further (its stand-ins would only add noise)
        return builder.problems().stream().anyMatch(d -> d.code() == Code.E001) ? null : built;
    }

    /** How deep parentheses, brackets and braces may nest: far deeper than a person writes, well within the parser's stack. */
    static final int MAX_DEPTH = 256;

    /** The first opening bracket at which the nesting passes {@link #MAX_DEPTH}, or null: one pass over the tokens. */
    private static Token tooDeep(CommonTokenStream tokens) {
        tokens.fill();
        int depth = 0;
        for (Token t : tokens.getTokens()) {
            switch (t.getType()) {
                case KvpLexer.LPAREN, KvpLexer.LBRACK, KvpLexer.LBRACE -> {
                    if (++depth > MAX_DEPTH) return t;
                }
                case KvpLexer.RPAREN, KvpLexer.RBRACK, KvpLexer.RBRACE -> depth = Math.max(0, depth - 1);
                default -> { }
            }
        }
        return null;
    }

    private static Span span(String file, Token t) {
        int len = Math.max(1, t.getStopIndex() - t.getStartIndex() + 1);
        return new Span(file, t.getLine(), t.getCharPositionInLine() + 1, t.getLine(), t.getCharPositionInLine() + 1 + len, t.getStartIndex(),
                t.getStartIndex() + len);
    }

    private static Diagnostic syntaxDiagnostic(String file, KvpParser parser, Token t, int line, int col, RecognitionException e) {
        Span span;
        String what;
        Token open = t != null && t.getType() == Token.EOF ? unclosedBrace(parser) : null;
        if (open != null) {
            span = new Span(file, open.getLine(), open.getCharPositionInLine() + 1, open.getLine(), open.getCharPositionInLine() + 2,
                    open.getStartIndex(), open.getStartIndex() + 1);
            return new Diagnostic(Code.E001, "this '{' is never closed", span,
                    List.of(new Diagnostic.Note("the file ends at line " + Math.max(1, line) + " with the block still open", null)));
        }
        if (t == null || t.getType() == Token.EOF) {
            span = new Span(file, Math.max(1, line), col + 1, Math.max(1, line), col + 2, Math.max(0, t == null ? 0 : t.getStartIndex()),
                    Math.max(0, t == null ? 0 : t.getStartIndex()));
            what = "unexpected end of file";
        } else {
            int len = Math.max(1, t.getText() == null ? 1 : t.getText().length());
            if (t.getText() != null && t.getText().contains("\n")) len = 1;
            span = new Span(file, line, col + 1, line, col + 1 + len, Math.max(0, t.getStartIndex()), Math.max(0, t.getStartIndex()) + len);
            what = t.getType() == KvpLexer.BAD_CHAR ? "unexpected character " + printable(t.getText()) : "unexpected " + describe(t);
        }
        List<Diagnostic.Note> notes = new ArrayList<>();
        if (t != null && reservedWhereANameGoes(parser, t)) {
            return new Diagnostic(Code.E001, "'" + t.getText() + "' is a reserved word and cannot be a name", span,
                    List.of(new Diagnostic.Note("choose another name (the reserved words are listed in docs/language.md)", null)));
        }
        IntervalSet expected = null;
        try {
            expected = e != null && e.getExpectedTokens() != null ? e.getExpectedTokens() : parser.getExpectedTokens();
        } catch (RuntimeException ignored) {
            // The parser cannot always say what it expected after recovery; the message stands without it.
        }
        if (expected != null && !expected.isNil()) {
            List<String> names = new ArrayList<>();
            for (int type : expected.toList()) names.add(parser.getVocabulary().getDisplayName(type));
            if (names.size() <= 8) notes.add(new Diagnostic.Note("expected " + String.join(", ", names), null));
        }
        return new Diagnostic(Code.E001, what, span, notes);
    }

    /**
     * Whether {@code t} is a keyword standing where a name goes: after {@code policy}, {@code fn}, {@code config},
     * {@code attention}, {@code let} or {@code state}, or first in a parameter (after the list's '(' or a ',').
     */
    private static boolean reservedWhereANameGoes(KvpParser parser, Token t) {
        String text = t.getText();
        if (text == null || !text.matches("[a-z_]+")) return false;
        String literal = parser.getVocabulary().getLiteralName(t.getType());
        if (literal == null || !literal.equals("'" + text + "'")) return false;
        if (!(parser.getInputStream() instanceof CommonTokenStream ts)) return false;
        Token before = null;
        for (int i = t.getTokenIndex() - 1; i >= 0; i--) {
            Token p = ts.get(i);
            if (p.getChannel() == Token.DEFAULT_CHANNEL) {
                before = p;
                break;
            }
        }
        if (before == null) return false;
        return switch (before.getType()) {
            case KvpLexer.POLICY, KvpLexer.FN, KvpLexer.CONFIG, KvpLexer.ATTENTION, KvpLexer.LET, KvpLexer.STATE -> true;
            // a parameter list: '(' or ',' followed by the reserved word and ':'
            case KvpLexer.LPAREN, KvpLexer.COMMA -> t.getTokenIndex() + 1 < ts.size() && nextIsColon(ts, t);
            default -> false;
        };
    }

    private static boolean nextIsColon(CommonTokenStream ts, Token t) {
        for (int i = t.getTokenIndex() + 1; i < ts.size(); i++) {
            Token n = ts.get(i);
            if (n.getChannel() == Token.DEFAULT_CHANNEL) return n.getType() == KvpLexer.COLON;
        }
        return false;
    }

    /** The innermost '{' left open at the end of the file, or null when braces balance. */
    private static Token unclosedBrace(KvpParser parser) {
        if (!(parser.getInputStream() instanceof CommonTokenStream ts)) return null;
        java.util.ArrayDeque<Token> stack = new java.util.ArrayDeque<>();
        for (Token tok : ts.getTokens()) {
            if (tok.getType() == KvpLexer.LBRACE) stack.push(tok);
            else if (tok.getType() == KvpLexer.RBRACE && !stack.isEmpty()) stack.pop();
        }
        return stack.peek();
    }

    private static String describe(Token t) {
        return switch (t.getType()) {
            case KvpLexer.ID -> "name '" + t.getText() + "'";
            case KvpLexer.INT_LIT, KvpLexer.FLOAT_LIT -> "number " + t.getText();
            case KvpLexer.STRING -> "string " + t.getText();
            default -> "'" + t.getText() + "'";
        };
    }

    private static String printable(String s) {
        if (s == null || s.isEmpty()) return "?";
        int cp = s.codePointAt(0);
        if (cp < 0x20 || cp == 0x7f || Character.isISOControl(cp)) return String.format("U+%04X", cp);
        return "'" + s + "'";
    }
}
