package dev.kvpc.compiler;

import dev.kvpc.compiler.model.ModelShape;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/** Locates the test corpora and reads their inline expectations. */
public final class Corpus {
    private Corpus() {}

    /** The repository root (the folder with the top pom and stdlib-policies/). */
    public static Path root() {
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !Files.isDirectory(p.resolve("stdlib-policies"))) p = p.getParent();
        if (p == null) throw new IllegalStateException("cannot find the repository root from " + Path.of("").toAbsolutePath());
        return p;
    }

    public static List<Path> stdlib() {
        return kvpFiles(root().resolve("stdlib-policies"));
    }

    public static Path negativeDir() {
        return root().resolve("compiler/src/test/resources/negative");
    }

    public static List<Path> negative() {
        return kvpFiles(negativeDir());
    }

    public static List<Path> kvpFiles(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.toString().endsWith(".kvp")).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** One expected diagnostic: its code, 1-based line, and column (0 when the annotation gives none). */
    public record Expectation(String code, int line, int col) {}

    private static final Pattern ANNOTATION = Pattern.compile("//\\s*(error|warning):\\s*((?:[EW]\\d{3}(?:@\\d+)?\\s*)+)\\s*$");
    private static final Pattern MODEL = Pattern.compile("^//\\s*model:\\s*(.+)$");

    public static List<Expectation> expectations(Path file) {
        List<Expectation> out = new ArrayList<>();
        List<String> lines = lines(file);
        for (int i = 0; i < lines.size(); i++) {
            Matcher m = ANNOTATION.matcher(lines.get(i));
            if (!m.find()) continue;
            for (String item : m.group(2).trim().split("\\s+")) {
                String[] parts = item.split("@");
                out.add(new Expectation(parts[0], i + 1, parts.length > 1 ? Integer.parseInt(parts[1]) : 0));
            }
        }
        return out;
    }

    /** The model a corpus file asks for on a {@code // model: layers=.. heads=..} line, else the reference. */
    public static ModelShape model(Path file) {
        for (String l : lines(file)) {
            Matcher m = MODEL.matcher(l.strip());
            if (m.matches()) return ModelShape.parse(m.group(1).trim());
        }
        return ModelShape.REFERENCE;
    }

    public static List<String> lines(Path file) {
        try {
            return List.of(new String(Files.readAllBytes(file), StandardCharsets.ISO_8859_1).split("\n", -1));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
