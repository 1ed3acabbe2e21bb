package dev.kvpc.ir;

import java.util.List;

/** A sequence of instructions. */
public record Block(List<Instr> instrs) {
    public Block {
        instrs = List.copyOf(instrs);
    }

    public static final Block EMPTY = new Block(List.of());
}
