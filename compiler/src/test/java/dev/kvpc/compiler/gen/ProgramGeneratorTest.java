package dev.kvpc.compiler.gen;

import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.diag.Diagnostic;
import dev.kvpc.compiler.model.ModelShape;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/** The random program generator makes programs that check clean, deterministically, and that cover the language. */
class ProgramGeneratorTest {
    /** Seeds 0 to SEEDS - 1; {@code -Dkvpc.gen.seeds=N} (and {@code -Dkvpc.gen.from=S}) to stress more of them. */
    private static final int SEEDS = Integer.getInteger("kvpc.gen.seeds", 300);
    private static final long FROM = Long.getLong("kvpc.gen.from", 0L);

    /** Constructs that differential tests need exercised, each with the text that shows it in a program. */
    private static final Map<String, Pattern> CONSTRUCTS = new LinkedHashMap<>();

    static {
        CONSTRUCTS.put("overflow handler", Pattern.compile("\\bon overflow\\("));
        CONSTRUCTS.put("every", Pattern.compile("\\bevery \\S+ \\{"));
        CONSTRUCTS.put("merge", Pattern.compile("\\bmerge .* into "));
        CONSTRUCTS.put("store", Pattern.compile("\\bstore (keys|values)"));
        CONSTRUCTS.put("attend", Pattern.compile("\\battend "));
        CONSTRUCTS.put("if", Pattern.compile("(^|\\s)if .*\\{"));
        CONSTRUCTS.put("else", Pattern.compile("} else \\{"));
        CONSTRUCTS.put("observe", Pattern.compile("\\bobserve .* queries at prefill"));
        CONSTRUCTS.put("selection per layer", Pattern.compile("\\bselection per layer\\b"));
        CONSTRUCTS.put("per-page state", Pattern.compile("\\bstate \\w+: f32(\\[channel])? per page\\("));
        CONSTRUCTS.put("per-lane state", Pattern.compile("\\bper lane\\b"));
        CONSTRUCTS.put("maxpool", Pattern.compile("\\bmaxpool\\("));
        CONSTRUCTS.put("avgpool", Pattern.compile("\\bavgpool\\("));
        CONSTRUCTS.put("within", Pattern.compile("\\bwithin\\b"));
        CONSTRUCTS.put("bottom", Pattern.compile("\\bbottom\\("));
        CONSTRUCTS.put("where", Pattern.compile("\\bwhere\\("));
        CONSTRUCTS.put("intersection", Pattern.compile(" & "));
        CONSTRUCTS.put("compensation", Pattern.compile("\\bcompensation\\b"));
        CONSTRUCTS.put("on prefill", Pattern.compile("\\bon prefill \\{"));
        CONSTRUCTS.put("on prefill, decode", Pattern.compile("\\bon (prefill, decode|decode, prefill) \\{"));
        CONSTRUCTS.put("on chunk", Pattern.compile("\\bon [a-z, ]*chunk"));
        CONSTRUCTS.put("fn", Pattern.compile("(?m)^fn "));
        CONSTRUCTS.put("parameter range", Pattern.compile(": (int|float) in "));
        CONSTRUCTS.put("let", Pattern.compile("\\blet "));
        CONSTRUCTS.put("conditional", Pattern.compile(" \\? "));
        CONSTRUCTS.put("cast", Pattern.compile("\\b(int|float)\\("));
        CONSTRUCTS.put("quantised store with residual", Pattern.compile("as int(2|4|\\(\\w+\\)).* except .*last\\("));
        CONSTRUCTS.put("per head at least", Pattern.compile("per head at least"));
        CONSTRUCTS.put("cosine merge", Pattern.compile("by cosine\\("));
        CONSTRUCTS.put("weighted merge", Pattern.compile("weighted by "));
        CONSTRUCTS.put("+=", Pattern.compile(" \\+= "));
        CONSTRUCTS.put("-=", Pattern.compile(" -= "));
        CONSTRUCTS.put("*=", Pattern.compile(" \\*= "));
        CONSTRUCTS.put("elementwise functions", Pattern.compile("\\b(abs|exp|log|sqrt|tanh)\\("));
        CONSTRUCTS.put("norm", Pattern.compile("\\bnorm\\("));
        CONSTRUCTS.put("quantile", Pattern.compile("\\bquantile\\("));
        CONSTRUCTS.put("table", Pattern.compile("\\btable\\("));
        CONSTRUCTS.put("table[channel]", Pattern.compile("\\btable\\[channel\\]\\("));
        CONSTRUCTS.put("quantile over", Pattern.compile("\\bquantile\\([^;]*, over: channel\\)"));
    }

    @Test
    void everyGeneratedProgramChecksWithoutDiagnostics() {
        List<String> failures = new ArrayList<>();
        for (long seed = FROM; seed < FROM + SEEDS; seed++) {
            String text = ProgramGenerator.generate(seed);
            String name = "gen_" + seed + ".kvp";
            Frontend.Result r;
            try {
                r = Frontend.checkText(name, text, ProgramGenerator.tables(ModelShape.REFERENCE), ModelShape.REFERENCE);
            } catch (RuntimeException e) {
                failures.add("seed " + seed + ": the checker threw " + e + "\n" + numbered(text));
                continue;
            }
            List<Diagnostic> ds = r.diagnostics().all();
            if (!ds.isEmpty() || !r.ok()) {
                StringBuilder sb = new StringBuilder("seed " + seed + ":\n" + numbered(text));
                for (Diagnostic d : ds) sb.append(r.renderer().render(d));
                failures.add(sb.toString());
            }
        }
        assertTrue(failures.isEmpty(), failures.size() + " of " + SEEDS + " generated programs have diagnostics; the first ones:\n\n"
                + String.join("\n", failures.subList(0, Math.min(5, failures.size()))));
    }

    @Test
    void programsAreDeterministicSmallAndNamedAfterTheSeed() {
        for (long seed = 0; seed < SEEDS; seed++) {
            String text = ProgramGenerator.generate(seed);
            assertEquals(text, ProgramGenerator.generate(seed), "seed " + seed + " is not deterministic");
            long lines = text.lines().count();
            assertTrue(lines >= 5 && lines <= 40, "seed " + seed + ": " + lines + " lines\n" + text);
            assertTrue(text.contains("policy gen_" + seed + " ") || text.contains("policy gen_" + seed + "("), text);
        }
    }

    @Test
    void programsCoverTheLanguage() {
        Map<String, Integer> counts = new LinkedHashMap<>();
        CONSTRUCTS.keySet().forEach(k -> counts.put(k, 0));
        for (long seed = 0; seed < SEEDS; seed++) {
            String text = ProgramGenerator.generate(seed);
            CONSTRUCTS.forEach((k, p) -> {
                if (p.matcher(text).find()) counts.merge(k, 1, Integer::sum);
            });
        }
        List<String> rare = new ArrayList<>();
        counts.forEach((k, n) -> {
            if (n < 5) rare.add(k + " (" + n + ")");
        });
        assertTrue(rare.isEmpty(), "constructs in fewer than 5 of " + SEEDS + " programs: " + rare + "\nall counts: " + counts);
    }

    private static String numbered(String text) {
        StringBuilder sb = new StringBuilder();
        String[] lines = text.split("\n", -1);
        for (int i = 0; i < lines.length; i++) sb.append(String.format("%3d | %s%n", i + 1, lines[i]));
        return sb.toString();
    }
}
