package dev.kvpc.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.kvpc.runtime.load.BytecodeVerifier;
import dev.kvpc.runtime.load.PolicyLoadException;

import java.util.Map;

/** The policy-jar verifier on any class file bytes: it accepts or refuses with a {@link PolicyLoadException}, nothing else. */
class BytecodeVerifierFuzzTest {
    private static final BytecodeVerifier VERIFIER = new BytecodeVerifier(BytecodeVerifierFuzzTest.class.getClassLoader());

    /** The name the class file gives itself, where it is readable that far (the verifier refuses a file under another name). */
    static String name(byte[] classFile) {
        try {
            String name = new org.objectweb.asm.ClassReader(classFile).getClassName();
            if (name != null) return name;
        } catch (RuntimeException e) {
            // unreadable: any name will do
        }
        return "kvpc/gen/fuzz/Policy";
    }

    @FuzzTest(maxDuration = "30s")
    void verify(byte[] input) {
        try {
            VERIFIER.verify(Map.of(name(input), input));
        } catch (PolicyLoadException e) {
            // refused, with a message
        }
    }
}
