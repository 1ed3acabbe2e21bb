package dev.kvpc.cli;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Mutates every stdlib program many times (token deletions, duplications, swaps, replacements, truncations,
 * random bytes) and runs `kvpc check` on each mutant: it must end with diagnostics (exit 0 or 65), never an
 * internal error (70) or an exception. Each mutant is also formatted; one that checks is also lowered, optimised
 * (`kvpc ir`, both levels), measured (`kvpc memory`) and run on a small trace (`kvpc trace`). Seeds are fixed.
 */
class MutationRobustnessTest {
    private static final int MUTANTS_PER_PROGRAM = Integer.getInteger("kvpc.mutants", 150);
    private static final Pattern TOKEN = Pattern.compile("[A-Za-z_][A-Za-z_0-9]*|\\d+(?:\\.\\d+)?|\"[^\"\\n]*\"|//[^\\n]*|\\.\\.|[-+*/%<>=!&|]=?|\\S");
    private static final String[] REPLACEMENTS = {"keep", "evict", "{", "}", "(", ")", ",", "0", "-1", "1.5", "len", "attn",
            "over:", "top", "all", "..", "=", "+=", "\"x.tsv\"", "policy", "on", "overflow", "per", "layer", "head", ";", "?", ":"};

    @TempDir
    Path tmp;

    @TestFactory
    Stream<DynamicTest> mutantsNeverCrashTheCompiler() throws Exception {
        List<Path> programs;
        try (Stream<Path> s = Files.list(CliRunner.root().resolve("stdlib-policies"))) {
            programs = s.filter(p -> p.toString().endsWith(".kvp")).sorted().toList();
        }
        return programs.stream().map(p -> DynamicTest.dynamicTest(p.getFileName().toString(), () -> mutate(p)));
    }

    private void mutate(Path program) throws Exception {
        String src = Files.readString(program);
        List<int[]> tokens = new ArrayList<>();
        Matcher m = TOKEN.matcher(src);
        while (m.find()) tokens.add(new int[] {m.start(), m.end()});
        Random rnd = new Random(program.getFileName().toString().hashCode());
        Path dir = tmp.resolve(program.getFileName().toString().replace(".kvp", ""));
        Files.createDirectories(dir);
        // tables and imports resolve beside the mutant as beside the original
        try (Stream<Path> s = Files.list(program.getParent())) {
            for (Path other : s.filter(x -> x.toString().endsWith(".kvp") || x.toString().endsWith(".tsv")).toList()) {
                Files.copy(other, dir.resolve(other.getFileName()));
            }
        }
        Path target = dir.resolve("mutant_" + program.getFileName());
        int rejected = 0;
        for (int i = 0; i < MUTANTS_PER_PROGRAM; i++) {
            byte[] mutant = mutant(src, tokens, rnd);
            Files.write(target, mutant);
            for (String cmd : new String[] {"check", "fmt"}) {
                CliRunner r = CliRunner.run(cmd, target.toString());
                boolean ok = r.code() == 0 || r.code() == 65;
                assertTrue(ok && !r.err().contains("Exception"), "kvpc " + cmd + " ended with " + r.code() + " on mutant " + i + " of "
                        + program.getFileName() + ":\n" + new String(mutant, StandardCharsets.UTF_8) + "\n---\n" + r.err());
                if (cmd.equals("check") && r.code() == 65) rejected++;
                if (cmd.equals("check") && r.code() == 0) {
                    // a mutant that checks must also lower, optimise and run: never an internal error
                    for (String[] more : new String[][] {{"ir", target.toString()}, {"ir", "--level", "loop", target.toString()},
                            {"memory", target.toString(), "--context", "100"},
                            {"trace", target.toString(), "--trace", "random:seed=" + i + ",prefill=12,decode=3", "--lanes", "1"}}) {
                        CliRunner x = CliRunner.run(more);
                        // 64: a parameter without default needs --param (a usage error, with a message)
                        assertTrue((x.code() == 0 || x.code() == 64 || x.code() == 65) && !x.err().contains("Exception"), "kvpc " + more[0] + " ended with " + x.code()
                                + " on mutant " + i + " of " + program.getFileName() + ":\n" + new String(mutant, StandardCharsets.UTF_8) + "\n---\n" + x.err());
                    }
                }
            }
        }
        // the mutations must actually break programs, or this test would prove nothing
        assertTrue(rejected > MUTANTS_PER_PROGRAM / 3, "only " + rejected + " of " + MUTANTS_PER_PROGRAM + " mutants were rejected");
    }

    private static byte[] mutant(String src, List<int[]> tokens, Random rnd) {
        StringBuilder sb = new StringBuilder(src);
        int edits = 1 + rnd.nextInt(3);
        for (int e = 0; e < edits; e++) {
            int kind = rnd.nextInt(6);
            int[] t = tokens.get(rnd.nextInt(tokens.size()));
            if (t[1] > sb.length()) continue;
            switch (kind) {
                case 0 -> sb.delete(t[0], t[1]);
                case 1 -> sb.insert(t[0], sb.substring(t[0], t[1]) + " ");
                case 2 -> {
                    int[] u = tokens.get(rnd.nextInt(tokens.size()));
                    if (u[1] > sb.length() || u[0] == t[0]) continue;
                    int[] a = t[0] < u[0] ? t : u, b = t[0] < u[0] ? u : t;
                    if (a[1] > b[0]) continue;
                    String ta = sb.substring(a[0], a[1]), tb = sb.substring(b[0], b[1]);
                    sb.replace(b[0], b[1], ta);
                    sb.replace(a[0], a[1], tb);
                }
                case 3 -> sb.replace(t[0], t[1], REPLACEMENTS[rnd.nextInt(REPLACEMENTS.length)]);
                case 4 -> sb.setLength(rnd.nextInt(sb.length() + 1));
                default -> {
                    int at = rnd.nextInt(sb.length() + 1);
                    sb.insert(at, (char) rnd.nextInt(256));
                }
            }
            if (sb.isEmpty()) break;
        }
        byte[] bytes = sb.toString().getBytes(StandardCharsets.UTF_8);
        if (rnd.nextInt(10) == 0 && bytes.length > 0) bytes[rnd.nextInt(bytes.length)] = (byte) rnd.nextInt(256);
        return bytes;
    }
}
