package dev.kvpc.compiler.check;

import dev.kvpc.compiler.ast.Decl;
import dev.kvpc.compiler.ast.KvpFile;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A root file with everything it imports, parsed. {@code sources} maps each file's display name to its text (for
 * rendering diagnostics); {@code dirs} maps it to the folder its relative paths resolve against (null for bundled files).
 */
public record Program(KvpFile root, List<KvpFile> files, Map<String, String> sources, Map<String, Path> dirs) {
    public Program {
        files = List.copyOf(files);
        sources = Map.copyOf(sources);
        dirs = new LinkedHashMap<>(dirs);
    }

    /** All declarations visible from the root, in file order (root first). */
    public List<Decl> decls() {
        return files.stream().flatMap(f -> f.decls().stream()).toList();
    }
}
