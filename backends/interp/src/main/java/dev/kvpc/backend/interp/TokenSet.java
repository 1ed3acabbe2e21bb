package dev.kvpc.backend.interp;

import dev.kvpc.ir.Axis;

import java.util.BitSet;

/**
 * A set of entry indices (domain TOKEN) or page indices (domain PAGE) per head: one bitset shared by all heads
 * unless the set is per head (per-layer selection), or one per query head of the lane's group ({@code queryHeads},
 * lane selection). {@code compensation} marks the lane's compensation entry as a member, whether or not it exists yet
 * (a merge into it creates it).
 */
record TokenSet(Axis domain, BitSet[] perHead, boolean compensation, LaneState.Entry[][] basis, boolean queryHeads) {
    /** A set whose indices refer to the lane's entries at the time it is defined (its basis is stamped then). */
    TokenSet(Axis domain, BitSet[] perHead, boolean compensation) {
        this(domain, perHead, compensation, null, false);
    }

    TokenSet(Axis domain, BitSet[] perHead, boolean compensation, LaneState.Entry[][] basis) {
        this(domain, perHead, compensation, basis, false);
    }

    /** A set with one bitset per query head of the lane's group. */
    static TokenSet perQueryHead(BitSet[] heads, boolean compensation) {
        return new TokenSet(Axis.TOKEN, heads, compensation, null, true);
    }

    static TokenSet of(Axis domain, BitSet bits) {
        return new TokenSet(domain, new BitSet[] {bits}, false);
    }

    TokenSet withBasis(LaneState.Entry[][] b) {
        return new TokenSet(domain, perHead, compensation, b, queryHeads);
    }

    BitSet forHead(int h) {
        return perHead.length == 1 ? perHead[0] : perHead[h];
    }

    int heads() {
        return perHead.length;
    }

    static TokenSet combine(TokenSet a, TokenSet b, java.util.function.BinaryOperator<BitSet> f, boolean compensation) {
        int n = Math.max(a.heads(), b.heads());
        BitSet[] out = new BitSet[n];
        for (int h = 0; h < n; h++) out[h] = f.apply((BitSet) a.forHead(h).clone(), b.forHead(h));
        return new TokenSet(a.domain(), out, compensation, null, a.queryHeads() || b.queryHeads());
    }
}
