package dev.kvpc.runtime.load;

import java.security.CodeSigner;
import java.security.CodeSource;
import java.security.ProtectionDomain;
import java.util.Map;

/**
 * Defines the classes of one verified policy jar and nothing else: a name the jar holds is defined here, from the
 * jar's bytes (never looked up in the parent first); every other name is the parent's. Resources are the parent's
 * only. One loader per loaded jar, so two loads of the same jar give distinct classes.
 */
final class PolicyClassLoader extends ClassLoader {
    static {
        registerAsParallelCapable();
    }

    /** Class file bytes by binary name ({@code gen.H2o}). */
    private final Map<String, byte[]> classes;
    private final ProtectionDomain domain;

    PolicyClassLoader(String policyName, Map<String, byte[]> classesByBinaryName, ClassLoader parent, java.net.URL location) {
        super("kvpc-policy-" + policyName, parent);
        this.classes = Map.copyOf(classesByBinaryName);
        this.domain = new ProtectionDomain(new CodeSource(location, (CodeSigner[]) null), null, this, null);
    }

    boolean holds(String binaryName) {
        return classes.containsKey(binaryName);
    }

    @Override
    protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
        byte[] bytes = classes.get(name);
        if (bytes == null) return super.loadClass(name, resolve);
        synchronized (getClassLoadingLock(name)) {
            Class<?> c = findLoadedClass(name);
            if (c == null) c = defineClass(name, bytes, 0, bytes.length, domain);
            if (resolve) resolveClass(c);
            return c;
        }
    }

    @Override
    protected Class<?> findClass(String name) throws ClassNotFoundException {
        throw new ClassNotFoundException(name + " is neither in the policy jar nor visible to the host");
    }
}
