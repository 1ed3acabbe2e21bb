package dev.kvpc.runtime.load;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/**
 * The version of this kvpc, as the build wrote it: what {@code kvpc compile} puts in a jar's {@code compiler.version},
 * and the version a loaded jar must name. A jar carries its program as IR text, whose form may change between versions,
 * so a jar compiled by another version is refused with a request to recompile it.
 */
public final class KvpcVersion {
    private KvpcVersion() {
    }

    private static final String CURRENT = read();

    private static String read() {
        try (InputStream in = KvpcVersion.class.getResourceAsStream("kvpc.version")) {
            if (in == null) throw new IllegalStateException("kvpc.version is missing from the runtime's resources");
            String v = new String(in.readAllBytes(), StandardCharsets.UTF_8).strip();
            if (!v.matches("[A-Za-z0-9._+-]{1,64}")) throw new IllegalStateException("kvpc.version holds '" + v + "', not a version");
            return v;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** This kvpc's version, e.g. {@code 0.1.0-SNAPSHOT}. */
    public static String current() {
        return CURRENT;
    }
}
