package dev.kvpc.runtime.load;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * What a compiled policy jar says about itself, stored in the jar as {@value #PATH}.
 *
 * <p>The file is a strict subset of the {@code .properties} format: UTF-8, one {@code key=value} per line ({@code :}
 * also separates), {@code #} or {@code !} comment lines, backslash escapes; no line continuations, no key given
 * twice, no key the format does not define. The keys (all required unless marked):
 *
 * <pre>
 * kvpc.format=1                          format version of this file; this loader reads {@value #FORMAT_VERSION}
 * policy.name=h2o                        the policy's name: a letter or _, then letters, digits, _ . -
 * policy.source-sha256=9f86d0...         SHA-256 of the .kvp source it was compiled from, 64 hex digits
 * compiler.version=0.1.0                 the kvpc version that compiled it: letters, digits, . _ + -
 * entry.class=gen.H2o                    binary name of the entry class, which must be in the jar
 * shape.layers=any                       model-shape constraints: a positive size, or any
 * shape.heads=32
 * shape.kv-heads=8
 * shape.head-dim=128
 * evidence=attn,observed-queries:32      evidence the policy needs, comma-separated (may be empty)
 * memory.kv=512                          (optional, repeatable) predicted bytes per lane, by category
 * memory.state=8
 * prediction.context=4096                (with memory.*) the context length and host KV dtype the memory figures
 * prediction.dtype=f16                   were predicted for, so a loader can predict them again and compare
 * </pre>
 *
 * Evidence items are a lower-case word ({@code [a-z][a-z0-9_.-]*}) with an optional {@code :argument}; memory
 * categories are {@code [a-z][a-z0-9_-]*}; byte counts are non-negative decimal integers. Parsing errors name the key
 * (or the line) and what is wrong with it.
 *
 * @param formatVersion         the manifest format ({@link #FORMAT_VERSION})
 * @param policyName            the policy's name, as used in messages
 * @param sourceSha256          SHA-256 of the source, 64 lower-case hex digits
 * @param compilerVersion       the kvpc version that compiled the policy
 * @param shape                 the model shapes the compiled code runs on
 * @param evidence              what the policy reads (attention rows, observed queries, ...), sorted
 * @param predictedBytesPerLane predicted memory per lane, by category, sorted by category
 * @param entryClass            binary name ({@code gen.H2o}) of the class the host instantiates
 * @param prediction            what the memory figures were predicted for; null when there are none
 */
public record PolicyManifest(int formatVersion, String policyName, String sourceSha256, String compilerVersion,
        ShapeConstraints shape, Set<String> evidence, Map<String, Long> predictedBytesPerLane, String entryClass, Prediction prediction) {

    /** The longest context a prediction may be for: 2^40 tokens. */
    public static final long MAX_CONTEXT = 1L << 40;

    /** The context length (tokens, 1 to {@link #MAX_CONTEXT}) and host KV dtype ({@code f32}, {@code f16}, ...) of a memory prediction. */
    public record Prediction(long context, String dtype) {
        public Prediction {
            if (context < 1 || context > MAX_CONTEXT) {
                throw new IllegalArgumentException(key(KEY_PREDICTION_CONTEXT) + "expected 1 to " + MAX_CONTEXT + " tokens, got " + context);
            }
            if (dtype == null || !CATEGORY.matcher(dtype).matches()) {
                throw new IllegalArgumentException(key(KEY_PREDICTION_DTYPE) + "expected a dtype such as f16, got '" + dtype + "'");
            }
        }
    }

    /** Where the manifest lives in a policy jar. */
    public static final String PATH = "META-INF/kvpc-policy.properties";
    /** The manifest format this loader reads and writes. */
    public static final int FORMAT_VERSION = 1;

    public static final String KEY_FORMAT = "kvpc.format";
    public static final String KEY_NAME = "policy.name";
    public static final String KEY_SOURCE_SHA256 = "policy.source-sha256";
    public static final String KEY_COMPILER_VERSION = "compiler.version";
    public static final String KEY_ENTRY_CLASS = "entry.class";
    public static final String KEY_SHAPE_PREFIX = "shape.";
    public static final String KEY_EVIDENCE = "evidence";
    public static final String KEY_MEMORY_PREFIX = "memory.";
    public static final String KEY_PREDICTION_CONTEXT = "prediction.context";
    public static final String KEY_PREDICTION_DTYPE = "prediction.dtype";

    /** Every required key, in the order {@link #toText()} writes them. */
    public static final List<String> REQUIRED_KEYS = List.of(KEY_FORMAT, KEY_NAME, KEY_SOURCE_SHA256, KEY_COMPILER_VERSION,
            KEY_ENTRY_CLASS, "shape.layers", "shape.heads", "shape.kv-heads", "shape.head-dim", KEY_EVIDENCE);

    private static final Pattern NAME = Pattern.compile("[A-Za-z_][A-Za-z0-9_.-]{0,127}");
    private static final Pattern SHA256 = Pattern.compile("[0-9a-fA-F]{64}");
    private static final Pattern VERSION = Pattern.compile("[A-Za-z0-9._+-]{1,64}");
    private static final Pattern EVIDENCE = Pattern.compile("[a-z][a-z0-9_.-]*(:[A-Za-z0-9_.-]+)?");
    private static final Pattern CATEGORY = Pattern.compile("[a-z][a-z0-9_-]*");
    /** Largest manifest read; a real one is a few hundred bytes. */
    private static final int MAX_BYTES = 64 * 1024;

    public PolicyManifest {
        if (formatVersion != FORMAT_VERSION) {
            throw new IllegalArgumentException(key(KEY_FORMAT) + "this loader reads format " + FORMAT_VERSION + ", got " + formatVersion);
        }
        require(KEY_NAME, policyName, NAME, "a letter or _, then letters, digits, _ . - (at most 128)");
        require(KEY_SOURCE_SHA256, sourceSha256, SHA256, "64 hex digits");
        sourceSha256 = sourceSha256.toLowerCase(java.util.Locale.ROOT);
        require(KEY_COMPILER_VERSION, compilerVersion, VERSION, "letters, digits, . _ + - (at most 64)");
        Objects.requireNonNull(shape, "shape");
        Objects.requireNonNull(entryClass, key(KEY_ENTRY_CLASS) + "missing");
        if (!isBinaryClassName(entryClass)) {
            throw new IllegalArgumentException(key(KEY_ENTRY_CLASS) + "expected a binary class name such as gen.H2o, got '" + entryClass + "'");
        }
        Objects.requireNonNull(evidence, "evidence");
        TreeSet<String> ev = new TreeSet<>();
        for (String e : evidence) {
            if (e == null || !EVIDENCE.matcher(e).matches()) {
                throw new IllegalArgumentException(key(KEY_EVIDENCE) + "'" + e + "' is not an evidence item (a lower-case word, optionally :argument)");
            }
            ev.add(e);
        }
        evidence = Collections.unmodifiableSortedSet(ev);
        Objects.requireNonNull(predictedBytesPerLane, "predictedBytesPerLane");
        TreeMap<String, Long> mem = new TreeMap<>();
        for (Map.Entry<String, Long> e : predictedBytesPerLane.entrySet()) {
            String c = e.getKey();
            if (c == null || !CATEGORY.matcher(c).matches()) {
                throw new IllegalArgumentException(key(KEY_MEMORY_PREFIX + c) + "a memory category is [a-z][a-z0-9_-]*");
            }
            Long v = e.getValue();
            if (v == null || v < 0) {
                throw new IllegalArgumentException(key(KEY_MEMORY_PREFIX + c) + "expected a non-negative number of bytes, got " + v);
            }
            mem.put(c, v);
        }
        predictedBytesPerLane = Collections.unmodifiableSortedMap(mem);
        if (!mem.isEmpty() && prediction == null) {
            throw new IllegalArgumentException("memory figures (" + KEY_MEMORY_PREFIX + "*) need '" + KEY_PREDICTION_CONTEXT + "' and '" + KEY_PREDICTION_DTYPE + "'");
        }
    }

    /** A format-{@value #FORMAT_VERSION} manifest. */
    public static PolicyManifest of(String policyName, String sourceSha256, String compilerVersion, ShapeConstraints shape,
            Set<String> evidence, Map<String, Long> predictedBytesPerLane, String entryClass, Prediction prediction) {
        return new PolicyManifest(FORMAT_VERSION, policyName, sourceSha256, compilerVersion, shape, evidence,
                predictedBytesPerLane, entryClass, prediction);
    }

    /** The entry class as a JVM internal name ({@code gen/H2o}). */
    public String entryInternalName() {
        return entryClass.replace('.', '/');
    }

    /** Predicted bytes per lane over all categories. */
    public long predictedBytesPerLaneTotal() {
        long sum = 0;
        for (long v : predictedBytesPerLane.values()) sum = Math.addExact(sum, v);
        return sum;
    }

    /** Throws unless a model of this shape satisfies the policy's constraints; see {@link ShapeConstraints#check}. */
    public void checkFits(ModelShapeSpec host) throws PolicyLoadException {
        shape.check(policyName, host);
    }

    // ---------------------------------------------------------------------------------------------- writing

    /** The manifest text: a comment line, then every key in a fixed order, ending with a newline. */
    public String toText() {
        StringBuilder b = new StringBuilder();
        b.append("# kvpc compiled policy manifest\n");
        line(b, KEY_FORMAT, Integer.toString(formatVersion));
        line(b, KEY_NAME, policyName);
        line(b, KEY_SOURCE_SHA256, sourceSha256);
        line(b, KEY_COMPILER_VERSION, compilerVersion);
        line(b, KEY_ENTRY_CLASS, entryClass);
        for (String d : ShapeConstraints.DIMENSIONS) line(b, KEY_SHAPE_PREFIX + d, shape.get(d).toString());
        line(b, KEY_EVIDENCE, String.join(",", evidence));
        predictedBytesPerLane.forEach((c, v) -> line(b, KEY_MEMORY_PREFIX + c, Long.toString(v)));
        if (prediction != null) {
            line(b, KEY_PREDICTION_CONTEXT, Long.toString(prediction.context()));
            line(b, KEY_PREDICTION_DTYPE, prediction.dtype());
        }
        return b.toString();
    }

    /** {@link #toText()} as UTF-8. */
    public byte[] toBytes() {
        return toText().getBytes(StandardCharsets.UTF_8);
    }

    public void write(OutputStream out) throws IOException {
        out.write(toBytes());
    }

    private static void line(StringBuilder b, String key, String value) {
        // Validation keeps keys and values to characters that need no escape.
        b.append(key).append('=').append(value).append('\n');
    }

    // ---------------------------------------------------------------------------------------------- reading

    /** Reads a manifest of at most 64 KiB from a stream (not closed). */
    public static PolicyManifest read(InputStream in) throws IOException, PolicyLoadException {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        byte[] chunk = new byte[8192];
        for (int n; (n = in.read(chunk)) > 0; ) {
            if (buf.size() + n > MAX_BYTES) throw bad("is larger than " + MAX_BYTES / 1024 + " KiB; a manifest is a few lines");
            buf.write(chunk, 0, n);
        }
        return parse(buf.toByteArray());
    }

    /** Parses manifest bytes (UTF-8, at most 64 KiB). */
    public static PolicyManifest parse(byte[] bytes) throws PolicyLoadException {
        if (bytes.length > MAX_BYTES) throw bad("is larger than " + MAX_BYTES / 1024 + " KiB; a manifest is a few lines");
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw bad("is not UTF-8 text (corrupt?)");
        }
        return parse(text);
    }

    /** Parses manifest text. Errors name the key or line and say what is wrong. */
    public static PolicyManifest parse(String text) throws PolicyLoadException {
        Map<String, String> values = new LinkedHashMap<>();
        Map<String, Integer> lineOf = new HashMap<>();
        String[] lines = text.split("\r\n|\r|\n", -1);
        for (int i = 0; i < lines.length; i++) {
            int lineNo = i + 1;
            String line = lines[i].stripLeading();
            if (line.isEmpty() || line.charAt(0) == '#' || line.charAt(0) == '!') continue;
            for (int k = 0; k < line.length(); k++) {
                char c = line.charAt(k);
                if (c < 0x20 && c != '\t' && c != '\f') throw bad("line " + lineNo + ": control character U+" + hex4(c) + " (corrupt?)");
            }
            int trailing = 0;
            for (int k = line.length() - 1; k >= 0 && line.charAt(k) == '\\'; k--) trailing++;
            if (trailing % 2 == 1) throw bad("line " + lineNo + ": line continuations are not supported");
            int sep = -1;
            for (int k = 0; k < line.length(); k++) {
                char c = line.charAt(k);
                if (c == '\\') k++;
                else if (c == '=' || c == ':') {
                    sep = k;
                    break;
                }
            }
            if (sep < 0) throw bad("line " + lineNo + ": expected key=value, got '" + shorten(line) + "'");
            String key = unescape(line.substring(0, sep).strip(), lineNo);
            String value = unescape(line.substring(sep + 1).strip(), lineNo);
            if (key.isEmpty()) throw bad("line " + lineNo + ": empty key");
            Integer first = lineOf.putIfAbsent(key, lineNo);
            if (first != null) throw bad("line " + lineNo + ": key '" + key + "' is given twice (first on line " + first + ")");
            values.put(key, value);
        }
        return fromValues(values);
    }

    private static PolicyManifest fromValues(Map<String, String> values) throws PolicyLoadException {
        String format = values.get(KEY_FORMAT);
        if (format == null) throw bad("missing key '" + KEY_FORMAT + "' (not a kvpc policy manifest?)");
        int version;
        try {
            version = Integer.parseInt(format.strip());
        } catch (NumberFormatException e) {
            throw bad(key(KEY_FORMAT) + "expected a format number, got '" + shorten(format) + "'");
        }
        if (version != FORMAT_VERSION) {
            throw bad(key(KEY_FORMAT) + "this loader reads format " + FORMAT_VERSION + ", the manifest has format " + version
                    + (version > FORMAT_VERSION ? " (compiled by a newer kvpc?)" : ""));
        }
        for (String k : values.keySet()) {
            if (!REQUIRED_KEYS.contains(k) && !k.startsWith(KEY_MEMORY_PREFIX) && !k.equals(KEY_PREDICTION_CONTEXT) && !k.equals(KEY_PREDICTION_DTYPE)) {
                throw bad("unknown key '" + shorten(k) + "'");
            }
        }
        List<String> missing = new ArrayList<>();
        for (String k : REQUIRED_KEYS) if (!values.containsKey(k)) missing.add("'" + k + "'");
        if (!missing.isEmpty()) throw bad("missing key" + (missing.size() > 1 ? "s " : " ") + String.join(", ", missing));

        ShapeConstraints.Dim[] dims = new ShapeConstraints.Dim[4];
        for (int i = 0; i < 4; i++) {
            String k = KEY_SHAPE_PREFIX + ShapeConstraints.DIMENSIONS.get(i);
            try {
                dims[i] = ShapeConstraints.Dim.parse(values.get(k));
            } catch (IllegalArgumentException e) {
                throw bad(key(k) + e.getMessage());
            }
        }
        Set<String> evidence = new TreeSet<>();
        String ev = values.get(KEY_EVIDENCE);
        if (!ev.isBlank()) {
            for (String item : ev.split(",", -1)) {
                String s = item.strip();
                if (s.isEmpty()) throw bad(key(KEY_EVIDENCE) + "empty item in '" + shorten(ev) + "'");
                if (!EVIDENCE.matcher(s).matches()) {
                    throw bad(key(KEY_EVIDENCE) + "'" + shorten(s) + "' is not an evidence item (a lower-case word, optionally :argument)");
                }
                if (!evidence.add(s)) throw bad(key(KEY_EVIDENCE) + "'" + s + "' is listed twice");
            }
        }
        Map<String, Long> memory = new TreeMap<>();
        for (Map.Entry<String, String> e : values.entrySet()) {
            if (!e.getKey().startsWith(KEY_MEMORY_PREFIX)) continue;
            String category = e.getKey().substring(KEY_MEMORY_PREFIX.length());
            if (!CATEGORY.matcher(category).matches()) throw bad(key(e.getKey()) + "a memory category is [a-z][a-z0-9_-]*");
            String v = e.getValue();
            long bytes;
            try {
                if (v.isEmpty() || !v.chars().allMatch(c -> c >= '0' && c <= '9')) throw new NumberFormatException();
                bytes = Long.parseLong(v);
            } catch (NumberFormatException ex) {
                throw bad(key(e.getKey()) + "expected a non-negative number of bytes per lane, got '" + shorten(v) + "'");
            }
            memory.put(category, bytes);
        }
        Prediction prediction = null;
        String pc = values.get(KEY_PREDICTION_CONTEXT), pd = values.get(KEY_PREDICTION_DTYPE);
        if (pc != null || pd != null) {
            if (pc == null || pd == null) throw bad("'" + KEY_PREDICTION_CONTEXT + "' and '" + KEY_PREDICTION_DTYPE + "' come together");
            long context;
            try {
                if (pc.isEmpty() || pc.length() > 18 || !pc.chars().allMatch(c -> c >= '0' && c <= '9')) throw new NumberFormatException();
                context = Long.parseLong(pc);
            } catch (NumberFormatException ex) {
                throw bad(key(KEY_PREDICTION_CONTEXT) + "expected a positive number of tokens, got '" + shorten(pc) + "'");
            }
            try {
                prediction = new Prediction(context, pd);
            } catch (IllegalArgumentException e) {
                throw bad(e.getMessage());
            }
        }
        try {
            return new PolicyManifest(version, values.get(KEY_NAME), values.get(KEY_SOURCE_SHA256), values.get(KEY_COMPILER_VERSION),
                    new ShapeConstraints(dims[0], dims[1], dims[2], dims[3]), evidence, memory, values.get(KEY_ENTRY_CLASS), prediction);
        } catch (IllegalArgumentException e) {
            throw bad(e.getMessage());
        }
    }

    private static String unescape(String s, int lineNo) throws PolicyLoadException {
        if (s.indexOf('\\') < 0) return s;
        StringBuilder b = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c != '\\') {
                b.append(c);
                continue;
            }
            // a backslash that ends the line was refused as a continuation; one that ends the key or value (before
            // the separator, or before trailing blanks stripped off) escapes nothing
            if (i + 1 == s.length()) throw bad("line " + lineNo + ": a backslash ends '" + shorten(s) + "' and escapes nothing");
            char n = s.charAt(++i);
            switch (n) {
                case 't' -> b.append('\t');
                case 'n' -> b.append('\n');
                case 'r' -> b.append('\r');
                case 'f' -> b.append('\f');
                case 'u' -> {
                    if (i + 5 > s.length()) {
                        throw bad("line " + lineNo + ": \\u needs four hex digits");
                    }
                    String hex = s.substring(i + 1, i + 5);
                    try {
                        b.append((char) Integer.parseInt(hex, 16));
                    } catch (NumberFormatException e) {
                        throw bad("line " + lineNo + ": \\u needs four hex digits, got '" + hex + "'");
                    }
                    i += 4;
                }
                default -> b.append(n);
            }
        }
        return b.toString();
    }

    private static void require(String key, String value, Pattern pattern, String expected) {
        if (value == null) throw new IllegalArgumentException(key(key) + "missing");
        if (!pattern.matcher(value).matches()) {
            throw new IllegalArgumentException(key(key) + "expected " + expected + ", got '" + shorten(value) + "'");
        }
    }

    static boolean isBinaryClassName(String name) {
        if (name.isEmpty() || name.length() > 1000) return false;
        for (String part : name.split("\\.", -1)) {
            if (part.isEmpty() || !Character.isJavaIdentifierStart(part.charAt(0))) return false;
            for (int i = 1; i < part.length(); i++) if (!Character.isJavaIdentifierPart(part.charAt(i))) return false;
        }
        return true;
    }

    private static String key(String key) {
        return "key '" + key + "': ";
    }

    private static PolicyLoadException bad(String problem) {
        return new PolicyLoadException(PATH + ": " + problem);
    }

    private static String hex4(char c) {
        return String.format("%04X", (int) c);
    }

    /** At most 60 characters, non-printable ones shown as {@code ?}. */
    static String shorten(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length() && i < 60; i++) {
            char c = s.charAt(i);
            b.append(c < 0x20 || c == 0x7f || Character.isSurrogate(c) ? '?' : c);
        }
        if (s.length() > 60) b.append("...");
        return b.toString();
    }
}
