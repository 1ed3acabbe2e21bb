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

    /** The root file's last policy or config: what a command compiles when none is named; null if it has none. */
    public String defaultRoot() {
        List<Decl> ds = root.decls();
        for (int i = ds.size() - 1; i >= 0; i--) {
            if (ds.get(i) instanceof Decl.Policy || ds.get(i) instanceof Decl.Config) return ds.get(i).name().text();
        }
        return null;
    }
}
