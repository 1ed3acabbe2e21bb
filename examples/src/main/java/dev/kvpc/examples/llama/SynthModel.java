package dev.kvpc.examples.llama;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A GGUF file of a real model's shape with random weights ({@code kvpc synth-model}): for benchmarks of long contexts
 * and large KV caches at realistic sizes, with no claim of quality. The matrices are Gaussian (standard deviation
 * 0.02, as models are initialised), the norms ones, in the weight type asked for; the vocabulary is a SentencePiece
 * ({@code llama}) one of the shape's size: control tokens, the 256 byte tokens, then letter pieces of growing length.
 * llama.cpp and kvpc's engine both load it. Written chunk by chunk, so the file may be larger than memory.
 */
public final class SynthModel {
    private SynthModel() {
    }

    /** A model's shape: what its GGUF's {@code llama.*} metadata says. */
    public record Shape(String name, int dim, int hidden, int layers, int heads, int kvHeads, int vocab, int context, float ropeBase) {
        /** Weights of {@code layers} blocks, the embedding and the output matrix. */
        public long parameters(int layers) {
            long kv = (long) dim / heads * kvHeads;
            long block = 2L * dim * dim + 2L * dim * kv + 3L * dim * hidden + 2L * dim;
            return layers * block + 2L * vocab * dim + dim;
        }
    }

    /** The shapes {@code --shape} names, from the models' published configurations. */
    public static final Map<String, Shape> SHAPES = shapes();

    private static Map<String, Shape> shapes() {
        Map<String, Shape> m = new LinkedHashMap<>();
        for (Shape s : new Shape[] {
            new Shape("llama3-8b", 4096, 14336, 32, 32, 8, 128256, 8192, 500000f),
            new Shape("llama2-7b", 4096, 11008, 32, 32, 32, 32000, 4096, 10000f),
            new Shape("mistral-7b", 4096, 14336, 32, 32, 8, 32000, 32768, 1000000f),
            new Shape("tinyllama-1.1b", 2048, 5632, 22, 32, 4, 32000, 2048, 10000f),
            new Shape("smollm-135m", 576, 1536, 30, 9, 3, 49152, 2048, 10000f),
        }) m.put(s.name(), s);
        return m;
    }

    /** The weight types a synthetic model may have. */
    public static final List<GgufFile.TensorType> WEIGHTS = List.of(GgufFile.TensorType.F32, GgufFile.TensorType.F16, GgufFile.TensorType.BF16,
            GgufFile.TensorType.Q8_0, GgufFile.TensorType.Q4_0, GgufFile.TensorType.Q4_K, GgufFile.TensorType.Q5_K, GgufFile.TensorType.Q6_K);

    /** Rows generated and encoded at a time. */
    private static final int ROWS = 64;

    /**
     * The file's bytes: header aside, every tensor's encoding, each padded to 32 (within a few megabytes of the file's
     * size; the header holds the vocabulary).
     */
    public static long dataBytes(Shape s, int layers, GgufFile.TensorType type) {
        long kv = (long) s.dim() / s.heads() * s.kvHeads(), b = 0;
        for (long[] m : matrices(s, layers, kv)) b += pad(type.bytes(m[0] * m[1]));
        return b + (2L * layers + 1) * pad(4L * s.dim());
    }

    private static long pad(long n) {
        return (n + 31) / 32 * 32;
    }

    private static List<long[]> matrices(Shape s, int layers, long kv) {
        List<long[]> l = new ArrayList<>();
        l.add(new long[] {s.dim(), s.vocab()});
        for (int i = 0; i < layers; i++) {
            l.add(new long[] {s.dim(), s.dim()});
            l.add(new long[] {s.dim(), kv});
            l.add(new long[] {s.dim(), kv});
            l.add(new long[] {s.dim(), s.dim()});
            l.add(new long[] {s.dim(), s.hidden()});
            l.add(new long[] {s.dim(), s.hidden()});
            l.add(new long[] {s.hidden(), s.dim()});
        }
        l.add(new long[] {s.dim(), s.vocab()});
        return l;
    }

    /**
     * Writes {@code shape} with {@code layers} blocks in {@code type} to {@code out}, weights drawn from {@code seed};
     * {@code progress} hears the tensor bytes written so far.
     */
    public static void write(Shape shape, int layers, GgufFile.TensorType type, long seed, Path out, java.util.function.LongConsumer progress)
            throws IOException {
        if (!WEIGHTS.contains(type)) throw new IllegalArgumentException("weights " + type + ": a synthetic model has " + WEIGHTS);
        if (layers < 1) throw new IllegalArgumentException("layers " + layers + ": at least 1");
        if (shape.dim() % type.block != 0 || shape.hidden() % type.block != 0) {
            throw new IllegalArgumentException(shape.name() + " has rows of " + shape.dim() + " and " + shape.hidden() + " weights, not whole " + type + " blocks of "
                    + type.block);
        }
        long kv = (long) shape.dim() / shape.heads() * shape.kvHeads();
        GgufWriter w = new GgufWriter().put("general.architecture", "llama").put("general.name", "kvpc synthetic " + shape.name() + " (random weights)")
                .put("llama.embedding_length", shape.dim()).put("llama.feed_forward_length", shape.hidden()).put("llama.block_count", layers)
                .put("llama.attention.head_count", shape.heads()).put("llama.attention.head_count_kv", shape.kvHeads())
                .put("llama.context_length", shape.context()).put("llama.rope.dimension_count", shape.dim() / shape.heads())
                .put("llama.rope.freq_base", shape.ropeBase()).put("llama.attention.layer_norm_rms_epsilon", 1e-5f).put("llama.vocab_size", shape.vocab());
        vocabulary(w, shape.vocab());
        SplittableRandom root = new SplittableRandom(seed);
        int m = 0;
        List<long[]> mats = matrices(shape, layers, kv);
        w.tensor("token_embd.weight", type, type.bytes(mats.get(m)[0] * mats.get(m)[1]), random(type, mats.get(m++), root.split()), mats.get(0));
        String[] names = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
        for (int l = 0; l < layers; l++) {
            String b = "blk." + l + ".";
            w.tensor(b + "attn_norm.weight", GgufFile.TensorType.F32, ones(shape.dim()), shape.dim());
            w.tensor(b + "ffn_norm.weight", GgufFile.TensorType.F32, ones(shape.dim()), shape.dim());
            for (String n : names) {
                long[] d = mats.get(m++);
                w.tensor(b + n + ".weight", type, type.bytes(d[0] * d[1]), random(type, d, root.split()), d);
            }
        }
        w.tensor("output_norm.weight", GgufFile.TensorType.F32, ones(shape.dim()), shape.dim());
        long[] d = mats.get(m);
        w.tensor("output.weight", type, type.bytes(d[0] * d[1]), random(type, d, root.split()), d);
        w.write(out, progress);
    }

    private static float[] ones(int n) {
        float[] o = new float[n];
        java.util.Arrays.fill(o, 1f);
        return o;
    }

    /** A matrix's bytes, {@link #ROWS} rows a chunk, Gaussian weights encoded in {@code type}. */
    private static GgufWriter.Chunks random(GgufFile.TensorType type, long[] dims, SplittableRandom r) {
        int cols = (int) dims[0], rows = (int) dims[1];
        return new GgufWriter.Chunks() {
            public int chunks() {
                return (rows + ROWS - 1) / ROWS;
            }

            public byte[] chunk(int i) {
                int n = Math.min(ROWS, rows - i * ROWS);
                float[] v = new float[n * cols];
                for (int j = 0; j < v.length; j++) v[j] = (float) (r.nextGaussian() * 0.02);
                return GgufWriter.encode(type, v);
            }
        };
    }

    /**
     * A SentencePiece vocabulary of {@code size} tokens: {@code <unk>}, {@code <s>}, {@code </s>}, the 256 byte tokens,
     * then pieces of lower-case letters (each with and without the word-start mark), shorter ones scored higher.
     */
    static void vocabulary(GgufWriter w, int size) {
        List<String> tokens = new ArrayList<>(size);
        List<Float> scores = new ArrayList<>(size);
        List<Integer> types = new ArrayList<>(size);
        for (String c : new String[] {"<unk>", "<s>", "</s>"}) {
            tokens.add(c);
            scores.add(0f);
            types.add(c.equals("<unk>") ? 2 : 3);
        }
        for (int b = 0; b < 256 && tokens.size() < size; b++) {
            tokens.add(String.format("<0x%02X>", b));
            scores.add(0f);
            types.add(6);
        }
        List<String> pieces = new ArrayList<>(List.of("\u2581"));
        for (char c = ' ' + 1; c < 127; c++) pieces.add(String.valueOf(c));
        List<String> level = new ArrayList<>();
        for (char c = 'a'; c <= 'z'; c++) level.add(String.valueOf(c));
        for (String p : level) pieces.add("\u2581" + p);
        while (tokens.size() + pieces.size() < size) {
            // one letter longer, as many as fill the vocabulary (each with and without the word-start mark)
            int need = size - tokens.size() - pieces.size();
            List<String> next = new ArrayList<>();
            grow:
            for (String p : level) {
                for (char c = 'a'; c <= 'z'; c++) {
                    next.add(p + c);
                    if (2 * next.size() >= need) break grow;
                }
            }
            for (String p : next) {
                pieces.add(p);
                pieces.add("\u2581" + p);
            }
            level = next;
        }
        for (String p : pieces) {
            if (tokens.size() == size) break;
            scores.add((float) -tokens.size());
            tokens.add(p);
            types.add(1);
        }
        if (tokens.size() != size) throw new IllegalStateException("a vocabulary of " + tokens.size() + " tokens, not " + size);
        w.put("tokenizer.ggml.model", "llama").put("tokenizer.ggml.tokens", tokens).put("tokenizer.ggml.scores", scores)
                .put("tokenizer.ggml.token_type", types).put("tokenizer.ggml.bos_token_id", 1).put("tokenizer.ggml.eos_token_id", 2)
                .put("tokenizer.ggml.unknown_token_id", 0);
    }
}
