package dev.kvpc.runtime.store;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static dev.kvpc.runtime.store.QuantOracle.assertSameBits;
import static org.junit.jupiter.api.Assertions.*;

class ChannelBlockCodecTest {
    private static final Precision[] INTS = {Precision.INT8, Precision.INT4, Precision.INT2};
    /** {headDim, group (tokens)}: KIVI's shape, quad paths (headDim % 4 == 0) and odd head dims. */
    private static final int[][] SHAPES = {{128, 32}, {64, 8}, {16, 5}, {12, 1}, {6, 4}, {7, 3}, {5, 2}, {1, 6}};

    private static float[][] block(Random rnd, int g, int d) {
        float[][] rows = new float[g][];
        for (int t = 0; t < g; t++) rows[t] = QuantOracle.awkwardRow(rnd, d);
        return rows;
    }

    private static float[] flat(float[][] rows, int pad) {
        int d = rows[0].length;
        float[] out = new float[pad + rows.length * d];
        for (int t = 0; t < rows.length; t++) System.arraycopy(rows[t], 0, out, pad + t * d, d);
        return out;
    }

    @Test
    void dequantisedRowsEqualTheInterpreterBitForBit() {
        Random rnd = new Random(21);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(1 << 14);
            for (Precision p : INTS) {
                for (int[] shape : SHAPES) {
                    int d = shape[0], g = shape[1];
                    ChannelBlockCodec codec = ChannelBlockCodec.of(new QuantSpec(p, QuantSpec.Axis.CHANNEL, g), d);
                    float[] zeros = new float[d], scales = new float[d], back = new float[d + 1], back2 = new float[d + 1];
                    for (int trial = 0; trial < 40; trial++) {
                        float[][] rows = block(rnd, g, d);
                        if (trial % 5 == 0) for (float[] r : rows) r[0] = rows[0][0]; // a flat channel
                        if (trial % 9 == 0) for (float[] r : rows) r[d - 1] = -0.0f;
                        float[][] expected = QuantOracle.channelBlock(rows, p.bits());
                        seg.fill((byte) rnd.nextInt());
                        long off = rnd.nextInt(40);
                        int pad = rnd.nextInt(3);
                        codec.quantise(flat(rows, pad), pad, seg, off);
                        codec.loadParams(seg, off, zeros, scales);
                        for (int t = 0; t < g; t++) {
                            String what = p + " d=" + d + " g=" + g + " t=" + t;
                            codec.readRow(seg, off, t, back, 1);
                            assertSameBits(expected[t], java.util.Arrays.copyOfRange(back, 1, d + 1), what);
                            codec.readRow(seg, off, t, back2, 1, zeros, scales);
                            assertSameBits(expected[t], java.util.Arrays.copyOfRange(back2, 1, d + 1), what + " (loaded params)");
                            for (int c = 0; c < d; c++) assertSameBits(expected[t][c], codec.get(seg, off, t, c), what + " c=" + c);
                        }
                    }
                }
            }
        }
    }

    @Test
    void dotAndAxpyFromPackedDataEqualTheSameOpsOnTheDequantisedRows() {
        Random rnd = new Random(22);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(1 << 14);
            for (Precision p : INTS) {
                for (int[] shape : SHAPES) {
                    int d = shape[0], g = shape[1];
                    ChannelBlockCodec codec = ChannelBlockCodec.of(new QuantSpec(p, QuantSpec.Axis.CHANNEL, g), d);
                    float[] zeros = new float[d], scales = new float[d];
                    for (int trial = 0; trial < 20; trial++) {
                        float[][] rows = block(rnd, g, d);
                        float[][] deq = QuantOracle.channelBlock(rows, p.bits());
                        long off = rnd.nextInt(40);
                        codec.quantise(flat(rows, 0), 0, seg, off);
                        int qOff = rnd.nextInt(4);
                        float[] q = QuantOracle.randomRow(rnd, d + qOff);
                        float[] scores = new float[g + 1];
                        codec.dotBlock(seg, off, q, qOff, scores, 1, zeros, scales);
                        float[] w = QuantOracle.randomRow(rnd, g + 2);
                        float[] acc = QuantOracle.randomRow(rnd, d + qOff), expectedAcc = acc.clone();
                        float[] accOneByOne = acc.clone(), accLoaded = acc.clone();
                        for (int t = 0; t < g; t++) {
                            String what = p + " d=" + d + " g=" + g + " t=" + t;
                            float expected = QuantOracle.dot4(q, qOff, deq[t]);
                            assertSameBits(expected, codec.dot(seg, off, t, q, qOff), what + " dot");
                            assertSameBits(expected, codec.dot(seg, off, t, q, qOff, zeros, scales), what + " dot (loaded params)");
                            assertSameBits(expected, scores[1 + t], what + " dotBlock");
                            QuantOracle.axpy(w[2 + t], deq[t], expectedAcc, qOff);
                            codec.axpy(seg, off, t, w[2 + t], accOneByOne, qOff);
                            codec.axpy(seg, off, t, w[2 + t], accLoaded, qOff, zeros, scales);
                        }
                        codec.axpyBlock(seg, off, w, 2, acc, qOff, zeros, scales);
                        assertSameBits(expectedAcc, accOneByOne, p + " axpy");
                        assertSameBits(expectedAcc, accLoaded, p + " axpy (loaded params)");
                        assertSameBits(expectedAcc, acc, p + " axpyBlock");
                    }
                }
            }
        }
    }

    @Test
    void quantisingRowsHeldAtAFloatPrecisionEqualsQuantisingTheirValues() {
        Random rnd = new Random(23);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(1 << 14), a = arena.allocate(1 << 12), b = arena.allocate(1 << 12);
            for (Precision hp : new Precision[] {Precision.F32, Precision.F16, Precision.BF16}) {
                for (Precision p : INTS) {
                    int d = 20, g = 6;
                    long stride = Packing.rowBytes(hp, d) + 3; // rows with gaps, as in a residual ring
                    ChannelBlockCodec codec = ChannelBlockCodec.of(new QuantSpec(p, QuantSpec.Axis.CHANNEL, g), d);
                    for (int trial = 0; trial < 20; trial++) {
                        float[][] rows = block(rnd, g, d);
                        float[] values = new float[g * d];
                        for (int t = 0; t < g; t++) {
                            Packing.writeRow(hp, rows[t], 0, d, host, 5 + t * stride);
                            Packing.readRow(hp, host, 5 + t * stride, values, t * d, d);
                        }
                        a.fill((byte) 0);
                        b.fill((byte) 0);
                        codec.quantise(hp, host, 5, stride, a, 1);
                        codec.quantise(values, 0, b, 1);
                        assertEquals(-1, a.mismatch(b), hp + " -> " + p);
                    }
                }
            }
        }
    }

    @Test
    void errorIsAtMostHalfAScalePlusTheF16RoundingOfScaleAndZero() {
        Random rnd = new Random(24);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(1 << 14);
            for (Precision p : INTS) {
                int levels = p.levels();
                for (int[] shape : SHAPES) {
                    int d = shape[0], g = shape[1];
                    ChannelBlockCodec codec = ChannelBlockCodec.of(new QuantSpec(p, QuantSpec.Axis.CHANNEL, g), d);
                    float[] back = new float[d];
                    for (int trial = 0; trial < 20; trial++) {
                        float[][] rows = new float[g][];
                        for (int t = 0; t < g; t++) rows[t] = QuantOracle.randomRow(rnd, d);
                        codec.quantise(flat(rows, 0), 0, seg, 0);
                        for (int c = 0; c < d; c++) {
                            double min = Double.POSITIVE_INFINITY, max = Double.NEGATIVE_INFINITY;
                            for (float[] r : rows) {
                                min = Math.min(min, r[c]);
                                max = Math.max(max, r[c]);
                            }
                            double zero = codec.zero(seg, 0, c), scale = codec.scale(seg, 0, c);
                            assertEquals(QuantOracle.f16((float) min), zero);
                            double bound = Math.abs(scale) / 2 + Math.abs(zero - min) + levels * Math.abs((max - zero) / levels - scale)
                                    + 8 * Math.ulp((float) Math.max(Math.abs(min), Math.abs(max)));
                            for (int t = 0; t < g; t++) {
                                codec.readRow(seg, 0, t, back, 0);
                                double err = Math.abs(rows[t][c] - back[c]);
                                assertTrue(err <= bound, p + " d=" + d + " g=" + g + ": error " + err + " > " + bound);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void layoutIsParamsPerChannelThenOnePackedRowPerToken() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(256);
            // 4 channels, 2 tokens, int2: channel c spans [0, 3 * (c + 1)] -> zero 0, scale c + 1
            float[] rows = {0, 0, 0, 0, 3, 6, 9, 12};
            ChannelBlockCodec codec = ChannelBlockCodec.of(new QuantSpec(Precision.INT2, QuantSpec.Axis.CHANNEL, 2), 4);
            assertEquals(4 * 4 + 2 * 1, codec.blockBytes());
            assertEquals(16, codec.rowOffset(0));
            assertEquals(17, codec.rowOffset(1));
            codec.quantise(rows, 0, seg, 3);
            for (int c = 0; c < 4; c++) {
                assertEquals(0f, codec.zero(seg, 3, c));
                assertEquals(c + 1f, codec.scale(seg, 3, c));
            }
            assertEquals(0x3C00, seg.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), 3 + 2) & 0xFFFF); // channel 0's scale 1.0
            assertEquals(0, seg.get(ValueLayout.JAVA_BYTE, 3 + 16));
            assertEquals((byte) 0xFF, seg.get(ValueLayout.JAVA_BYTE, 3 + 17)); // token 1: all codes 3
            // KIVI's block: 128 channels x 32 tokens at 2 bits = 512 B of scales + 32 x 32 B of codes
            ChannelBlockCodec kivi = ChannelBlockCodec.of(new QuantSpec(Precision.INT2, QuantSpec.Axis.CHANNEL, 32), 128);
            assertEquals(512, kivi.paramBytes());
            assertEquals(32, kivi.rowCodeBytes());
            assertEquals(512 + 32 * 32, kivi.blockBytes());
        }
    }

    @Test
    void specsAreChecked() {
        assertThrows(IllegalArgumentException.class, () -> ChannelBlockCodec.of(new QuantSpec(Precision.INT2, QuantSpec.Axis.TOKEN, 32), 128));
        assertThrows(IllegalArgumentException.class, () -> ChannelBlockCodec.of(new QuantSpec(Precision.F16, QuantSpec.Axis.CHANNEL, 32), 128));
        assertThrows(IllegalArgumentException.class, () -> ChannelBlockCodec.of(new QuantSpec(Precision.INT2, QuantSpec.Axis.CHANNEL, 32), 0));
        // per-channel groups span tokens, so they need not divide the head dimension
        assertEquals(3, ChannelBlockCodec.of(new QuantSpec(Precision.INT4, QuantSpec.Axis.CHANNEL, 3), 128).group());
    }
}
