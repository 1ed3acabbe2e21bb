package dev.kvpc.ir;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The text form of a specialised program reads back; malformed text is refused with the line it is on. */
class SpecializedParseTest {
    static Specialized sample() {
        PolicyIr full = new PolicyIr("keep_all", List.of(), PolicyIr.Positions.ORIGINAL, PolicyIr.Selection.LANE, List.of(), List.of(),
                Block.EMPTY, List.of(), List.of(), null);
        return new Specialized("demo", new LaneShape(3, 4, 2, 16), List.of(full), new int[][] {{0, 0}, {0, -1}, {-1, -1}}, null);
    }

    @Test
    void roundTrip() {
        Specialized s = sample();
        Specialized back = Specialized.parse(s.print());
        assertEquals(s.print(), back.print());
        assertArrayEquals(s.classOf()[1], back.classOf()[1]);
        assertEquals(s.shape(), back.shape());
    }

    @Test
    void errorsNameTheLine() {
        String text = sample().print();
        var e = assertThrows(IrParser.IrParseException.class, () -> Specialized.parse(text.replace("kv_heads=2", "kv_heads=two")));
        assertEquals(1, e.line);
        e = assertThrows(IrParser.IrParseException.class, () -> Specialized.parse(text.replace("lanes layer 1: #0 full", "lanes layer 1: #0")));
        assertEquals(3, e.line, e.getMessage());
        e = assertThrows(IrParser.IrParseException.class, () -> Specialized.parse(text.replaceFirst("lanes layer 2: all full\n", "")));
        assertTrue(e.getMessage().contains("no lanes line for layer 2"), e.getMessage());
        e = assertThrows(IrParser.IrParseException.class, () -> Specialized.parse("policy x\n"));
        assertEquals(1, e.line);
    }
}
