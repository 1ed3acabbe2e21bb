package dev.kvpc.compiler.check;

import dev.kvpc.compiler.ast.KvpFile;
import dev.kvpc.compiler.ast.Span;
import dev.kvpc.compiler.diag.Code;
import dev.kvpc.compiler.diag.Diagnostics;
import dev.kvpc.compiler.parse.KvpParsing;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads a KVP file and, transitively, what it imports. An import resolves relative to the importing file, then
 * to the standard library bundled with kvpc (classpath folder {@code kvpc/stdlib}).
 */
public final class Loader {
    public static final String STDLIB_RESOURCE = "kvpc/stdlib/";
    public static final String STDLIB_PREFIX = "<stdlib>/";

    private final Diagnostics diags;
    private final Map<String, String> sources = new LinkedHashMap<>();
    private final Map<String, Path> dirs = new HashMap<>();
    private final Map<String, KvpFile> parsed = new LinkedHashMap<>();
    private final Deque<String> loading = new ArrayDeque<>();

    public Loader(Diagnostics diags) {
        this.diags = diags;
    }

    /** The texts of every file this loader read, by display name, for rendering diagnostics. */
    public Map<String, String> sources() {
        return Map.copyOf(sources);
    }

    /** Loads {@code path}; returns null when the root itself could not be read or parsed. */
    public Program load(Path path) {
        String name = displayName(path);
        String text;
        try {
            text = utf8(Files.readAllBytes(path), name);
        } catch (NotUtf8 e) {
            diags.error(Code.E012, new Span(name, e.line, e.column, e.line, e.column, 0, 0), e.getMessage());
            return null;
        } catch (IOException | RuntimeException e) {
            diags.error(Code.E012, new Span(name, 1, 1, 1, 1, 0, 0), "cannot read " + name + ": " + reason(e));
            return null;
        }
        return loadText(name, text, path.toAbsolutePath().getParent());
    }

    /** Loads source text given directly, as if read from {@code name} in folder {@code dir} (null: no folder). */
    public Program loadText(String name, String text, Path dir) {
        KvpFile root = parseFile(name, text, dir);
        if (root == null) return null;
        List<KvpFile> files = new ArrayList<>(parsed.values());
        return new Program(root, files, sources, dirs);
    }

    private KvpFile parseFile(String name, String text, Path dir) {
        if (parsed.containsKey(name)) return parsed.get(name);
        sources.put(name, text);
        dirs.put(name, dir);
        KvpFile file = KvpParsing.parse(name, text, diags);
        if (file == null) return null;
        parsed.put(name, file);
        loading.push(name);
        for (KvpFile.Import imp : file.imports()) resolveImport(imp, dir);
        loading.pop();
        return file;
    }

    private void resolveImport(KvpFile.Import imp, Path dir) {
        String target = imp.path();
        if (target.isBlank()) {
            diags.error(Code.E010, imp.span(), "an import names a file: write the path of a .kvp file, relative to this one");
            return;
        }
        if (dir != null) {
            Path p = dir.resolve(target).normalize();
            if (Files.isRegularFile(p)) {
                String name = displayName(p);
                if (checkCycle(imp, name)) return;
                try {
                    parseFile(name, utf8(Files.readAllBytes(p), name), p.toAbsolutePath().getParent());
                } catch (NotUtf8 e) {
                    diags.error(Code.E010, imp.span(), "cannot read imported file " + target + ": " + e.getMessage());
                } catch (IOException | RuntimeException e) {
                    diags.error(Code.E010, imp.span(), "cannot read imported file " + target + ": " + reason(e));
                }
                return;
            }
        }
        String fileName = Path.of(target).getFileName() == null ? target : Path.of(target).getFileName().toString();
        String bundled = readBundled(fileName);
        if (bundled != null) {
            String name = STDLIB_PREFIX + fileName;
            if (checkCycle(imp, name)) return;
            parseFile(name, bundled, null);
            return;
        }
        diags.error(Code.E010, imp.span(), "imported file '" + target + "' not found next to this file nor in the standard library");
    }

    private boolean checkCycle(KvpFile.Import imp, String name) {
        if (loading.contains(name)) {
            diags.error(Code.E011, imp.span(), "import cycle: " + name + " imports itself through " + String.join(" <- ", loading));
            return true;
        }
        return false;
    }

    /** Names a file as the user would: relative to the working folder when it is below it. */
    static String displayName(Path p) {
        Path abs = p.toAbsolutePath().normalize();
        Path cwd = Path.of("").toAbsolutePath();
        return abs.startsWith(cwd) ? cwd.relativize(abs).toString() : abs.toString();
    }

    /** The text of a bundled standard-library file, or null. */
    public static String readBundled(String fileName) {
        // a file of the standard library (a policy or a table) by its name: not a folder, not a path (a folder's
        // resource reads as the list of its files)
        if (fileName.isBlank() || fileName.equals(".") || fileName.equals("..") || fileName.contains("/") || fileName.contains("\\")) return null;
        try (InputStream in = Loader.class.getClassLoader().getResourceAsStream(STDLIB_RESOURCE + fileName)) {
            return in == null ? null : new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return null;
        }
    }

    /** A source file that is not UTF-8 text: where its first undecodable byte is. */
    static final class NotUtf8 extends Exception {
        final int line, column;

        NotUtf8(String message, int line, int column) {
            super(message);
            this.line = line;
            this.column = column;
        }
    }

    /** {@code bytes} as UTF-8 text, or the line and column of the first byte that is not UTF-8. */
    static String utf8(byte[] bytes, String name) throws NotUtf8 {
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length + 1);
        CoderResult r = decoder.decode(in, out, true);
        if (r.isError()) {
            int at = in.position(), lineStart = 0, line = 1;
            for (int i = 0; i < at; i++) {
                if (bytes[i] == '\n') {
                    line++;
                    lineStart = i + 1;
                }
            }
            // the column counts characters: the line's bytes before the bad one are valid UTF-8
            int column = new String(bytes, lineStart, at - lineStart, StandardCharsets.UTF_8).length() + 1;
            throw new NotUtf8(String.format("%s is not UTF-8 text: byte 0x%02X at line %d, column %d (save the file as UTF-8)", name, bytes[at] & 0xFF, line, column),
                    line, column);
        }
        decoder.flush(out);
        return out.flip().toString();
    }

    private static String reason(Exception e) {
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }
}
