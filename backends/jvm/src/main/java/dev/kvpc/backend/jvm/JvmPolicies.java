package dev.kvpc.backend.jvm;

import dev.kvpc.ir.PolicyIr;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.loop.LoopLowering;
import dev.kvpc.runtime.policy.CompiledLaneClass;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A specialised policy compiled to JVM classes: one {@link CompiledLaneClass} per lane class, named
 * {@code kvpc/gen/<policy>/L<class>}, defined in-process or written to a jar.
 */
public final class JvmPolicies {
    private final Specialized program;
    private final Map<String, byte[]> classFiles;

    private JvmPolicies(Specialized program, Map<String, byte[]> classFiles) {
        this.program = program;
        this.classFiles = classFiles;
    }

    /** Compiles every lane class of {@code program}; {@code source} is the {@code .kvp} file name for stack traces. */
    public static JvmPolicies compile(Specialized program, String source) {
        Map<String, byte[]> files = new LinkedHashMap<>();
        for (int c = 0; c < program.classes().size(); c++) {
            PolicyIr p = program.classes().get(c);
            files.put(laneClassName(program, c), PolicyCompiler.classFile(LoopLowering.lower(p), laneClassName(program, c), source));
        }
        return new JvmPolicies(program, files);
    }

    /** Internal name of lane class {@code c}'s compiled class. */
    public static String laneClassName(Specialized program, int c) {
        return "kvpc/gen/" + sanitize(program.root()) + "/L" + c;
    }

    static String sanitize(String name) {
        String s = name.replaceAll("[^A-Za-z0-9_]", "_");
        return s.isEmpty() || Character.isDigit(s.charAt(0)) ? "_" + s : s;
    }

    public Specialized program() {
        return program;
    }

    /** Class files by internal name, in lane-class order. */
    public Map<String, byte[]> classFiles() {
        return classFiles;
    }

    /** Defines the classes in a fresh loader and instantiates one per lane class. */
    public List<CompiledLaneClass> define() {
        Loader loader = new Loader(JvmPolicies.class.getClassLoader(), classFiles);
        List<CompiledLaneClass> out = new ArrayList<>();
        for (String name : classFiles.keySet()) {
            try {
                out.add((CompiledLaneClass) Class.forName(name.replace('/', '.'), true, loader).getDeclaredConstructor().newInstance());
            } catch (ReflectiveOperationException | LinkageError e) {
                throw new IllegalStateException("compiled policy class " + name + " could not be defined: " + e, e);
            }
        }
        return out;
    }

    private static final class Loader extends ClassLoader {
        private final Map<String, byte[]> files;

        Loader(ClassLoader parent, Map<String, byte[]> files) {
            super("kvpc-policy", parent);
            this.files = files;
        }

        @Override
        protected Class<?> findClass(String name) throws ClassNotFoundException {
            byte[] b = files.get(name.replace('.', '/'));
            if (b == null) throw new ClassNotFoundException(name);
            return defineClass(name, b, 0, b.length);
        }
    }
}
