package dev.kvpc.gpu.kernels;

import dev.kvpc.gpu.kir.KirModule;
import dev.kvpc.runtime.store.QuantSpec;

import java.util.List;
import java.util.Map;

/**
 * A policy's merge where a lane's rows are on the device ({@code merge ... into ... by cosine(k) | cosine(v) |
 * nearest}, or into the compensation entry): the runtime's {@code LaneView.merge} and {@code Lane.mergeRow}, held to
 * them bit for bit by {@code DeviceAppendTest}. One work-group takes the sources in order; for each, its work-items
 * score the destinations (the cosine of the rows as their codecs read them, summed in the host's order, in double;
 * or minus the distance of positions), the best is the highest score, ties to the later entry, NaN never; then one
 * work-item folds the source into it ({@code (x * a + y * b) / (a + b)} in double with the host's weights, each product
 * a statement of its own) and writes the row back at the destination's format, and the destination's count grows.
 * The chosen destination of each source goes back to the host, which adds the counts in the same order.
 */
final class DeviceMerge {
    private DeviceMerge() {
    }

    /** How destinations are chosen: as {@code Instr.MergeBy}, and COMPENSATION (every source into the one destination). */
    enum By { NEAREST, COSINE_K, COSINE_V, COMPENSATION }

    /** Whether rows of these chain formats are read and written here. */
    static boolean handles(List<QuantSpec> chains, int headDim) {
        for (QuantSpec s : chains) {
            if (s.quantised() ? s.axis() != QuantSpec.Axis.TOKEN : s.precision() != dev.kvpc.runtime.store.Precision.F32
                    && s.precision() != dev.kvpc.runtime.store.Precision.F16) return false;
            if (!DeviceRowWriter.converts(s, s, headDim)) return false;
        }
        return true;
    }

    /**
     * The kernel for a lane of {@code chains} (chain {@code i}'s views named after chain {@code buffer[i]}: chains
     * whose pages share a device buffer read and write through one set of views), as kernel IR.
     */
    static KirModule module(int headDim, int workGroup, List<QuantSpec> chains, int[] buffer, int rowsPerPage, By by) {
        int n = chains.size();
        String params = params(n, buffer);
        int part = by == By.COSINE_V ? 1 : 0;
        StringBuilder k = new StringBuilder();
        k.append("kernel merge_rows [group WG] (").append(params).append(", buffer int pos, buffer int srcs, buffer int dsts, buffer double w, ")
                .append("out buffer double cnt, out buffer int best, int nsrc, int ndst) {\n");
        k.append("  local double redv[WG];\n  local int redj[WG];\n  private float ra[D];\n  private float xs[D];\n  private float ys[D];\n  private int codes[D];\n");
        k.append("  let int t = local_id(0);\n");
        k.append("  for si = 0 to nsrc step 1 {\n");
        k.append("    let int i = srcs[si];\n");
        if (by == By.COSINE_K || by == By.COSINE_V) k.append(readInto("ra", "i", part, chains, headDim, rowsPerPage));
        k.append("    let double bests = -infd;\n    let int bestj = neg(1);\n");
        k.append("    for dj = t to ndst step WG {\n      let int j = dsts[dj];\n      let double s = 0.0d;\n");
        switch (by) {
            case NEAREST -> k.append("      let int dd = (pos[j] - pos[i]);\n      s = neg(double(select((dd < 0), neg(dd), dd)));\n");
            case COMPENSATION -> k.append("      s = 0.0d;\n");
            default -> {
                k.append(RowFormats.entry("e", part, chains, headDim, rowsPerPage));
                k.append("      let double dot = 0.0d;\n      let double na = 0.0d;\n      let double nb = 0.0d;\n");
                k.append("      for c = 0 to D step 1 {\n").append(RowFormats.element("e", "y", chains, headDim));
                k.append("        let float p1 = (ra[c] * y);\n        let float p2 = (ra[c] * ra[c]);\n        let float p3 = (y * y);\n");
                k.append("        dot = (dot + double(p1));\n        na = (na + double(p2));\n        nb = (nb + double(p3));\n      }\n");
                k.append("      s = select(((na == 0.0d) || (nb == 0.0d)), 0.0d, (dot / sqrt((na * nb))));\n");
            }
        }
        k.append("      if (s >= bests) {\n        bests = s;\n        bestj = j;\n      }\n    }\n");
        k.append("    store redv[t] = bests;\n    store redj[t] = bestj;\n    barrier;\n");
        k.append("    for kk = 0 to LOGWG step 1 {\n      let int span = (WG >> (kk + 1));\n      if (t < span) {\n");
        k.append("        let double o = redv[(t + span)];\n        let int oj = redj[(t + span)];\n");
        k.append("        if ((o > redv[t]) || ((o == redv[t]) && (oj > redj[t]))) {\n          store redv[t] = o;\n          store redj[t] = oj;\n        }\n      }\n      barrier;\n    }\n");
        k.append("    let int b = redj[0];\n");
        k.append("    if ((t == 0) && (b >= 0)) {\n");
        k.append("      let double ci = cnt[i];\n      let double cb = cnt[b];\n");
        k.append("      let double wa = (cb * ").append(by == By.COMPENSATION ? "1.0d" : "w[b]").append(");\n");
        k.append("      let double wb = (ci * w[i]);\n");
        k.append("      if ((wa + wb) <= 0.0d) {\n        wa = cb;\n        wb = ci;\n      }\n");
        k.append("      if ((wa + wb) <= 0.0d) {\n        wa = 0.0d;\n        wb = 1.0d;\n      }\n");
        for (int p = 0; p < 2; p++) {
            k.append(readInto("xs", "b", p, chains, headDim, rowsPerPage));
            k.append(readInto("ys", "i", p, chains, headDim, rowsPerPage));
            k.append("      for c = 0 to D step 1 {\n        let double m1 = (double(xs[c]) * wa);\n        let double m2 = (double(ys[c]) * wb);\n")
                    .append("        let double m3 = (m1 + m2);\n        store xs[c] = float((m3 / (wa + wb)));\n      }\n");
            k.append("      if (0 == 0) {\n        let int j = b;\n").append(RowFormats.entry("o", p, chains, headDim, rowsPerPage));
            for (int i = 0; i < n; i++) {
                k.append("        if (oc == ").append(i).append(") {\n          let int dst = ob;\n");
                int v = buffer[i];
                k.append(DeviceRowWriter.store(chains.get(i), headDim, "rb" + v, "rf" + v, "rh" + v));
                k.append("        }\n");
            }
            k.append("      }\n");
        }
        k.append("      store cnt[b] = (cb + ci);\n    }\n");
        k.append("    if (t == 0) {\n      store best[si] = b;\n    }\n    barrier;\n  }\n}\n");
        return KernelTemplates.parse(shareViews(k.toString(), buffer), Map.of("D", headDim, "WG", workGroup, "LOGWG", KernelTemplates.log2(workGroup)));
    }

    /**
     * The parameters of a lane's chains, writable: each chain's page table, and the views (bytes, floats, halves) of
     * each distinct buffer, named after the first chain in it ({@code buffer[i]}); then the slot and chain tables.
     */
    static String params(int n, int[] buffer) {
        StringBuilder params = new StringBuilder();
        for (int i = 0; i < n; i++) {
            if (buffer[i] == i) params.append("out buffer uchar rb").append(i).append(", out buffer float rf").append(i).append(", out buffer half rh").append(i).append(", ");
            params.append("buffer int pt").append(i).append(", ");
        }
        return params.append("buffer int slots, buffer int chains").toString();
    }

    /** {@code text} with chains that share a buffer reading and writing through its first chain's views. */
    static String shareViews(String text, int[] buffer) {
        for (int i = buffer.length - 1; i >= 0; i--) {
            if (buffer[i] != i) {
                for (String view : new String[] {"rb", "rf", "rh"}) text = text.replace(view + i + "[", view + buffer[i] + "[");
            }
        }
        return text;
    }

    /**
     * The kernel that packs {@code group} entries' part {@code part} (rows in the lane's {@code chains}) per channel
     * into a block of {@code to} at byte {@code dst} of chain {@code target}'s pages, as
     * {@code ChannelBlockCodec.quantise} writes it: per channel an f16 zero point (the minimum) and scale
     * ({@code (max - zero) / levels}), then each token's codes, lowest bits first; the arithmetic of
     * {@link DeviceRowWriter#store}'s per-token groups. One work-item.
     */
    static KirModule packModule(int headDim, List<QuantSpec> chains, int[] buffer, int rowsPerPage, int part, QuantSpec to, int target) {
        int bits = to.precision().bits(), group = to.group(), levels = (1 << bits) - 1, per = 8 / bits;
        long rowCode = to.precision().packedBytes(headDim);
        String b = "rb" + buffer[target], h = "rh" + buffer[target];
        StringBuilder k = new StringBuilder();
        k.append("kernel pack_block (").append(params(chains.size(), buffer)).append(", buffer int entries, int dst) {\n");
        k.append("  private int codes[D];\n");
        k.append("  if (global_id(0) == 0) {\n");
        k.append("    for c = 0 to D step 1 {\n      let float zmn = inf;\n      let float zmx = -inf;\n");
        k.append("      for tk = 0 to ").append(group).append(" step 1 {\n        let int j = entries[tk];\n");
        k.append(RowFormats.entry("r", part, chains, headDim, rowsPerPage)).append(RowFormats.element("r", "x", chains, headDim));
        k.append(DeviceRowWriter.range("x")).append("      }\n");
        k.append("      let int zh = ((dst + (4 * c)) >> 1);\n");
        k.append(DeviceRowWriter.params(h, levels)).append("    }\n");
        k.append("    for tk = 0 to ").append(group).append(" step 1 {\n      let int j = entries[tk];\n");
        k.append(RowFormats.entry("r", part, chains, headDim, rowsPerPage));
        k.append("      for c = 0 to D step 1 {\n").append(RowFormats.element("r", "x", chains, headDim));
        k.append("        let int zh = ((dst + (4 * c)) >> 1);\n");
        k.append(DeviceRowWriter.code(h, "x", "c", levels)).append("      }\n");
        k.append("      for kb = 0 to ").append(rowCode).append(" step 1 {\n        let int zbyte = 0;\n");
        k.append("        for zj = 0 to ").append(per).append(" step 1 {\n          let int ch = ((kb * ").append(per).append(") + zj);\n");
        k.append("          if (ch < D) {\n            zbyte = (zbyte | (codes[ch] << (zj * ").append(bits).append(")));\n          }\n        }\n");
        k.append("        store ").append(b).append("[(((dst + ").append(4 * headDim).append(") + (tk * ").append(rowCode).append(")) + kb)] = zbyte;\n      }\n    }\n  }\n}\n");
        return KernelTemplates.parse(shareViews(k.toString(), buffer), Map.of("D", headDim));
    }

    /** Statements (in a scope of their own) that read part {@code part} of entry {@code entry} into the private array {@code into}. */
    private static String readInto(String into, String entry, int part, List<QuantSpec> chains, int headDim, int rowsPerPage) {
        return "      if (0 == 0) {\n        let int j = " + entry + ";\n" + RowFormats.entry("r", part, chains, headDim, rowsPerPage)
                + "        for c = 0 to D step 1 {\n" + RowFormats.element("r", "x", chains, headDim) + "          store " + into + "[c] = x;\n        }\n      }\n";
    }
}
