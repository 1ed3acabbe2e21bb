package dev.kvpc.runtime.store;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static dev.kvpc.runtime.store.QuantOracle.assertSameBits;
import static org.junit.jupiter.api.Assertions.*;

class TokenGroupCodecTest {
    private static final Precision[] INTS = {Precision.INT8, Precision.INT4, Precision.INT2};
    /** {headDim, group}: quad fast paths (group % 4 == 0) and the element-wise path, odd dims, one group per channel. */
    private static final int[][] SHAPES = {{128, 32}, {128, 128}, {64, 4}, {16, 8}, {24, 6}, {12, 3}, {10, 5}, {7, 7}, {6, 1}, {9, 9}, {5, 1}};

    @Test
    void dequantisedRowsEqualTheInterpreterBitForBit() {
        Random rnd = new Random(11);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(1 << 12);
            int rows = 0;
            for (Precision p : INTS) {
                for (int[] shape : SHAPES) {
                    int d = shape[0], g = shape[1];
                    TokenGroupCodec codec = new TokenGroupCodec(new QuantSpec(p, QuantSpec.Axis.TOKEN, g), d);
                    for (int trial = 0; trial < 150; trial++) {
                        float[] x = QuantOracle.awkwardRow(rnd, d);
                        long off = rnd.nextInt(40);
                        seg.fill((byte) rnd.nextInt()); // garbage around and under the row must not matter
                        codec.write(x, seg, off);
                        float[] expected = QuantOracle.tokenGroups(x, g, p.bits());
                        float[] back = new float[d + 2];
                        codec.read(seg, off, back, 2);
                        assertSameBits(expected, java.util.Arrays.copyOfRange(back, 2, d + 2), p + " d=" + d + " g=" + g);
                        for (int i = 0; i < d; i++) assertSameBits(expected[i], codec.get(seg, off, i), "get " + i);
                        rows++;
                    }
                }
            }
            assertEquals(3 * SHAPES.length * 150, rows);
        }
    }

    @Test
    void dotAndAxpyFromPackedDataEqualTheSameOpsOnTheDequantisedRow() {
        Random rnd = new Random(12);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(1 << 12);
            for (Precision p : INTS) {
                for (int[] shape : SHAPES) {
                    int d = shape[0], g = shape[1];
                    RowCodec codec = RowCodec.of(new QuantSpec(p, QuantSpec.Axis.TOKEN, g), d);
                    for (int trial = 0; trial < 60; trial++) {
                        float[] x = QuantOracle.awkwardRow(rnd, d);
                        long off = rnd.nextInt(40);
                        codec.write(x, seg, off);
                        float[] deq = QuantOracle.tokenGroups(x, g, p.bits());
                        int qOff = rnd.nextInt(4);
                        float[] q = QuantOracle.randomRow(rnd, d + qOff);
                        assertSameBits(QuantOracle.dot4(q, qOff, deq), codec.dot(seg, off, q, qOff), p + " dot d=" + d + " g=" + g);
                        float w = (float) rnd.nextGaussian();
                        float[] acc = QuantOracle.randomRow(rnd, d + qOff), expected = acc.clone();
                        QuantOracle.axpy(w, deq, expected, qOff);
                        codec.axpy(seg, off, w, acc, qOff);
                        assertSameBits(expected, acc, p + " axpy d=" + d + " g=" + g);
                    }
                }
            }
        }
    }

    @Test
    void errorIsAtMostHalfAScalePlusTheF16RoundingOfScaleAndZero() {
        Random rnd = new Random(13);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(1 << 12);
            for (Precision p : INTS) {
                int levels = p.levels();
                for (int[] shape : SHAPES) {
                    int d = shape[0], g = shape[1];
                    TokenGroupCodec codec = new TokenGroupCodec(new QuantSpec(p, QuantSpec.Axis.TOKEN, g), d);
                    float[] back = new float[d];
                    for (int trial = 0; trial < 100; trial++) {
                        float[] x = QuantOracle.randomRow(rnd, d);
                        codec.write(x, seg, 0);
                        codec.read(seg, 0, back, 0);
                        for (int gi = 0; gi < d / g; gi++) {
                            double min = Double.POSITIVE_INFINITY, max = Double.NEGATIVE_INFINITY;
                            for (int i = gi * g; i < gi * g + g; i++) {
                                min = Math.min(min, x[i]);
                                max = Math.max(max, x[i]);
                            }
                            double zero = codec.zero(seg, 0, gi), scale = codec.scale(seg, 0, gi);
                            assertEquals(QuantOracle.f16((float) min), zero);
                            double exactScale = (max - zero) / levels;
                            double bound = Math.abs(scale) / 2 + Math.abs(zero - min) + levels * Math.abs(exactScale - scale)
                                    + 8 * Math.ulp((float) Math.max(Math.abs(min), Math.abs(max)));
                            for (int i = gi * g; i < gi * g + g; i++) {
                                double err = Math.abs(x[i] - back[i]);
                                assertTrue(err <= bound, p + " d=" + d + " g=" + g + ": |" + x[i] + " - " + back[i] + "| = " + err + " > " + bound);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void layoutIsZeroThenScalePerGroupThenLittleEndianCodes() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(64);
            // one group of 8 at int2: min 0, max 3 -> zero 0, scale 1, codes = the values
            float[] x = {0, 1, 2, 3, 3, 2, 1, 0};
            TokenGroupCodec int2 = new TokenGroupCodec(new QuantSpec(Precision.INT2, QuantSpec.Axis.TOKEN, 8), 8);
            assertEquals(4 + 2, int2.rowBytes());
            int2.write(x, seg, 1);
            assertEquals(0, seg.get(ValueLayout.JAVA_BYTE, 1)); // zero f16 0x0000
            assertEquals(0, seg.get(ValueLayout.JAVA_BYTE, 2));
            assertEquals(0x00, seg.get(ValueLayout.JAVA_BYTE, 3)); // scale f16 1.0 = 0x3C00
            assertEquals(0x3C, seg.get(ValueLayout.JAVA_BYTE, 4));
            assertEquals((byte) 0b11_10_01_00, seg.get(ValueLayout.JAVA_BYTE, 5)); // lowest bits first
            assertEquals((byte) 0b00_01_10_11, seg.get(ValueLayout.JAVA_BYTE, 6));
            // int4, two groups of 2: [1, 16] -> zero 1, scale 1, codes 0, 15; [-2, -2] -> flat: zero -2, scale 0, codes 0
            TokenGroupCodec int4 = new TokenGroupCodec(new QuantSpec(Precision.INT4, QuantSpec.Axis.TOKEN, 2), 4);
            assertEquals(8 + 2, int4.rowBytes());
            int4.write(new float[] {1, 16, -2, -2}, seg, 20);
            assertEquals(1f, int4.zero(seg, 20, 0));
            assertEquals(1f, int4.scale(seg, 20, 0));
            assertEquals(-2f, int4.zero(seg, 20, 1));
            assertEquals(0f, int4.scale(seg, 20, 1));
            assertEquals((byte) 0xF0, seg.get(ValueLayout.JAVA_BYTE, 28)); // low nibble first: code 0, then 15
            assertEquals((byte) 0x00, seg.get(ValueLayout.JAVA_BYTE, 29));
            float[] back = new float[4];
            int4.read(seg, 20, back, 0);
            assertArrayEquals(new float[] {1, 16, -2, -2}, back);
            // int8 with a group that straddles nothing: codes one per byte
            TokenGroupCodec int8 = new TokenGroupCodec(new QuantSpec(Precision.INT8, QuantSpec.Axis.TOKEN, 3), 3);
            int8.write(new float[] {0, 255, 100}, seg, 40);
            assertEquals(4 + 3, int8.rowBytes());
            assertEquals(0, seg.get(ValueLayout.JAVA_BYTE, 44));
            assertEquals((byte) 255, seg.get(ValueLayout.JAVA_BYTE, 45));
            assertEquals(100, seg.get(ValueLayout.JAVA_BYTE, 46));
        }
    }

    @Test
    void int2GroupsMayShareABytesWithoutDisturbingEachOther() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(64);
            // groups of 3 at int2: group 1's first two codes share byte 0 with group 0
            TokenGroupCodec codec = new TokenGroupCodec(new QuantSpec(Precision.INT2, QuantSpec.Axis.TOKEN, 3), 6);
            assertEquals(8 + 2, codec.rowBytes());
            float[] x = {0, 3, 1.5f, 30, 0, 3};
            codec.write(x, seg, 0);
            float[] back = new float[6];
            codec.read(seg, 0, back, 0);
            assertSameBits(QuantOracle.tokenGroups(x, 3, 2), back, "straddling groups");
            assertEquals(3, codec.get(seg, 0, 1));
            assertEquals(0, codec.get(seg, 0, 4));
            assertEquals(30, codec.get(seg, 0, 3));
        }
    }

    @Test
    void specsAreChecked() {
        assertThrows(IllegalArgumentException.class, () -> new TokenGroupCodec(new QuantSpec(Precision.INT4, QuantSpec.Axis.TOKEN, 3), 8));
        assertThrows(IllegalArgumentException.class, () -> new TokenGroupCodec(new QuantSpec(Precision.INT4, QuantSpec.Axis.CHANNEL, 32), 8));
        assertThrows(IllegalArgumentException.class, () -> new TokenGroupCodec(QuantSpec.of(Precision.F16), 8));
        assertThrows(IllegalArgumentException.class, () -> RowCodec.of(new QuantSpec(Precision.INT2, QuantSpec.Axis.CHANNEL, 32), 128));
        assertInstanceOf(TokenGroupCodec.class, RowCodec.of(new QuantSpec(Precision.INT2, QuantSpec.Axis.TOKEN, 32), 128));
        assertInstanceOf(FloatRowCodec.class, RowCodec.of(new QuantSpec(Precision.BF16, QuantSpec.Axis.CHANNEL, 32), 128));
    }
}
