package dev.kvpc.bench;

import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;

import java.util.Random;

/** Lanes the decode benchmarks share: their formats by name, lanes of random entries, and random rows. */
final class Lanes {
    private Lanes() {}

    /** {@code f32}, or {@code int4} / {@code int2} quantised per token in groups of 32 channels. */
    static QuantSpec spec(String precision, int headDim) {
        return switch (precision) {
            // groups of 32 channels, or the whole head where it is narrower (as the stdlib's KIVI)
            case "int4" -> QuantSpec.resolve(Precision.INT4, QuantSpec.Axis.TOKEN, Math.min(32, headDim), headDim);
            case "int2" -> QuantSpec.resolve(Precision.INT2, QuantSpec.Axis.TOKEN, Math.min(32, headDim), headDim);
            case "f32" -> QuantSpec.of(Precision.F32);
            default -> throw new IllegalArgumentException("precision " + precision + ": f32, int4 or int2");
        };
    }

    /** A lane of {@code n} entries (256 rows a page) with keys and values drawn from {@code r}'s Gaussian, at {@code host}. */
    static Lane random(PagePool pool, int headDim, QuantSpec host, int n, Random r) {
        Lane lane = new Lane(pool, headDim, host, 256);
        float[] k = new float[headDim], v = new float[headDim];
        for (int j = 0; j < n; j++) {
            for (int c = 0; c < headDim; c++) {
                k[c] = (float) r.nextGaussian();
                v[c] = (float) r.nextGaussian();
            }
            lane.append(j, j, k, 0, v, 0);
        }
        return lane;
    }

    /**
     * Stores a lane as the stdlib's KIVI at 2 bits leaves it: keys per channel in blocks of 32 entries and values per
     * token in groups of {@code min(32, head dim)}, all but the last 128 entries, which stay as they are.
     */
    static void kivi(Lane lane) {
        int d = lane.headDim(), n = lane.size();
        QuantSpec blocks = QuantSpec.resolve(Precision.INT2, QuantSpec.Axis.CHANNEL, 32, d), rows = QuantSpec.resolve(Precision.INT2, QuantSpec.Axis.TOKEN, Math.min(32, d), d);
        for (int b = 0; (b + 1) * 32 <= n - 128; b++) {
            int[] e = new int[32];
            for (int t = 0; t < 32; t++) e[t] = b * 32 + t;
            lane.packBlock(e, Lane.Part.KEYS, blocks);
        }
        for (int j = 0; j < n - 128; j++) lane.restore(j, Lane.Part.VALUES, rows);
    }

    /** {@code n} floats drawn from {@code r}'s Gaussian. */
    static float[] gaussian(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian();
        return a;
    }
}
