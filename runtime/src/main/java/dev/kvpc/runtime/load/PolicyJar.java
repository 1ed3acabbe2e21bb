package dev.kvpc.runtime.load;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.Enumeration;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;

/**
 * The contents of a compiled policy jar, read and checked for shape but not yet verified or loaded: its manifest
 * ({@value PolicyManifest#PATH}) and its class files by internal name ({@code gen/H2o}). Other entries (a JAR
 * {@code MANIFEST.MF}, resources) are ignored. Class files under {@code META-INF/} (multi-release jars) and module
 * descriptors are refused.
 *
 * @param source     the jar file
 * @param manifest   its policy manifest
 * @param classFiles class file bytes by internal name, in name order; the arrays must not be modified
 */
public record PolicyJar(Path source, PolicyManifest manifest, Map<String, byte[]> classFiles) {

    /** At most this many entries... */
    static final int MAX_ENTRIES = 10_000;
    /** ...and this many bytes uncompressed, in all: a policy jar is a few classes. */
    static final long MAX_BYTES = 64L * 1024 * 1024;

    public PolicyJar {
        classFiles = Collections.unmodifiableMap(new TreeMap<>(classFiles));
    }

    /**
     * Reads a policy jar. Every problem (no such file, not a zip, truncated, an entry that cannot be inflated, no or a
     * bad manifest, an entry class that is not in the jar) is a {@link PolicyLoadException} that names the jar.
     */
    public static PolicyJar read(Path jar) throws PolicyLoadException {
        if (!Files.exists(jar)) throw new PolicyLoadException("policy jar " + jar + " does not exist");
        if (!Files.isRegularFile(jar)) throw new PolicyLoadException("policy jar " + jar + " is not a file");
        Path local = jar;
        try {
            if (jar.getFileSystem() != FileSystems.getDefault()) { // ZipFile reads only default-filesystem files
                local = Files.createTempFile("kvpc-policy", ".jar");
                Files.copy(jar, local, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            }
            return readLocal(jar, local);
        } catch (IOException e) {
            throw new PolicyLoadException("cannot read policy jar " + jar + ": " + message(e), e);
        } finally {
            if (local != jar) {
                try {
                    Files.deleteIfExists(local);
                } catch (IOException ignored) {
                    // a temporary copy left behind is harmless
                }
            }
        }
    }

    private static PolicyJar readLocal(Path jar, Path file) throws PolicyLoadException, IOException {
        Map<String, byte[]> classes = new TreeMap<>();
        byte[] manifestBytes = null;
        ZipFile zip;
        try {
            zip = new ZipFile(file.toFile());
        } catch (ZipException | java.io.EOFException e) {
            throw notAJar(jar, e);
        } catch (NoSuchFileException e) {
            throw new PolicyLoadException("policy jar " + jar + " does not exist");
        }
        try (zip) {
            long total = 0;
            int count = 0;
            Set<String> names = new HashSet<>();
            for (Enumeration<? extends ZipEntry> en = zip.entries(); en.hasMoreElements(); ) {
                ZipEntry e = en.nextElement();
                String name = e.getName();
                if (++count > MAX_ENTRIES) throw new PolicyLoadException(jar + " has more than " + MAX_ENTRIES + " entries; not a policy jar");
                if (!names.add(name)) throw new PolicyLoadException(jar + " has entry " + PolicyManifest.shorten(name) + " twice");
                if (e.isDirectory()) continue;
                boolean isClass = name.endsWith(".class");
                if (!isClass && !name.equals(PolicyManifest.PATH)) continue;
                if (isClass && name.startsWith("META-INF/")) {
                    throw new PolicyLoadException(jar + ": " + PolicyManifest.shorten(name)
                            + ": classes under META-INF/ are not loaded (multi-release policy jars are not supported)");
                }
                if (isClass && (name.equals("module-info.class") || name.endsWith("/module-info.class"))) {
                    throw new PolicyLoadException(jar + ": " + name + ": a policy jar may not hold a module descriptor");
                }
                byte[] bytes;
                try (InputStream in = zip.getInputStream(e)) {
                    bytes = readBounded(in, MAX_BYTES - total, jar);
                } catch (ZipException | java.io.EOFException ex) {
                    throw new PolicyLoadException(jar + " is corrupt: entry " + PolicyManifest.shorten(name) + " cannot be read ("
                            + message(ex) + ")", ex);
                }
                total += bytes.length;
                if (isClass) {
                    String internal = name.substring(0, name.length() - ".class".length());
                    if (internal.isEmpty() || internal.startsWith("/") || internal.contains("//")) {
                        throw new PolicyLoadException(jar + ": " + PolicyManifest.shorten(name) + " is not a class file name");
                    }
                    classes.put(internal, bytes);
                } else {
                    manifestBytes = bytes;
                }
            }
        } catch (ZipException | java.io.EOFException e) {
            throw notAJar(jar, e);
        } catch (RuntimeException e) { // ZipFile reports some damage (bad names, bad headers) unchecked
            throw new PolicyLoadException(jar + " is not a readable jar (corrupt: " + message(e) + ")", e);
        }
        if (manifestBytes == null) {
            throw new PolicyLoadException(jar + " is not a compiled kvpc policy: it has no " + PolicyManifest.PATH);
        }
        PolicyManifest manifest;
        try {
            manifest = PolicyManifest.parse(manifestBytes);
        } catch (PolicyLoadException e) {
            throw new PolicyLoadException(jar + ": " + e.getMessage(), e);
        }
        if (!classes.containsKey(manifest.entryInternalName())) {
            throw new PolicyLoadException(jar + ": entry class " + manifest.entryClass() + " (key " + PolicyManifest.KEY_ENTRY_CLASS
                    + ") is not in the jar (no " + manifest.entryInternalName() + ".class)");
        }
        return new PolicyJar(jar, manifest, classes);
    }

    private static byte[] readBounded(InputStream in, long limit, Path jar) throws IOException, PolicyLoadException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[16384];
        for (int n; (n = in.read(buf)) > 0; ) {
            if (out.size() + (long) n > limit) {
                throw new PolicyLoadException(jar + " holds more than " + MAX_BYTES / (1024 * 1024) + " MiB uncompressed; not a policy jar");
            }
            out.write(buf, 0, n);
        }
        return out.toByteArray();
    }

    private static PolicyLoadException notAJar(Path jar, IOException e) {
        return new PolicyLoadException(jar + " is not a readable jar (truncated or corrupt: " + message(e) + ")", e);
    }

    private static String message(Exception e) {
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }
}
