package dev.kvpc.runtime.store;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;

import static dev.kvpc.runtime.store.QuantOracle.assertSameBits;
import static org.junit.jupiter.api.Assertions.*;

class PackingTest {
    private static final Precision[] FLOATS = {Precision.F32, Precision.F16, Precision.BF16};

    private static float ref(Precision p, float x) {
        return switch (p) {
            case F32 -> x;
            case F16 -> QuantOracle.f16(x);
            case BF16 -> QuantOracle.bf16(x);
            default -> throw new AssertionError();
        };
    }

    @Test
    void roundTripsEqualTheInterpreterBitForBit() {
        Random rnd = new Random(1);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(4096);
            for (Precision p : FLOATS) {
                for (int trial = 0; trial < 300; trial++) {
                    int n = 1 + rnd.nextInt(70);
                    float[] x = QuantOracle.awkwardRow(rnd, n);
                    if (trial % 7 == 0) x[rnd.nextInt(n)] = Float.intBitsToFloat(rnd.nextInt()); // any bit pattern
                    long off = rnd.nextInt(64); // unaligned too
                    FloatRowCodec codec = new FloatRowCodec(p, n);
                    codec.write(x, seg, off);
                    float[] back = new float[n];
                    codec.read(seg, off, back);
                    float[] expected = new float[n];
                    for (int i = 0; i < n; i++) expected[i] = ref(p, x[i]);
                    assertSameBits(expected, back, p + " n=" + n);
                    for (int i = 0; i < n; i++) assertSameBits(expected[i], Packing.get(p, seg, off, i), p + " get " + i);
                }
            }
        }
    }

    @Test
    void f32RoundTripIsExactIncludingRawBits() {
        Random rnd = new Random(2);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(4 * 257);
            float[] x = new float[256];
            for (int i = 0; i < x.length; i++) {
                int bits = rnd.nextInt();
                x[i] = Float.isNaN(Float.intBitsToFloat(bits)) ? (float) rnd.nextGaussian() : Float.intBitsToFloat(bits);
            }
            x[0] = -0.0f;
            x[1] = Float.MIN_VALUE;
            x[2] = Float.MAX_VALUE;
            x[3] = Float.NEGATIVE_INFINITY;
            Packing.writeRow(Precision.F32, x, 0, x.length, seg, 3);
            float[] back = new float[x.length];
            Packing.readRow(Precision.F32, seg, 3, back, 0, x.length);
            for (int i = 0; i < x.length; i++) assertEquals(Float.floatToRawIntBits(x[i]), Float.floatToRawIntBits(back[i]), "element " + i);
        }
    }

    @Test
    void f16AndBf16RelativeErrorBounds() {
        Random rnd = new Random(3);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(2 * 1000);
            float[] x = new float[1000], back = new float[1000];
            // f16: normal range [2^-14, 65504]; relative error at most 2^-11 (half an ulp of an 11-bit significand)
            for (int i = 0; i < x.length; i++) x[i] = (float) ((rnd.nextBoolean() ? 1 : -1) * Math.pow(2, -14 + rnd.nextDouble() * 29.9));
            Packing.writeRow(Precision.F16, x, 0, x.length, seg, 0);
            Packing.readRow(Precision.F16, seg, 0, back, 0, x.length);
            for (int i = 0; i < x.length; i++) assertTrue(Math.abs(x[i] - back[i]) <= 0x1p-11 * Math.abs(x[i]), x[i] + " -> " + back[i]);
            // f16 subnormals: absolute error at most half the subnormal step 2^-24
            for (int i = 0; i < x.length; i++) x[i] = (float) (rnd.nextGaussian() * 0x1p-16);
            Packing.writeRow(Precision.F16, x, 0, x.length, seg, 0);
            Packing.readRow(Precision.F16, seg, 0, back, 0, x.length);
            for (int i = 0; i < x.length; i++) assertTrue(Math.abs(x[i] - back[i]) <= 0x1p-25 + 0x1p-11 * Math.abs(x[i]), x[i] + " -> " + back[i]);
            // bf16: 8-bit significand, relative error at most 2^-8, over most of the float range
            for (int i = 0; i < x.length; i++) x[i] = (float) ((rnd.nextBoolean() ? 1 : -1) * Math.pow(2, -120 + rnd.nextDouble() * 240));
            Packing.writeRow(Precision.BF16, x, 0, x.length, seg, 0);
            Packing.readRow(Precision.BF16, seg, 0, back, 0, x.length);
            for (int i = 0; i < x.length; i++) assertTrue(Math.abs(x[i] - back[i]) <= 0x1p-8 * Math.abs(x[i]), x[i] + " -> " + back[i]);
        }
    }

    @Test
    void roundingIsToNearestEven() {
        // bf16: 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1); 1 + 3 * 2^-8 ties up to 1 + 2^-6
        assertEquals(1f, Packing.bf16(1f + 0x1p-8f));
        assertEquals(1f + 0x1p-6f, Packing.bf16(1f + 3 * 0x1p-8f));
        assertEquals(1f + 0x1p-7f, Packing.bf16(1f + 0x1p-8f + 0x1p-20f));
        assertEquals(Float.POSITIVE_INFINITY, Packing.bf16(Float.MAX_VALUE));
        // f16: 1 + 2^-11 ties to 1, 65520 overflows to infinity
        assertEquals(1f, Packing.f16(1f + 0x1p-11f));
        assertEquals(Float.POSITIVE_INFINITY, Packing.f16(65520f));
        // a NaN whose payload lies only in the low half stays NaN at bf16 (truncation would give infinity)
        float nan = Float.intBitsToFloat(0xFF800001);
        assertTrue(Float.isNaN(Packing.bf16ToFloat(Packing.bf16Bits(nan))));
        assertTrue(Packing.bf16ToFloat(Packing.bf16Bits(nan)) != Float.NEGATIVE_INFINITY);
        assertEquals(-0.0f, Packing.bf16ToFloat(Packing.bf16Bits(-0.0f)));
        assertEquals(0x8000, Packing.bf16Bits(-0.0f) & 0xFFFF);
    }

    @Test
    void layoutIsLittleEndianAtTheElementOffset() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(64);
            float[] x = {1.5f, -2f, 3.25f};
            Packing.writeRow(Precision.F16, x, 0, 3, seg, 1);
            assertEquals(0x3E00, seg.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 1) & 0xFFFF);
            assertEquals((byte) 0x00, seg.get(ValueLayout.JAVA_BYTE, 1));
            assertEquals((byte) 0x3E, seg.get(ValueLayout.JAVA_BYTE, 2));
            assertEquals((byte) 0xC0, seg.get(ValueLayout.JAVA_BYTE, 4)); // -2 = 0xC000
            Packing.writeRow(Precision.BF16, x, 0, 3, seg, 10);
            assertEquals((byte) 0xC0, seg.get(ValueLayout.JAVA_BYTE, 10)); // 1.5f = 0x3FC00000 -> 0x3FC0
            assertEquals((byte) 0x3F, seg.get(ValueLayout.JAVA_BYTE, 11));
            Packing.writeRow(Precision.F32, x, 0, 3, seg, 20);
            assertEquals(Float.floatToRawIntBits(-2f), seg.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 24));
            assertEquals(12, Packing.rowBytes(Precision.F32, 3));
            assertEquals(6, Packing.rowBytes(Precision.F16, 3));
            assertEquals(6, Packing.rowBytes(Precision.BF16, 3));
            assertThrows(IllegalArgumentException.class, () -> Packing.rowBytes(Precision.INT4, 3));
            assertThrows(IllegalArgumentException.class, () -> Packing.writeRow(Precision.INT8, x, 0, 3, seg, 0));
        }
    }

    @Test
    void dotAndAxpyEqualTheSameOpsOnTheReadBackRow() {
        Random rnd = new Random(4);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(4096);
            for (Precision p : FLOATS) {
                for (int trial = 0; trial < 200; trial++) {
                    int n = 1 + rnd.nextInt(70), qOff = rnd.nextInt(3);
                    float[] x = QuantOracle.randomRow(rnd, n), q = QuantOracle.randomRow(rnd, n + qOff);
                    RowCodec codec = RowCodec.of(QuantSpec.of(p), n);
                    long off = rnd.nextInt(32);
                    codec.write(x, seg, off);
                    float[] back = new float[n];
                    codec.read(seg, off, back);
                    assertSameBits(QuantOracle.dot4(q, qOff, back), codec.dot(seg, off, q, qOff), p + " dot n=" + n);
                    float w = (float) rnd.nextGaussian();
                    float[] acc = QuantOracle.randomRow(rnd, n + qOff), expected = acc.clone();
                    QuantOracle.axpy(w, back, expected, qOff);
                    codec.axpy(seg, off, w, acc, qOff);
                    assertSameBits(expected, acc, p + " axpy n=" + n);
                }
            }
        }
    }

    @Test
    void readingPastTheSegmentFails() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(15);
            float[] row = new float[8];
            assertThrows(IndexOutOfBoundsException.class, () -> Packing.writeRow(Precision.F16, row, 0, 8, seg, 0));
            assertThrows(IndexOutOfBoundsException.class, () -> Packing.dot(Precision.F32, seg, 0, row, 0, 4));
        }
    }
}
