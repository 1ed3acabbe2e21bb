package dev.kvpc.runtime.load;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;

class PolicyManifestTest {

    private static final String GOOD = """
            # a comment
            kvpc.format=1
            policy.name=h2o
            policy.source-sha256=%s
            compiler.version=0.1.0
            entry.class=gen.H2o
            shape.layers=any
            shape.heads=32
            shape.kv-heads=8
            shape.head-dim=128
            evidence=attn, observed-queries:32
            memory.kv=512
            memory.state=8
            prediction.context=4096
            prediction.dtype=f16
            """.formatted(TestJars.SHA);

    private static PolicyManifest good() throws PolicyLoadException {
        return PolicyManifest.parse(GOOD);
    }

    private static String parseError(String text) {
        return assertThrows(PolicyLoadException.class, () -> PolicyManifest.parse(text)).getMessage();
    }

    private static String replace(String key, String newLine) {
        String out = GOOD.lines().map(l -> l.startsWith(key + "=") ? newLine : l).reduce("", (a, b) -> a + b + "\n");
        if (out.equals(GOOD)) throw new IllegalArgumentException("no line " + key);
        return out;
    }

    @Test
    void parsesEveryKey() throws Exception {
        PolicyManifest m = good();
        assertEquals(1, m.formatVersion());
        assertEquals("h2o", m.policyName());
        assertEquals(TestJars.SHA, m.sourceSha256());
        assertEquals("0.1.0", m.compilerVersion());
        assertEquals("gen.H2o", m.entryClass());
        assertEquals("gen/H2o", m.entryInternalName());
        assertEquals(ShapeConstraints.Dim.ANY, m.shape().layers());
        assertEquals(ShapeConstraints.Dim.exactly(32), m.shape().heads());
        assertEquals(ShapeConstraints.Dim.exactly(8), m.shape().kvHeads());
        assertEquals(ShapeConstraints.Dim.exactly(128), m.shape().headDim());
        assertEquals(List.of("attn", "observed-queries:32"), List.copyOf(m.evidence()));
        assertEquals(Map.of("kv", 512L, "state", 8L), m.predictedBytesPerLane());
        assertEquals(520L, m.predictedBytesPerLaneTotal());
    }

    @Test
    void writesWhatItReads() throws Exception {
        PolicyManifest m = good();
        assertEquals(m, PolicyManifest.parse(m.toText()));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        m.write(out);
        assertEquals(m, PolicyManifest.read(new ByteArrayInputStream(out.toByteArray())));
        String text = m.toText();
        assertTrue(text.contains("\nshape.kv-heads=8\n"), text);
        assertTrue(text.contains("\nshape.layers=any\n"), text);
        assertTrue(text.contains("\nevidence=attn,observed-queries:32\n"), text);
        assertTrue(text.contains("\nmemory.kv=512\nmemory.state=8\n"), text);
        assertEquals(text, PolicyManifest.parse(text).toText(), "the text form is canonical");
    }

    @Test
    void noEvidenceAndNoMemoryAreFine() throws Exception {
        PolicyManifest m = PolicyManifest.of("full", TestJars.SHA, "1", ShapeConstraints.ANY, Set.of(), Map.of(), "Full", null);
        PolicyManifest back = PolicyManifest.parse(m.toText());
        assertEquals(Set.of(), back.evidence());
        assertEquals(Map.of(), back.predictedBytesPerLane());
        assertEquals(0, back.predictedBytesPerLaneTotal());
    }

    @Test
    void acceptsPropertiesSyntaxJavaUtilPropertiesWrites() throws Exception {
        // java.util.Properties.store escapes ':' and '=' and may use ':' as the separator.
        String text = replace("evidence", "evidence = attn,observed-queries\\:32")
                .replace("policy.name=h2o", "policy.name: h\\u0032o")
                .replace("\n", "\r\n");
        PolicyManifest m = PolicyManifest.parse(text);
        assertEquals("h2o", m.policyName());
        assertEquals(Set.of("attn", "observed-queries:32"), m.evidence());
    }

    @Test
    void upperCaseHashIsNormalised() throws Exception {
        PolicyManifest m = PolicyManifest.parse(replace("policy.source-sha256", "policy.source-sha256=" + TestJars.SHA.toUpperCase()));
        assertEquals(TestJars.SHA, m.sourceSha256());
    }

    @Test
    void badShapeValueNamesTheKey() {
        String msg = parseError(replace("shape.kv-heads", "shape.kv-heads=eight"));
        assertEquals("META-INF/kvpc-policy.properties: key 'shape.kv-heads': expected a positive integer or 'any', got 'eight'", msg);
        assertTrue(parseError(replace("shape.head-dim", "shape.head-dim=0")).contains("key 'shape.head-dim'"));
        assertTrue(parseError(replace("shape.layers", "shape.layers=-3")).contains("key 'shape.layers'"));
        assertTrue(parseError(replace("shape.heads", "shape.heads=99999999999")).contains("key 'shape.heads'"));
    }

    @Test
    void badValuesNameTheKeyAndTheProblem() {
        assertTrue(parseError(replace("policy.source-sha256", "policy.source-sha256=abc"))
                .contains("key 'policy.source-sha256': expected 64 hex digits, got 'abc'"));
        assertTrue(parseError(replace("policy.name", "policy.name=h2o policy")).contains("key 'policy.name': expected"));
        assertTrue(parseError(replace("entry.class", "entry.class=gen/H2o")).contains("key 'entry.class': expected a binary class name"));
        assertTrue(parseError(replace("entry.class", "entry.class=gen..H2o")).contains("key 'entry.class'"));
        assertTrue(parseError(replace("compiler.version", "compiler.version=")).contains("key 'compiler.version'"));
        assertTrue(parseError(replace("evidence", "evidence=attn,,keys")).contains("key 'evidence': empty item"));
        assertTrue(parseError(replace("evidence", "evidence=Attn")).contains("key 'evidence': 'Attn' is not an evidence item"));
        assertTrue(parseError(replace("evidence", "evidence=attn,attn")).contains("'attn' is listed twice"));
        assertTrue(parseError(replace("memory.kv", "memory.kv=-1")).contains("key 'memory.kv': expected a non-negative number of bytes"));
        assertTrue(parseError(replace("memory.kv", "memory.kv=lots")).contains("key 'memory.kv'"));
        assertTrue(parseError(replace("memory.kv", "memory.KV=1")).contains("key 'memory.KV': a memory category"));
    }

    @Test
    void missingUnknownAndDuplicateKeys() {
        assertEquals("META-INF/kvpc-policy.properties: missing key 'shape.head-dim'", parseError(replace("shape.head-dim", "")));
        assertTrue(parseError(replace("shape.head-dim", "").replace("evidence=attn, observed-queries:32", ""))
                .endsWith("missing keys 'shape.head-dim', 'evidence'"));
        assertEquals("META-INF/kvpc-policy.properties: unknown key 'shape.kvheads'", parseError(GOOD + "shape.kvheads=8\n"));
        assertEquals("META-INF/kvpc-policy.properties: line 16: key 'memory.kv' is given twice (first on line 12)",
                parseError(GOOD + "memory.kv=1\n"));
    }

    @Test
    void formatVersionIsCheckedFirst() {
        assertEquals("META-INF/kvpc-policy.properties: key 'kvpc.format': this loader reads format 1, the manifest has format 2"
                + " (compiled by a newer kvpc?)", parseError(replace("kvpc.format", "kvpc.format=2") + "shape.new-thing=1\n"));
        assertTrue(parseError(replace("kvpc.format", "kvpc.format=one")).contains("key 'kvpc.format': expected a format number"));
        assertTrue(parseError(replace("kvpc.format", "")).contains("missing key 'kvpc.format' (not a kvpc policy manifest?)"));
    }

    @Test
    void corruptTextIsRefusedWithTheLine() {
        assertTrue(parseError("kvpc.format=1\nthis is not a property\n").contains("line 2: expected key=value"));
        assertTrue(parseError("kvpc.format=1\npolicy.name=a\\\n  b\n").contains("line 2: line continuations are not supported"));
        assertTrue(parseError("kvpc.format=1\npolicy.name=\\u00zz\n").contains("line 2: \\u needs four hex digits"));
        assertTrue(parseError("kvpc.format=1\npolicy.name=\\u00\n").contains("line 2: \\u needs four hex digits"));
        assertTrue(parseError("kvpc.format=1\npolicy\u0000name=x\n").contains("line 2: control character U+0000"));
        assertTrue(parseError("").contains("missing key 'kvpc.format'"));
        // a backslash before trailing blanks, or before the separator, escapes nothing (it used to end in a
        // StringIndexOutOfBoundsException, exit 70)
        assertTrue(parseError("kvpc.format=1\npolicy.name=h2o\\ \n").contains("line 2: a backslash ends 'h2o\\' and escapes nothing"),
                parseError("kvpc.format=1\npolicy.name=h2o\\ \n"));
        assertTrue(parseError("kvpc.format=1\npolicy.name\\ =h2o\n").contains("line 2: a backslash ends"));
    }

    @Test
    void binaryGarbageIsRefused() throws IOException, PolicyLoadException {
        byte[] junk = new byte[256];
        for (int i = 0; i < junk.length; i++) junk[i] = (byte) (i * 37 + 11);
        PolicyLoadException e = assertThrows(PolicyLoadException.class, () -> PolicyManifest.parse(junk));
        assertEquals("META-INF/kvpc-policy.properties: is not UTF-8 text (corrupt?)", e.getMessage());
        byte[] big = new byte[70 * 1024];
        java.util.Arrays.fill(big, (byte) '#');
        PolicyLoadException e2 = assertThrows(PolicyLoadException.class, () -> PolicyManifest.read(new ByteArrayInputStream(big)));
        assertTrue(e2.getMessage().contains("larger than 64 KiB"), e2.getMessage());
        // the same limit when the bytes come from a jar's entry rather than a stream
        PolicyLoadException e3 = assertThrows(PolicyLoadException.class, () -> PolicyManifest.parse(big));
        assertTrue(e3.getMessage().contains("larger than 64 KiB"), e3.getMessage());
        assertEquals("h2o", PolicyManifest.parse(GOOD.getBytes(StandardCharsets.UTF_8)).policyName());
    }

    @Test
    void constructorValidates() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> PolicyManifest.of("h2o", "nope", "1", ShapeConstraints.ANY, Set.of(), Map.of(), "gen.H2o", null));
        assertTrue(e.getMessage().contains("key 'policy.source-sha256'"), e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> PolicyManifest.of("h2o", TestJars.SHA, "1", ShapeConstraints.ANY, Set.of(), Map.of("kv", -1L), "gen.H2o", null));
        assertThrows(IllegalArgumentException.class,
                () -> new PolicyManifest(2, "h2o", TestJars.SHA, "1", ShapeConstraints.ANY, Set.of(), Map.of(), "gen.H2o", null));
        assertThrows(UnsupportedOperationException.class, () -> TestJars.manifest("p", "gen/P").evidence().add("x"));
    }

    // ---------------------------------------------------------------------------------------------- shapes

    @Test
    void shapeConstraintsFitOrSaySoClearly() throws Exception {
        PolicyManifest m = good(); // heads=32 kv-heads=8 head-dim=128
        m.checkFits(new ModelShapeSpec(40, 32, 8, 128));
        assertEquals("policy h2o needs kv-heads=8, this model has 4",
                assertThrows(PolicyLoadException.class, () -> m.checkFits(new ModelShapeSpec(40, 32, 4, 128))).getMessage());
        assertEquals("policy h2o needs kv-heads=8 and head-dim=128, this model has kv-heads=4 and head-dim=64",
                assertThrows(PolicyLoadException.class, () -> m.checkFits(new ModelShapeSpec(40, 32, 4, 64))).getMessage());
        assertEquals("policy h2o needs heads=32, kv-heads=8 and head-dim=128, this model has heads=16, kv-heads=4 and head-dim=64",
                assertThrows(PolicyLoadException.class, () -> m.checkFits(new ModelShapeSpec(40, 16, 4, 64))).getMessage());
        assertTrue(ShapeConstraints.ANY.admits(new ModelShapeSpec(1, 1, 1, 1)));
        ModelShapeSpec s = new ModelShapeSpec(2, 8, 4, 64);
        assertTrue(ShapeConstraints.exactly(s).admits(s));
        assertEquals(List.of("layers"), ShapeConstraints.exactly(s).misfits(new ModelShapeSpec(3, 8, 4, 64)));
    }

    @Test
    void dimensionsParseAndPrint() {
        assertEquals("any", ShapeConstraints.Dim.parse(" any ").toString());
        assertEquals("128", ShapeConstraints.Dim.parse("128").toString());
        assertTrue(ShapeConstraints.Dim.ANY.admits(7));
        assertFalse(ShapeConstraints.Dim.exactly(8).admits(7));
        assertThrows(IllegalArgumentException.class, () -> ShapeConstraints.Dim.parse("ANY"));
        assertThrows(IllegalArgumentException.class, () -> ShapeConstraints.Dim.parse("+8"));
        assertThrows(IllegalArgumentException.class, () -> ShapeConstraints.Dim.exactly(0));
    }

    @Test
    void modelShapeSpecIsValidated() {
        assertThrows(IllegalArgumentException.class, () -> new ModelShapeSpec(0, 8, 4, 64));
        assertThrows(IllegalArgumentException.class, () -> new ModelShapeSpec(2, 8, 3, 64));
        assertEquals("layers=2 heads=8 kv-heads=4 head-dim=64", new ModelShapeSpec(2, 8, 4, 64).toString());
    }
}
