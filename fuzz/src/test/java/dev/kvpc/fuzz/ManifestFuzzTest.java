package dev.kvpc.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.kvpc.runtime.load.PolicyLoadException;
import dev.kvpc.runtime.load.PolicyManifest;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The policy manifest reader: any bytes are a manifest or a {@link PolicyLoadException}; what it reads, it writes back the same. */
class ManifestFuzzTest {
    @FuzzTest(maxDuration = "30s")
    void parse(byte[] input) throws PolicyLoadException {
        PolicyManifest m;
        try {
            m = PolicyManifest.parse(input);
        } catch (PolicyLoadException e) {
            return;
        }
        assertEquals(m, PolicyManifest.parse(m.toBytes()), "a manifest read back from its own text differs");
    }
}
