package dev.kvpc.compiler.lower;

import dev.kvpc.compiler.Corpus;
import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.ir.IrParser;
import dev.kvpc.ir.IrPrinter;
import dev.kvpc.ir.PolicyIr;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.loop.Loop;
import dev.kvpc.ir.loop.LoopLowering;
import dev.kvpc.ir.loop.LoopText;
import dev.kvpc.ir.pass.Pipeline;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.*;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Golden tensor-IR and loop-IR dumps of every stdlib policy, optimised for the reference shape. A mismatch fails
 * with a unified diff; {@code -Dkvpc.bless=true} rewrites the expectations; an expectation without a program fails.
 * Each dump also round-trips through its parser.
 */
class GoldenIrTest {
    static Path dir() {
        return Corpus.root().resolve("compiler/src/test/resources/golden");
    }

    /** name -> (tensor dump, loop dump) for every stdlib file that declares a policy or config. */
    static Map<String, String[]> dumps() {
        Map<String, String[]> out = new TreeMap<>();
        for (Path p : Corpus.stdlib()) {
            Frontend.Result r = Frontend.check(p, ModelShape.REFERENCE);
            assertTrue(r.ok(), p + " does not check");
            String root = Compilation.defaultRoot(r.program());
            if (root == null) continue;
            Specialized s = Compilation.optimise(r.program(), root, Map.of(), Pipeline.Options.DEFAULT, (a, b) -> { });
            StringBuilder loops = new StringBuilder();
            for (int i = 0; i < s.classes().size(); i++) {
                Loop.Program lp = LoopLowering.lower(s.classes().get(i));
                String text = LoopText.print(lp);
                assertEquals(text, LoopText.print(LoopText.parse(text)), "loop IR text of " + root + " class " + i + " does not round-trip");
                assertEquals(lp, LoopText.parse(text), "loop IR of " + root + " class " + i + " parses to something else");
                loops.append("// class ").append(i).append('\n').append(text);
            }
            for (PolicyIr c : s.classes()) {
                String text = IrPrinter.print(c);
                assertEquals(text, IrPrinter.print(IrParser.parse(text)), "tensor IR of a class of " + root + " does not round-trip");
            }
            String name = p.getFileName().toString().replace(".kvp", "");
            out.put(name, new String[] {s.print(), loops.toString()});
        }
        return out;
    }

    @TestFactory
    Stream<DynamicTest> goldenDumps() {
        boolean bless = Boolean.getBoolean("kvpc.bless");
        List<DynamicTest> tests = new ArrayList<>();
        for (var e : dumps().entrySet()) {
            String[] levels = {"tensor", "loop"};
            for (int i = 0; i < 2; i++) {
                Path f = dir().resolve(e.getKey() + "." + levels[i] + ".ir");
                String got = e.getValue()[i];
                tests.add(DynamicTest.dynamicTest(f.getFileName().toString(), () -> {
                    if (bless) Files.writeString(f, got);
                    assertTrue(Files.exists(f), f.getFileName() + " is missing (run with -Dkvpc.bless=true)");
                    String want = Files.readString(f);
                    if (!want.equals(got)) fail(f.getFileName() + " differs from the compiler's output:\n" + unifiedDiff(want, got));
                }));
            }
        }
        return tests.stream();
    }

    @Test
    void noExpectationWithoutAProgram() throws IOException {
        Set<String> programs = dumps().keySet();
        try (Stream<Path> s = Files.list(dir())) {
            for (Path f : s.toList()) {
                String n = f.getFileName().toString();
                String base = n.replaceAll("\\.(tensor|loop)\\.ir$", "");
                assertTrue(programs.contains(base), f + " has no program in stdlib-policies/");
            }
        }
    }

    /** A unified diff (LCS-based) of two texts, with 2 lines of context. */
    static String unifiedDiff(String a, String b) {
        String[] x = a.split("\n", -1), y = b.split("\n", -1);
        int[][] lcs = new int[x.length + 1][y.length + 1];
        for (int i = x.length - 1; i >= 0; i--) {
            for (int j = y.length - 1; j >= 0; j--) lcs[i][j] = x[i].equals(y[j]) ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
        }
        List<String> ops = new ArrayList<>();
        int i = 0, j = 0;
        while (i < x.length || j < y.length) {
            if (i < x.length && j < y.length && x[i].equals(y[j])) {
                ops.add("  " + x[i]);
                i++;
                j++;
            } else if (j < y.length && (i == x.length || lcs[i][j + 1] >= lcs[i + 1][j])) {
                ops.add("+ " + y[j++]);
            } else {
                ops.add("- " + x[i++]);
            }
        }
        StringBuilder sb = new StringBuilder("--- expected\n+++ actual\n");
        int last = -10;
        for (int k = 0; k < ops.size(); k++) {
            if (ops.get(k).startsWith("  ")) continue;
            for (int c = Math.max(last + 1, k - 2); c <= Math.min(ops.size() - 1, k + 2); c++) {
                if (c > last) sb.append(ops.get(c)).append('\n');
                last = c;
            }
        }
        return sb.toString();
    }
}
