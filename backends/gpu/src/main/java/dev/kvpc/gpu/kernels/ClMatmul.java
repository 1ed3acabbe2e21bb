package dev.kvpc.gpu.kernels;

import dev.kvpc.examples.llama.GgufFile;
import dev.kvpc.examples.llama.Matmul;
import dev.kvpc.examples.llama.Matrix;
import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.gpu.emit.CEmitter;
import dev.kvpc.gpu.emit.Dialect;
import dev.kvpc.gpu.kir.KirModule;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.EnumMap;
import java.util.Map;
import java.util.WeakHashMap;

/**
 * The llama engine's matrix products on an OpenCL device ({@code matmul.kir}): weights are sent once, in the type
 * they are stored in (F32, F16, Q8_0 and Q4_0 blocks), and kept there; each product sends the activations and reads
 * back the outputs. Every weight is dequantised as the CPU's kernels dequantise it (a Q8_0 quant or a Q4_0 nibble
 * less 8, times its block's scale); sums run in another order than either CPU kernel's.
 */
public final class ClMatmul implements Matmul {
    private final ClContext cl;
    private final int wg;
    private final Map<GgufFile.TensorType, ClContext.Kernel> kernels = new EnumMap<>(GgufFile.TensorType.class);
    private final Map<Matrix, ClContext.Buffer[]> weights = new WeakHashMap<>();
    private ClContext.Buffer x, out;
    private long xBytes, outBytes, weightBytes, calls;

    public ClMatmul(ClContext cl) {
        this.cl = cl;
        this.wg = DecodeAttention.workGroup(cl.device().maxWorkGroupSize());
    }

    /** The product kernel for weights of {@code type}, as kernel IR. */
    public static KirModule module(GgufFile.TensorType type, int workGroup) {
        String[] f = switch (type) {
            case F32 -> new String[] {"buffer float w", "let float wv = w[((i * cols) + j)];"};
            case F16 -> new String[] {"buffer half w", "let float wv = w[((i * cols) + j)];"};
            // a signed byte, times its block's scale
            case Q8_0 -> new String[] {"buffer uchar wq, buffer float wd",
                "let int e = ((i * cols) + j);\nlet int b = wq[e];\nlet float wv = (float(select((b > 127), (b - 256), b)) * wd[(e / 32)]);"};
            // byte k of a block: weight k in its low nibble, weight k + 16 in its high one, each biased by 8
            case Q4_0 -> new String[] {"buffer uchar wq, buffer float wd",
                "let int e = ((i * cols) + j);\nlet int blk = (e / 32);\nlet int k = (e % 32);\nlet int b = wq[((blk * 16) + (k % 16))];\n"
                    + "let float wv = (float((select((k < 16), (b & 15), (b >> 4)) - 8)) * wd[blk]);"};
        };
        return KernelTemplates.module("matmul", Map.of("WG", workGroup, "LOGWG", KernelTemplates.log2(workGroup)), Map.of("weights", f[0], "weight", f[1]));
    }

    @Override
    public synchronized void matmul(float[] result, Matrix w, float[] in, int tokens) {
        if (tokens < 1 || in.length < (long) tokens * w.cols || result.length < (long) tokens * w.rows) {
            throw new IllegalArgumentException(tokens + " tokens of " + w.rows + "x" + w.cols + " with arrays of " + in.length + " and " + result.length);
        }
        ClContext.Kernel k = kernels.computeIfAbsent(w.type(), t -> cl.build(CEmitter.emit(module(t, wg), Dialect.OPENCL), "-cl-std=CL1.2",
                "the " + t + " matrix product").kernel("matmul"));
        ClContext.Buffer[] wb = weights.computeIfAbsent(w, this::upload);
        long xs = 4L * tokens * w.cols, os = 4L * tokens * w.rows;
        if (xs > xBytes) {
            if (x != null) x.free();
            x = cl.buffer(xBytes = Math.max(xs, 2 * xBytes), "activations");
        }
        if (os > outBytes) {
            if (out != null) out.free();
            out = cl.buffer(outBytes = Math.max(os, 2 * outBytes), "products");
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(ValueLayout.JAVA_FLOAT, (long) tokens * w.cols);
            MemorySegment.copy(in, 0, s, ValueLayout.JAVA_FLOAT, 0, tokens * w.cols);
            x.write(0, s);
            int arg = 0;
            k.arg(arg++, out);
            for (ClContext.Buffer b : wb) k.arg(arg++, b);
            k.arg(arg++, x).arg(arg++, w.rows).arg(arg, w.cols);
            k.launch(new long[] {(long) w.rows * wg, tokens}, new long[] {wg, 1});
            MemorySegment o = a.allocate(ValueLayout.JAVA_FLOAT, (long) tokens * w.rows);
            out.read(0, o);
            MemorySegment.copy(o, ValueLayout.JAVA_FLOAT, 0, result, 0, tokens * w.rows);
        }
        calls++;
    }

    private ClContext.Buffer[] upload(Matrix w) {
        try (Arena a = Arena.ofConfined()) {
            ClContext.Buffer[] b = switch (w) {
                case Matrix.F32 f -> new ClContext.Buffer[] {send(a.allocateFrom(ValueLayout.JAVA_FLOAT, f.weights()), "F32 weights")};
                case Matrix.F16 f -> new ClContext.Buffer[] {send(a.allocateFrom(ValueLayout.JAVA_SHORT, f.halves()), "F16 weights")};
                case Matrix.Q8_0 q -> new ClContext.Buffer[] {send(a.allocateFrom(ValueLayout.JAVA_BYTE, q.quants()), "Q8_0 quants"),
                    send(a.allocateFrom(ValueLayout.JAVA_FLOAT, q.scales()), "Q8_0 scales")};
                case Matrix.Q4_0 q -> new ClContext.Buffer[] {send(a.allocateFrom(ValueLayout.JAVA_BYTE, q.quants()), "Q4_0 quants"),
                    send(a.allocateFrom(ValueLayout.JAVA_FLOAT, q.scales()), "Q4_0 scales")};
            };
            return b;
        }
    }

    private ClContext.Buffer send(MemorySegment s, String what) {
        ClContext.Buffer b = cl.buffer(s.byteSize(), what);
        b.write(0, s);
        weightBytes += s.byteSize();
        return b;
    }

    /** Bytes of weights sent to the device. */
    public synchronized long weightBytes() {
        return weightBytes;
    }

    /** Products run on the device so far. */
    public synchronized long calls() {
        return calls;
    }

    @Override
    public String name() {
        return "opencl";
    }
}
