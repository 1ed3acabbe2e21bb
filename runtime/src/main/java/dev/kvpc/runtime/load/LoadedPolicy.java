package dev.kvpc.runtime.load;

import java.nio.file.Path;
import java.util.List;
import java.util.Objects;

/**
 * A policy jar that passed every check: its manifest and its entry class, defined (not yet initialised) in a class
 * loader of its own that holds the jar's classes and delegates everything else to the host's loader.
 *
 * @param jar        the jar it came from
 * @param manifest   the jar's manifest
 * @param entryClass the class {@link PolicyManifest#entryClass()} names
 * @param classNames binary names of every class of the jar, all defined, in name order
 */
public record LoadedPolicy(Path jar, PolicyManifest manifest, Class<?> entryClass, List<String> classNames) {

    public LoadedPolicy {
        Objects.requireNonNull(manifest, "manifest");
        Objects.requireNonNull(entryClass, "entryClass");
        classNames = List.copyOf(classNames);
    }

    /** The loader that defined the jar's classes. */
    public ClassLoader classLoader() {
        return entryClass.getClassLoader();
    }

    /** The entry class as a subtype of the API type the host expects, or a message saying it is not one. */
    public <T> Class<? extends T> entryClassAs(Class<T> api) throws PolicyLoadException {
        if (!api.isAssignableFrom(entryClass)) {
            throw new PolicyLoadException("policy " + manifest.policyName() + ": entry class " + entryClass.getName() + " is not a "
                    + api.getName());
        }
        return entryClass.asSubclass(api);
    }
}
