package dev.kvpc.runtime.store;

import org.junit.jupiter.api.Test;

import static dev.kvpc.runtime.store.QuantSpec.Axis.CHANNEL;
import static dev.kvpc.runtime.store.QuantSpec.Axis.TOKEN;
import static org.junit.jupiter.api.Assertions.*;

class QuantSpecTest {
    @Test
    void precisionsKnowTheirBits() {
        assertEquals(32, Precision.F32.bits());
        assertEquals(16, Precision.F16.bits());
        assertEquals(16, Precision.BF16.bits());
        assertEquals(8, Precision.INT8.bits());
        assertEquals(4, Precision.INT4.bits());
        assertEquals(2, Precision.INT2.bits());
        assertEquals(255, Precision.INT8.levels());
        assertEquals(15, Precision.INT4.levels());
        assertEquals(3, Precision.INT2.levels());
        assertThrows(IllegalStateException.class, Precision.F16::levels);
        assertFalse(Precision.BF16.isInteger());
        assertTrue(Precision.INT2.isInteger());
        assertEquals(Precision.INT4, Precision.ofIntBits(4));
        assertThrows(IllegalArgumentException.class, () -> Precision.ofIntBits(3));
        assertEquals(3, Precision.INT2.packedBytes(9));
        assertEquals(0, Precision.INT4.packedBytes(0));
    }

    @Test
    void groupsAreValidated() {
        assertThrows(IllegalArgumentException.class, () -> new QuantSpec(Precision.INT2, TOKEN, 0));
        assertThrows(IllegalArgumentException.class, () -> new QuantSpec(Precision.INT2, CHANNEL, -1));
        assertThrows(NullPointerException.class, () -> new QuantSpec(null, TOKEN, 1));
        assertThrows(IllegalArgumentException.class, () -> new QuantSpec(Precision.INT4, TOKEN, 48).validate(128));
        assertDoesNotThrow(() -> new QuantSpec(Precision.INT4, TOKEN, 32).validate(128));
        assertDoesNotThrow(() -> new QuantSpec(Precision.INT4, CHANNEL, 48).validate(128)); // spans tokens
        assertThrows(IllegalArgumentException.class, () -> new QuantSpec(Precision.INT4, CHANNEL, 32).validate(0));
        assertThrows(IllegalArgumentException.class, () -> QuantSpec.of(Precision.INT8));
        assertEquals("int2 per channel group 32", new QuantSpec(Precision.INT2, CHANNEL, 32).toString());
        assertEquals("bf16", QuantSpec.of(Precision.BF16).toString());
    }

    @Test
    void leftOutGroupsTakeTheInterpretersDefaults() {
        assertEquals(new QuantSpec(Precision.INT4, TOKEN, 128), QuantSpec.resolve(Precision.INT4, TOKEN, 0, 128));
        assertEquals(new QuantSpec(Precision.INT2, CHANNEL, 32), QuantSpec.resolve(Precision.INT2, CHANNEL, -1, 128));
        assertEquals(new QuantSpec(Precision.INT2, CHANNEL, 16), QuantSpec.resolve(Precision.INT2, CHANNEL, 16, 128));
        assertThrows(IllegalArgumentException.class, () -> QuantSpec.resolve(Precision.INT2, TOKEN, 48, 128));
    }
}
