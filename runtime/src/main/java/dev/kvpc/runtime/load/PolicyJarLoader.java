package dev.kvpc.runtime.load;

import java.net.MalformedURLException;
import java.net.URL;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Loads a compiled policy jar: reads it ({@link PolicyJar#read}), checks the manifest's model-shape constraints against
 * the host's model, verifies every class ({@link BytecodeVerifier}), then defines all of them in a fresh
 * {@link ClassLoader} that holds the jar's classes and delegates everything else to {@code parent}. Classes are
 * defined but not initialised: no policy code has run when {@link #load} returns.
 *
 * <p>Each step fails with a {@link PolicyLoadException} whose message is meant for the user, for instance
 * {@code "policy h2o needs kv-heads=8, this model has 4"} or {@code "refused: class gen/H2o, method onOverflow(I)V
 * calls java/lang/System.exit(I)V, which policy code may not call"}.
 */
public final class PolicyJarLoader {
    private PolicyJarLoader() {
    }

    /** {@link #load(Path, ModelShapeSpec, ClassLoader)} with the loader of the runtime itself as parent. */
    public static LoadedPolicy load(Path jar, ModelShapeSpec host) throws PolicyLoadException {
        return load(jar, host, PolicyJarLoader.class.getClassLoader());
    }

    /**
     * Loads a policy jar for a model of shape {@code host}; {@code parent} must see the runtime API (and is where the
     * verifier reads runtime and JDK class files from).
     */
    public static LoadedPolicy load(Path jar, ModelShapeSpec host, ClassLoader parent) throws PolicyLoadException {
        Objects.requireNonNull(jar, "jar");
        Objects.requireNonNull(host, "host");
        Objects.requireNonNull(parent, "parent");
        PolicyJar contents = PolicyJar.read(jar);
        contents.manifest().checkFits(host);
        new BytecodeVerifier(parent).verify(contents.classFiles());
        return define(contents, parent);
    }

    /** Defines every class of an already verified jar in a fresh loader under {@code parent}. */
    static LoadedPolicy define(PolicyJar contents, ClassLoader parent) throws PolicyLoadException {
        PolicyManifest manifest = contents.manifest();
        Map<String, byte[]> byBinaryName = new LinkedHashMap<>();
        contents.classFiles().forEach((internal, bytes) -> byBinaryName.put(internal.replace('/', '.'), bytes));
        URL location;
        try {
            location = contents.source().toUri().toURL();
        } catch (MalformedURLException | IllegalArgumentException | UnsupportedOperationException e) {
            location = null;
        }
        PolicyClassLoader loader = new PolicyClassLoader(manifest.policyName(), byBinaryName, parent, location);
        List<String> names = new ArrayList<>(byBinaryName.keySet());
        for (String name : names) {
            try {
                Class<?> c = Class.forName(name, false, loader);
                if (c.getClassLoader() != loader) {
                    throw new PolicyLoadException("policy " + manifest.policyName() + ": class " + name + " of the jar is shadowed by "
                            + "a class of the host");
                }
            } catch (ClassNotFoundException | LinkageError | SecurityException e) {
                throw new PolicyLoadException("policy " + manifest.policyName() + ": class " + name.replace('.', '/')
                        + " cannot be defined: " + e, e);
            }
        }
        Class<?> entry;
        try {
            entry = Class.forName(manifest.entryClass(), false, loader);
        } catch (ClassNotFoundException | LinkageError e) {
            throw new PolicyLoadException("policy " + manifest.policyName() + ": entry class " + manifest.entryClass() + " cannot be loaded: " + e, e);
        }
        return new LoadedPolicy(contents.source(), manifest, entry, names);
    }
}
