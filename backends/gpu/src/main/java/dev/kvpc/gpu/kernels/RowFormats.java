package dev.kvpc.gpu.kernels;

import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;
import dev.kvpc.runtime.store.ChannelBlockCodec;
import dev.kvpc.runtime.store.RowCodec;

import java.util.List;

/**
 * Kernel IR text that reads the runtime's row formats in place from device pages: the layouts of
 * {@link dev.kvpc.runtime.store.FloatRowCodec} (f32, f16, bf16) and {@link dev.kvpc.runtime.store.TokenGroupCodec}
 * (int8, int4, int2 per token: f16 zero point and scale per group, then the codes, lowest bits first) and
 * {@link dev.kvpc.runtime.store.ChannelBlockCodec} (KIVI's keys: blocks of {@code group} tokens, one block a page, an
 * f16 zero point and scale per channel, then each token's codes), with the same dequantisation
 * ({@code zero + code * scale}, a zero or non-finite scale read as -0, as {@code Packing.readScale}).
 *
 * <p>Chain {@code i}'s pages are one device buffer seen as bytes {@code rb<i>}, floats {@code rf<i>} and halves
 * {@code rh<i>}, with its page table {@code pt<i>}; slot {@code s} starts at byte
 * {@code pt<i>[s / RPP] * pageBytes + (s % RPP) * rowBytes}; in a chain of blocks, slot {@code s} is token
 * {@code s % group} of the block at {@code pt<i>[s / group] * pageBytes}.
 */
final class RowFormats {
    private RowFormats() {
    }

    /** Bytes of one page of a chain of {@code spec}: {@code rowsPerPage} rows, or one block of rows quantised per channel. */
    static long pageBytes(QuantSpec spec, int headDim, int rowsPerPage) {
        if (spec.quantised() && spec.axis() == QuantSpec.Axis.CHANNEL) return ChannelBlockCodec.of(spec, headDim).blockBytes();
        return RowCodec.of(spec, headDim).rowBytes() * rowsPerPage;
    }

    /** The parameters of chains {@code 0 .. n-1}, then the slot and chain tables. */
    static String params(int n) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < n; i++) sb.append("buffer uchar rb").append(i).append(", buffer float rf").append(i).append(", buffer half rh").append(i)
                .append(", buffer int pt").append(i).append(", ");
        return sb.append("buffer int slots, buffer int chains").toString();
    }

    /**
     * Statements that locate part {@code part} (0 keys, 1 values) of entry {@code j}: {@code <p>c} its chain,
     * {@code <p>b} its row's first byte (in a chain of blocks: its block's), {@code <p>t} its token in a block.
     */
    static String entry(String p, int part, List<QuantSpec> chains, int headDim, int rowsPerPage) {
        StringBuilder sb = new StringBuilder();
        sb.append("let int ").append(p).append("c = chains[((2 * j) + ").append(part).append(")];\n");
        sb.append("let int ").append(p).append("s = slots[((2 * j) + ").append(part).append(")];\n");
        sb.append("let int ").append(p).append("b = 0;\n");
        sb.append("let int ").append(p).append("t = 0;\n");
        for (int i = 0; i < chains.size(); i++) {
            QuantSpec spec = chains.get(i);
            long page = pageBytes(spec, headDim, rowsPerPage);
            check(page);
            sb.append("if (").append(p).append("c == ").append(i).append(") {\n");
            if (spec.quantised() && spec.axis() == QuantSpec.Axis.CHANNEL) {
                int group = spec.group();
                sb.append("  ").append(p).append("b = (pt").append(i).append("[(").append(p).append("s / ").append(group).append(")] * ").append(page).append(");\n");
                sb.append("  ").append(p).append("t = (").append(p).append("s % ").append(group).append(");\n");
            } else {
                long row = RowCodec.of(spec, headDim).rowBytes();
                sb.append("  ").append(p).append("b = ((pt").append(i).append("[(").append(p).append("s / ").append(rowsPerPage).append(")] * ").append(page)
                        .append(") + ((").append(p).append("s % ").append(rowsPerPage).append(") * ").append(row).append("));\n");
            }
            sb.append("}\n");
        }
        return sb.toString();
    }

    /** Statements that read element {@code c} of the row located by {@link #entry} into float {@code x}. */
    static String element(String p, String x, List<QuantSpec> chains, int headDim) {
        return element(p, x, chains, headDim, "c");
    }

    /** As above, element {@code chan} (an int variable or expression). */
    static String element(String p, String x, List<QuantSpec> chains, int headDim, String chan) {
        StringBuilder sb = new StringBuilder("let float ").append(x).append(" = 0.0f;\n");
        for (int i = 0; i < chains.size(); i++) {
            sb.append("if (").append(p).append("c == ").append(i).append(") {\n");
            sb.append(read(chains.get(i), i, p + "b", p + "t", x, headDim, chan));
            sb.append("}\n");
        }
        return sb.toString();
    }

    /**
     * Statements that read element {@code c} of the key row into {@code kx}, rotated by the entry's index as
     * {@code Rope.rotate} rotates it (pairs of neighbouring channels; the cosines and sines from {@code rope}, position
     * {@code p}'s at {@code p * D}); for lanes of {@code positions cache}.
     */
    static String rotatedKey(List<QuantSpec> chains, int headDim) {
        return "let int c0 = ((c >> 1) << 1);\n"
                + element("k", "kr0", chains, headDim, "c0")
                + element("k", "kr1", chains, headDim, "(c0 + 1)")
                + "let float rc = rope[((j * D) + c0)];\n"
                + "let float rs = rope[(((j * D) + c0) + 1)];\n"
                + "let float kx = select(((c & 1) == 0), ((kr0 * rc) - (kr1 * rs)), ((kr0 * rs) + (kr1 * rc)));\n";
    }

    private static String read(QuantSpec spec, int i, String b, String t, String x, int d, String c) {
        if (!spec.quantised()) {
            return switch (spec.precision()) {
                case F32 -> "  " + x + " = rf" + i + "[((" + b + " >> 2) + " + c + ")];\n";
                case F16 -> "  " + x + " = rh" + i + "[((" + b + " >> 1) + " + c + ")];\n";
                case BF16 -> "  let int lo = rb" + i + "[(" + b + " + (2 * " + c + "))];\n  let int hi = rb" + i + "[((" + b + " + (2 * " + c + ")) + 1)];\n"
                        + "  " + x + " = (as_float((((hi & 127) << 24) | (lo << 16))) * select((hi >= 128), -1.0f, 1.0f));\n";
                default -> throw new IllegalArgumentException(spec.toString());
            };
        }
        if (spec.axis() == QuantSpec.Axis.CHANNEL) return readBlock(spec, i, b, t, x, d, c);
        int bits = spec.precision().bits(), group = spec.group(), groups = d / group, mask = (1 << bits) - 1;
        StringBuilder sb = new StringBuilder();
        sb.append("  let int grp = (").append(c).append(" / ").append(group).append(");\n");
        sb.append("  let int zo = (").append(b).append(" + (4 * grp));\n");
        sb.append(f16("zero", "rb" + i, "zo"));
        sb.append("  let int so = (zo + 2);\n");
        sb.append(f16("s0", "rb" + i, "so"));
        sb.append("  let float sc = select((((s0 == 0.0f) || (fabs(s0) == inf)) || (s0 != s0)), -0.0f, s0);\n");
        sb.append("  let int bit = (").append(c).append(" * ").append(bits).append(");\n");
        sb.append("  let int code = ((rb").append(i).append("[((").append(b).append(" + ").append(4 * groups).append(") + (bit >> 3))] >> (bit & 7)) & ")
                .append(mask).append(");\n");
        sb.append("  ").append(x).append(" = (zero + (float(code) * sc));\n");
        return sb.toString();
    }

    /** Token {@code t} of the block at byte {@code b}, channel {@code c}: the channel's zero point and scale, then the code. */
    private static String readBlock(QuantSpec spec, int i, String b, String t, String x, int d, String c) {
        ChannelBlockCodec codec = ChannelBlockCodec.of(spec, d);
        int bits = spec.precision().bits(), mask = (1 << bits) - 1;
        StringBuilder sb = new StringBuilder();
        sb.append("  let int zo = (").append(b).append(" + (4 * ").append(c).append("));\n");
        sb.append(f16("zero", "rb" + i, "zo"));
        sb.append("  let int so = (zo + 2);\n");
        sb.append(f16("s0", "rb" + i, "so"));
        sb.append("  let float sc = select((((s0 == 0.0f) || (fabs(s0) == inf)) || (s0 != s0)), -0.0f, s0);\n");
        sb.append("  let int bit = (").append(c).append(" * ").append(bits).append(");\n");
        sb.append("  let int code = ((rb").append(i).append("[(((").append(b).append(" + ").append(codec.paramBytes()).append(") + (").append(t).append(" * ")
                .append(codec.rowCodeBytes()).append(")) + (bit >> 3))] >> (bit & 7)) & ").append(mask).append(");\n");
        sb.append("  ").append(x).append(" = (zero + (float(code) * sc));\n");
        return sb.toString();
    }

    /** Statements that read the little-endian f16 at byte {@code off} of {@code array} into float {@code name}. */
    private static String f16(String name, String array, String off) {
        String h = name + "h", e = name + "e", m = name + "m";
        return "  let int " + h + " = (" + array + "[" + off + "] | (" + array + "[(" + off + " + 1)] << 8));\n"
                + "  let int " + e + " = ((" + h + " >> 10) & 31);\n"
                + "  let int " + m + " = (" + h + " & 1023);\n"
                + "  let float " + name + " = (select((" + e + " == 0), (float(" + m + ") * 5.9604645E-8f), select((" + e + " == 31), select((" + m
                + " == 0), inf, (inf - inf)), as_float((((" + e + " + 112) << 23) | (" + m + " << 13))))) * select((" + h + " >= 32768), -1.0f, 1.0f));\n";
    }

    private static void check(long bytes) {
        if (bytes > Integer.MAX_VALUE / 4) throw new IllegalArgumentException("pages of " + bytes + " bytes are too large for the device kernels' int offsets");
    }

    /** Precisions whose rows are whole floats (4-byte aligned views). */
    static boolean aligned(Precision p) {
        return p == Precision.F32;
    }
}
