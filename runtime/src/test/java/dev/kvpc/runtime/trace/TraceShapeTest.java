package dev.kvpc.runtime.trace;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class TraceShapeTest {

    @Test
    void groupsQueryHeadsOntoKvHeads() {
        TraceShape gqa = new TraceShape(2, 8, 2, 64);
        assertEquals(4, gqa.group());
        assertEquals(0, gqa.kvHeadOf(3));
        assertEquals(1, gqa.kvHeadOf(4));
        assertEquals(128, gqa.kvWidth());
        assertEquals(512, gqa.qWidth());
        assertEquals(0, new TraceShape(1, 8, 1, 4).kvHeadOf(7), "MQA: every head reads KV head 0");
        assertEquals(5, new TraceShape(1, 8, 8, 4).kvHeadOf(5), "MHA: head h reads KV head h");
        assertThrows(IndexOutOfBoundsException.class, () -> gqa.kvHeadOf(8));
        assertEquals("layers=2 heads=8 kv_heads=2 head_dim=64", gqa.toString());
    }

    @Test
    void rejectsImpossibleShapes() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new TraceShape(0, 1, 1, 1)).getMessage()
                .contains("layers=0"));
        assertThrows(IllegalArgumentException.class, () -> new TraceShape(1, -2, 1, 1));
        assertThrows(IllegalArgumentException.class, () -> new TraceShape(1, 2, 0, 1));
        assertThrows(IllegalArgumentException.class, () -> new TraceShape(1, 2, 1, 0));
        String m = assertThrows(IllegalArgumentException.class, () -> new TraceShape(1, 6, 4, 8)).getMessage();
        assertTrue(m.contains("heads=6") && m.contains("kv_heads=4"), m);
        assertThrows(IllegalArgumentException.class, () -> new TraceShape(1, 65536, 1, 32768), "2^31 floats per token");
        assertEquals(Integer.MAX_VALUE - 32767, new TraceShape(1, 32768, 32768, 65535).qWidth());
    }
}
