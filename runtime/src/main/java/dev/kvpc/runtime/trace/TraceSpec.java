package dev.kvpc.runtime.trace;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Where a trace comes from, as users write it: a file (binary KVPTRACE, or the text form), tensors a Python user saved
 * ({@link TraceTensors}: {@code .safetensors}, {@code .npz}, or a folder of {@code .npy} files), or a generator spec
 * {@code random:seed=1,prefill=64,chunk=0,decode=16,sinks=4,heavy=3,needle=20} with optional
 * {@code layers=,heads=,kv-heads=,head-dim=} (default: the shape given).
 */
public final class TraceSpec {
    private TraceSpec() {}

    /** Opens a trace; throws IllegalArgumentException with a message for the user on any problem. */
    public static Trace open(String spec, TraceShape defaultShape) {
        if (spec.startsWith("random:") || spec.equals("random")) return generate(spec.equals("random") ? "" : spec.substring(7), defaultShape);
        Path p = Path.of(spec);
        if (Files.exists(p) && TraceTensors.handles(p)) return TraceTensors.read(p);
        if (!Files.isRegularFile(p)) {
            throw new IllegalArgumentException("trace '" + spec + "' is neither a file (KVPTRACE, its text form, .safetensors, .npz), a folder of q.npy, k.npy "
                    + "and v.npy, nor random:...");
        }
        try (InputStream in = Files.newInputStream(p)) {
            byte[] head = in.readNBytes(TraceIO.MAGIC.length());
            if (new String(head, StandardCharsets.US_ASCII).equals(TraceIO.MAGIC)) return TraceIO.read(p);
            return TraceText.parse(Files.readString(p, StandardCharsets.UTF_8));
        } catch (IOException | RuntimeException e) {
            throw new IllegalArgumentException(spec + ": " + e.getMessage(), e);
        }
    }

    private static Trace generate(String args, TraceShape shape) {
        Map<String, String> kv = new LinkedHashMap<>();
        for (String part : args.split(",")) {
            if (part.isBlank()) continue;
            int eq = part.indexOf('=');
            if (eq <= 0) throw new IllegalArgumentException("bad trace option '" + part + "' (expected name=value)");
            kv.put(part.substring(0, eq).strip(), part.substring(eq + 1).strip());
        }
        int layers = num(kv, "layers", shape.layers()), heads = num(kv, "heads", shape.heads());
        int kvHeads = num(kv, "kv-heads", shape.kvHeads()), dim = num(kv, "head-dim", shape.headDim());
        TraceGenerator.Options o = TraceGenerator.Options.of(new TraceShape(layers, heads, kvHeads, dim))
                .withSeed(num(kv, "seed", 0)).withPrefill(num(kv, "prefill", 64)).withChunk(num(kv, "chunk", 0))
                .withDecode(num(kv, "decode", 8));
        if (kv.containsKey("sinks")) o = o.withSinks(num(kv, "sinks", 0));
        if (kv.containsKey("heavy")) o = o.withHeavyHitters(num(kv, "heavy", 0));
        if (kv.containsKey("needle")) o = o.withNeedle(num(kv, "needle", 0), Math.max(1, num(kv, "needle-queries", 4)));
        for (String k : kv.keySet()) {
            if (!k.matches("layers|heads|kv-heads|head-dim|seed|prefill|chunk|decode|sinks|heavy|needle|needle-queries")) {
                throw new IllegalArgumentException("unknown trace option '" + k + "'");
            }
        }
        return TraceGenerator.generate(o).trace();
    }

    private static int num(Map<String, String> kv, String k, int dflt) {
        String v = kv.get(k);
        if (v == null) return dflt;
        try {
            return Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("trace option " + k + " needs a whole number, got '" + v + "'");
        }
    }
}
