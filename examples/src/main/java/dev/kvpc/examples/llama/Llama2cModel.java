package dev.kvpc.examples.llama;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A llama2.c checkpoint (the legacy "v0" layout: seven int32 header fields, then float32 weights in a fixed order).
 * Matrices are row-major [out][in], as llama2.c's matmul reads them.
 */
public final class Llama2cModel {
    public final int dim, hidden, layers, heads, kvHeads, vocab, seqLen, headSize, kvDim;
    public final boolean sharedClassifier;
    public final float[] embedding, rmsFinal, classifier;
    public final float[][] rmsAtt, wq, wk, wv, wo, rmsFfn, w1, w2, w3;

    private Llama2cModel(int[] h, FloatBuffer f, Path file) throws ModelFormatException {
        dim = h[0];
        hidden = h[1];
        layers = h[2];
        heads = h[3];
        kvHeads = h[4];
        sharedClassifier = h[5] > 0;
        vocab = Math.abs(h[5]);
        seqLen = h[6];
        if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || vocab <= 0 || seqLen <= 0 || dim % heads != 0 || heads % kvHeads != 0) {
            throw new ModelFormatException(file + ": not a llama2.c checkpoint (header dim=" + dim + " hidden=" + hidden + " layers=" + layers
                    + " heads=" + heads + " kv_heads=" + kvHeads + " vocab=" + h[5] + " seq_len=" + seqLen + ")");
        }
        headSize = dim / heads;
        kvDim = kvHeads * headSize;
        long need = (long) vocab * dim + (long) layers * (2L * dim + (long) dim * dim * 2 + 2L * dim * kvDim + 3L * dim * hidden) + dim
                + (long) seqLen * headSize + (sharedClassifier ? 0 : (long) vocab * dim);
        if (f.remaining() < need) {
            throw new ModelFormatException(file + ": truncated: the header asks for " + need + " weights, the file holds " + f.remaining());
        }
        embedding = take(f, (long) vocab * dim);
        rmsAtt = take(f, layers, dim);
        wq = take(f, layers, dim * dim);
        wk = take(f, layers, dim * kvDim);
        wv = take(f, layers, dim * kvDim);
        wo = take(f, layers, dim * dim);
        rmsFfn = take(f, layers, dim);
        w1 = take(f, layers, dim * hidden);
        w2 = take(f, layers, dim * hidden);
        w3 = take(f, layers, dim * hidden);
        rmsFinal = take(f, dim);
        f.position(f.position() + seqLen * headSize); // freq_cis_real and _imag (seq_len x head_size/2 each): unused
        classifier = sharedClassifier ? embedding : take(f, (long) vocab * dim);
    }

    public static Llama2cModel load(Path file) throws ModelFormatException {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot read: " + e.getMessage());
        }
        if (bytes.length < 28) throw new ModelFormatException(file + ": truncated: " + bytes.length + " bytes, less than the 28-byte header");
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int[] h = new int[7];
        for (int i = 0; i < 7; i++) h[i] = b.getInt();
        return new Llama2cModel(h, b.slice().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer(), file);
    }

    private static float[] take(FloatBuffer f, long n) {
        float[] a = new float[Math.toIntExact(n)];
        f.get(a);
        return a;
    }

    private static float[][] take(FloatBuffer f, int layers, int n) {
        float[][] a = new float[layers][];
        for (int l = 0; l < layers; l++) a[l] = take(f, n);
        return a;
    }
}
