package dev.kvpc.compiler;

import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.diag.Code;
import dev.kvpc.compiler.diag.Diagnostic;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.*;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The negative corpus: each program carries {@code // error: CODE@COL} (or {@code warning}) on the line where a
 * diagnostic must start. The runner fails on a missing, extra or misplaced diagnostic. Run with
 * {@code -Dkvpc.bless=true} to add the columns the checker reports to annotations whose code and line match.
 */
class NegativeCorpusTest {
    /** Diagnostics of the whole corpus by file name, each corpus file checked as a root. */
    private static Map<String, List<Diagnostic>> diagnostics;

    private static synchronized Map<String, List<Diagnostic>> all() {
        if (diagnostics != null) return diagnostics;
        Map<String, List<Diagnostic>> byFile = new TreeMap<>();
        Set<String> seen = new HashSet<>();
        for (Path p : Corpus.negative()) {
            Frontend.Result r = Frontend.check(p, Corpus.model(p));
            for (Diagnostic d : r.diagnostics().all()) {
                String key = d.code() + "|" + d.span() + "|" + d.message();
                if (!seen.add(key)) continue;
                String name = Path.of(d.span().file()).getFileName().toString();
                byFile.computeIfAbsent(name, k -> new ArrayList<>()).add(d);
            }
        }
        diagnostics = byFile;
        return byFile;
    }

    @TestFactory
    Stream<DynamicTest> everyProgram() {
        return Corpus.negative().stream().map(p -> DynamicTest.dynamicTest(p.getFileName().toString(), () -> check(p)));
    }

    private static void check(Path p) throws IOException {
        List<Corpus.Expectation> want = Corpus.expectations(p);
        List<Diagnostic> got = all().getOrDefault(p.getFileName().toString(), List.of());
        if (Boolean.getBoolean("kvpc.bless")) bless(p, want, got);
        List<String> missing = new ArrayList<>(), extra = new ArrayList<>();
        List<Diagnostic> unmatched = new ArrayList<>(got);
        for (Corpus.Expectation e : want) {
            Diagnostic hit = null;
            for (Diagnostic d : unmatched) {
                if (d.code().name().equals(e.code()) && d.span().line() == e.line() && (e.col() == 0 || d.span().col() == e.col())) {
                    hit = d;
                    break;
                }
            }
            if (hit != null) unmatched.remove(hit);
            else missing.add(e.code() + " at line " + e.line() + (e.col() > 0 ? " col " + e.col() : ""));
        }
        for (Diagnostic d : unmatched) extra.add(d.code() + " at " + d.span().line() + ":" + d.span().col() + ": " + d.message());
        if (!missing.isEmpty() || !extra.isEmpty()) {
            fail(p.getFileName() + ":\n  expected but not reported: " + missing + "\n  reported but not expected: " + extra);
        }
        if (!Boolean.getBoolean("kvpc.bless")) {
            for (Corpus.Expectation e : want) {
                assertTrue(e.col() > 0, p.getFileName() + ": line " + e.line() + ": annotation without a column (run with -Dkvpc.bless=true)");
            }
        }
    }

    /** Adds @COL to annotations that lack one, from the diagnostic with the same code on that line. */
    private static void bless(Path p, List<Corpus.Expectation> want, List<Diagnostic> got) throws IOException {
        List<String> lines = new ArrayList<>(Corpus.lines(p));
        boolean changed = false;
        for (int i = 0; i < lines.size(); i++) {
            String l = lines.get(i);
            int at = l.lastIndexOf("// error:");
            if (at < 0) at = l.lastIndexOf("// warning:");
            if (at < 0) continue;
            int colon = l.indexOf(':', at + 3);
            String head = l.substring(0, colon + 1);
            List<Diagnostic> onLine = new ArrayList<>();
            for (Diagnostic d : got) if (d.span().line() == i + 1) onLine.add(d);
            StringBuilder sb = new StringBuilder(head);
            for (String item : l.substring(colon + 1).trim().split("\\s+")) {
                String code = item.split("@")[0];
                Diagnostic d = onLine.stream().filter(x -> x.code().name().equals(code)).findFirst().orElse(null);
                if (d != null) onLine.remove(d);
                sb.append(' ').append(d != null ? code + "@" + d.span().col() : item);
            }
            if (!sb.toString().equals(l)) {
                lines.set(i, sb.toString());
                changed = true;
            }
        }
        if (changed) Files.write(p, String.join("\n", lines).getBytes(StandardCharsets.ISO_8859_1));
    }

    @Test
    void coversEveryCode() {
        Set<String> covered = new TreeSet<>();
        for (Path p : Corpus.negative()) Corpus.expectations(p).forEach(e -> covered.add(e.code()));
        List<String> uncovered = Arrays.stream(Code.values()).map(Enum::name).filter(c -> !covered.contains(c)).toList();
        assertEquals(List.of(), uncovered, "codes without a negative program");
        assertTrue(Corpus.negative().size() >= 40, "at least 40 negative programs");
    }

    @Test
    void everyProgramExpectsSomething() {
        for (Path p : Corpus.negative()) {
            assertTrue(!Corpus.expectations(p).isEmpty(), p.getFileName() + " has no expectation");
        }
    }
}
