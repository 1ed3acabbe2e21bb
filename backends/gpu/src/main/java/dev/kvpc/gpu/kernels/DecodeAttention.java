package dev.kvpc.gpu.kernels;

import dev.kvpc.gpu.kir.KirModule;

import java.util.Map;

/**
 * The decode attention template's shapes ({@code decode_attention.kir}): the work-group geometry a head dim and group
 * take, the template's constants, standard attention's fragments, and its dense-row form, whose rows are f32 arrays
 * indexed by entry: the kernels {@code benchmarks/gpu} runs through CuPy (hosts on OpenCL read lanes in place,
 * {@link ResidentDecodeKernel}).
 */
public final class DecodeAttention {
    private DecodeAttention() {
    }

    /**
     * A work-group's size and the entries of its split (each work-item takes {@code chunk / workGroup} of them), the
     * largest up to 64 and 256 whose local memory fits the 32 KiB every device has: the query of every head, a
     * reduction slot per head and work-item, and the split's weights; null where none fits (the host's kernel then
     * serves that shape).
     */
    public record Geometry(int workGroup, int chunk) {
        public static Geometry of(int headDim, int group, long deviceMaxWorkGroup) {
            for (int wg = DecodeAttention.workGroup(deviceMaxWorkGroup); wg >= 8; wg >>= 1) {
                for (int ch = 256; ch >= wg; ch >>= 1) {
                    long bytes = 4L * ((long) group * wg + (long) group * headDim + (long) group * ch + ch);
                    if (bytes <= dev.kvpc.gpu.kir.KirVerifier.LOCAL_BYTES) return new Geometry(wg, ch);
                }
            }
            return null;
        }
    }

    /** The dense-row form for this shape, as kernel IR: rows {@code keys[j * D + c]}, {@code values[j * D + c]}. */
    public static KirModule module(int headDim, int group, int workGroup, int chunk) {
        Map<String, String> f = new java.util.HashMap<>(STANDARD);
        f.putAll(COPIED);
        f.putAll(Map.of("rows", "buffer float keys, buffer float values", "key_entry", "", "key_elem", "let float kx = keys[((j * D) + c)];",
                "value_entry", "", "value_elem", "let float vx = values[((j * D) + c)];"));
        return KernelTemplates.module("decode_attention", constants(headDim, group, workGroup, chunk, 0), f);
    }

    /** Queries the host copied into the kernel's buffer ({@code T x GQ x D}), outputs into its own: the default. */
    public static final Map<String, String> COPIED = Map.of("query_params", "buffer float q",
            "query_load", "for c = t to (G * D) step WG {\n  store qv[c] = q[((qi * (G * D)) + c)];\n}\n", "merge_params", "", "out_index", "((g * D) + c)");

    /**
     * Queries read from the host's array of every head's ({@code tokens x heads x D}, unrotated) and rotated as they are
     * loaded ({@link DeviceRope#ROTATE}; {@code qat}: per query position of the call, its token's row and the position
     * it is rotated by, -1 for none), outputs written into such an array from token {@code tok0}
     * ({@link ResidentDecodeKernel#attendInPlace}).
     */
    public static final Map<String, String> IN_PLACE = Map.of("query_params", "buffer float q, buffer int qat, buffer double cs, int heads",
            "query_load", "for c2 = t to (G * (D / 2)) step WG {\n"
                    + "  let int hq = (c2 / (D / 2));\n"
                    + "  let int c = ((c2 % (D / 2)) * 2);\n"
                    + "  let int row = ((qi * TQ) + (hq / GQ));\n"
                    + "  let int so = (((((qat[(row * 2)] * heads) + head0) + (hq % GQ)) * D) + c);\n"
                    + "  let int p = qat[((row * 2) + 1)];\n"
                    + "  let float x0 = q[so];\n"
                    + "  let float x1 = q[(so + 1)];\n"
                    + DeviceRope.ROTATE
                    + "  store qv[((hq * D) + c)] = y0;\n"
                    + "  store qv[(((hq * D) + c) + 1)] = y1;\n}\n",
            "merge_params", ", int heads, int head0, int tok0",
            "out_index", "((((((tok0 + (g / GQ)) * heads) + head0) + (g % GQ)) * D) + c)");

    /** Standard attention's visibility and score: causal by position, the scaled dot product. */
    public static final Map<String, String> STANDARD = Map.of("visible", "let bool vis = ((attend[j] != 0) && (pos[j] <= qmax));",
            "score", "let bool hv = (pos[j] <= qpos);\nlet float l = (acc[h] * scale);");

    /** The decode template's constants for a shape, one query position per work-group. */
    public static Map<String, Integer> constants(int headDim, int group, int workGroup, int chunk, int norm) {
        return constants(headDim, group, 1, workGroup, chunk, norm);
    }

    /** As above, {@code tile} query positions per work-group (a prefill's). */
    public static Map<String, Integer> constants(int headDim, int group, int tile, int workGroup, int chunk, int norm) {
        return Map.of("D", headDim, "GQ", group, "TQ", tile, "G", group * tile, "WG", workGroup, "LOGWG", KernelTemplates.log2(workGroup), "CH", chunk,
                "NORM", norm);
    }

    /** 64 work-items, or the largest power of two the device allows below that. */
    public static int workGroup(long deviceMax) {
        int w = 64;
        while (w > deviceMax && w > 1) w >>= 1;
        return w;
    }
}
