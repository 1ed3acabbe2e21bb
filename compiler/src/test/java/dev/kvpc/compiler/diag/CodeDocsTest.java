package dev.kvpc.compiler.diag;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * docs/language.md's table of checks (section 16) is the {@link Code} enum, row for row: code, title and example, in
 * the enum's order. The enum is the one source (kvpc explain prints it); this keeps the document true to it.
 */
class CodeDocsTest {
    @Test
    void theTableOfChecksIsTheEnum() throws Exception {
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !Files.isRegularFile(p.resolve("docs/language.md"))) p = p.getParent();
        assertTrue(p != null, "docs/language.md above " + Path.of("").toAbsolutePath());
        String doc = Files.readString(p.resolve("docs/language.md"));
        String section = doc.substring(doc.indexOf("## 16. Checks"));
        List<String> rows = new ArrayList<>();
        Matcher m = Pattern.compile("(?m)^\\| ([EW]\\d{3}) \\| .*$").matcher(section);
        while (m.find()) rows.add(m.group());
        List<String> expected = new ArrayList<>();
        for (Code c : Code.values()) expected.add("| " + c.name() + " | " + c.title() + " | " + c.example() + " |");
        assertEquals(String.join("\n", expected), String.join("\n", rows));
    }
}
