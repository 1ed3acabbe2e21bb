package dev.kvpc.ir;

/** A block that computes one value: parameter defaults, budgets, periods, sizes, guards, arguments. */
public record Computation(Block block, int result) {
    public Computation {
        boolean defined = block.instrs().stream().anyMatch(i -> i instanceof Instr.Def d && d.id() == result);
        if (!defined) throw new IllegalArgumentException("computation result %" + result + " is not defined in its block");
    }
}
