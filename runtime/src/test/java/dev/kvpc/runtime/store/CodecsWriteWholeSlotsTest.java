package dev.kvpc.runtime.store;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * Every codec writes every byte of the slot it is given (a row's {@code rowBytes}, a block's {@code blockBytes}),
 * whatever the slot held: a lane's chains take reused pages from the pool as they are, uncleared, and rely on this.
 * Each row or block is written over zeros and over a filler, and the two slots must match byte for byte.
 */
class CodecsWriteWholeSlotsTest {
    /** {headDim, group}: whole bytes of codes and a last byte only partly filled (odd dims at 2 and 4 bits). */
    private static final int[][] SHAPES = {{128, 32}, {64, 4}, {16, 8}, {24, 6}, {10, 5}, {7, 7}, {9, 9}, {5, 1}};

    @Test
    void rowCodecsWriteTheirWholeRow() {
        Random rnd = new Random(3);
        try (Arena arena = Arena.ofConfined()) {
            for (Precision p : Precision.values()) {
                for (int[] shape : SHAPES) {
                    int d = shape[0];
                    QuantSpec spec = p.isInteger() ? new QuantSpec(p, QuantSpec.Axis.TOKEN, shape[1]) : QuantSpec.of(p);
                    RowCodec codec = RowCodec.of(spec, d);
                    float[] row = QuantOracle.awkwardRow(rnd, d);
                    int n = (int) codec.rowBytes();
                    MemorySegment clean = arena.allocate(n), dirty = arena.allocate(n);
                    dirty.fill((byte) 0xA5);
                    codec.write(row, 0, clean, 0);
                    codec.write(row, 0, dirty, 0);
                    assertArrayEquals(clean.toArray(ValueLayout.JAVA_BYTE), dirty.toArray(ValueLayout.JAVA_BYTE), spec + " d=" + d);
                }
            }
        }
    }

    @Test
    void blockCodecWritesItsWholeBlock() {
        Random rnd = new Random(4);
        try (Arena arena = Arena.ofConfined()) {
            for (Precision p : new Precision[] {Precision.INT8, Precision.INT4, Precision.INT2}) {
                for (int[] shape : SHAPES) {
                    int d = shape[0], g = shape[1];
                    ChannelBlockCodec codec = ChannelBlockCodec.of(new QuantSpec(p, QuantSpec.Axis.CHANNEL, g), d);
                    float[] rows = new float[g * d];
                    for (int t = 0; t < g; t++) System.arraycopy(QuantOracle.awkwardRow(rnd, d), 0, rows, t * d, d);
                    int n = (int) codec.blockBytes();
                    MemorySegment clean = arena.allocate(n), dirty = arena.allocate(n);
                    dirty.fill((byte) 0xA5);
                    codec.quantise(rows, 0, clean, 0);
                    codec.quantise(rows, 0, dirty, 0);
                    assertArrayEquals(clean.toArray(ValueLayout.JAVA_BYTE), dirty.toArray(ValueLayout.JAVA_BYTE), p + " d=" + d + " g=" + g);
                }
            }
        }
    }
}
