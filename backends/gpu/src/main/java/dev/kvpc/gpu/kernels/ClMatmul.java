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
    private long xBytes, outBytes, weightBytes, calls, transfers;
    /** Whether arrays stay on the device between operations (see {@link #resident}). */
    private final boolean resident;
    /** The device copies of the engine's arrays (the context's, which its attention reads too). */
    private final dev.kvpc.gpu.cl.DeviceArrays arrays;
    private ClContext.Kernel rmsnorm, swiglu, add;

    /** Products whose activations go to the device and come back at each call. */
    public ClMatmul(ClContext cl) {
        this(cl, false);
    }

    private ClMatmul(ClContext cl, boolean resident) {
        this.cl = cl;
        this.resident = resident;
        this.arrays = cl.arrays();
        this.wg = DecodeAttention.workGroup(cl.device().maxWorkGroupSize());
    }

    /**
     * The engine's arithmetic on the device with its arrays kept there: products, norms, the SwiGLU gate and the
     * residual adds run on device copies of the engine's arrays, which cross only where the engine says the host reads
     * ({@link #toHost}: the queries, keys and values the runtime takes, the logits) or wrote ({@link #fromHost}: the
     * embeddings, the attention output).
     */
    public static ClMatmul resident(ClContext cl) {
        return new ClMatmul(cl, true);
    }

    /**
     * The engine's arithmetic for {@code cl}'s device: {@link #resident} where it has double precision (the norm and
     * gate take double steps, as the CPU's do), else products alone, the rest on the CPU.
     */
    public static ClMatmul forEngine(ClContext cl) {
        return new ClMatmul(cl, cl.device().fp64());
    }

    /** Whether arrays stay on the device and the norms, gates and adds run there. */
    public boolean isResident() {
        return resident;
    }

    private ClContext.Buffer read(float[] a, int count) {
        return arrays.read(a, count);
    }

    private ClContext.Buffer write(float[] a, int count) {
        return arrays.write(a, count);
    }

    @Override
    public void toHost(float[] a) {
        if (resident) arrays.toHost(a);
    }

    @Override
    public void fromHost(float[] a) {
        if (resident) arrays.fromHost(a);
    }

    private ClContext.Kernel engine(String name) {
        if (rmsnorm == null) {
            ClContext.Program p = cl.build(CEmitter.emit(KernelTemplates.module("engine", Map.of("WG", wg, "LOGWG", KernelTemplates.log2(wg))), Dialect.OPENCL),
                    "-cl-std=CL1.2", "the engine's norms and gates");
            rmsnorm = p.kernel("rmsnorm");
            swiglu = p.kernel("swiglu");
            add = p.kernel("add");
        }
        return switch (name) {
            case "rmsnorm" -> rmsnorm;
            case "swiglu" -> swiglu;
            default -> add;
        };
    }

    @Override
    public synchronized void rmsnorm(float[] o, float[] x, float[] w, int tokens, int n, float eps) {
        if (!resident) {
            Matmul.super.rmsnorm(o, x, w, tokens, n, eps);
            return;
        }
        norm(o, x, 0, w, tokens, n, eps);
    }

    @Override
    public synchronized void rmsnormRow(float[] o, float[] x, int row, float[] w, int n, float eps) {
        if (!resident) {
            Matmul.super.rmsnormRow(o, x, row, w, n, eps);
            return;
        }
        norm(o, x, row, w, 1, n, eps);
    }

    private void norm(float[] o, float[] x, int row0, float[] w, int tokens, int n, float eps) {
        ClContext.Kernel k = engine("rmsnorm");
        ClContext.Buffer xb = read(x, (row0 + tokens) * n), wb = read(w, n), ob = write(o, tokens * n);
        k.arg(0, ob).arg(1, xb).arg(2, wb).arg(3, n).arg(4, row0).arg(5, eps);
        k.launch(new long[] {(long) tokens * wg}, new long[] {wg});
    }

    @Override
    public synchronized void add(float[] x, float[] y, int count) {
        if (!resident) {
            Matmul.super.add(x, y, count);
            return;
        }
        elementwise("add", x, y, count);
    }

    /** {@code engine.kir}'s kernel {@code name} over {@code x[i]} and {@code y[i]}, {@code i < count}, writing {@code x}. */
    private void elementwise(String name, float[] x, float[] y, int count) {
        ClContext.Kernel k = engine(name);
        ClContext.Buffer yb = read(y, count), xb = read(x, count);
        write(x, count);
        k.arg(0, xb).arg(1, yb).arg(2, count);
        k.launch(new long[] {count}, null);
    }

    @Override
    public synchronized void swiglu(float[] h, float[] g, int count) {
        if (!resident) {
            Matmul.super.swiglu(h, g, count);
            return;
        }
        elementwise("swiglu", h, g, count);
    }

    /** Activations sent to or read from the device (resident: only where the engine's host reads or writes). */
    public synchronized long transfers() {
        return transfers + (resident ? arrays.transfers() : 0);
    }

    /** The product kernel for weights of {@code type}, as kernel IR. */
    public static KirModule module(GgufFile.TensorType type, int workGroup) {
        String[] f = switch (type) {
            // K-quants and BF16 go to the device decoded, as F32 (Matrix.Blocks)
            case F32, Q4_K, Q5_K, Q6_K, BF16 -> new String[] {"buffer float w", "let float wv = w[((i * cols) + j)];"};
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
        ClContext.Kernel k = kernels.computeIfAbsent(w instanceof Matrix.Blocks ? GgufFile.TensorType.F32 : w.type(), t -> cl.build(CEmitter.emit(module(t, wg), Dialect.OPENCL), "-cl-std=CL1.2",
                "the " + t + " matrix product").kernel("matmul"));
        ClContext.Buffer[] wb = weights.computeIfAbsent(w, this::upload);
        if (resident) {
            ClContext.Buffer xb = read(in, tokens * w.cols), ob = write(result, tokens * w.rows);
            int arg = 0;
            k.arg(arg++, ob);
            for (ClContext.Buffer b : wb) k.arg(arg++, b);
            k.arg(arg++, xb).arg(arg++, w.rows).arg(arg, w.cols);
            k.launch(new long[] {(long) w.rows * wg, tokens}, new long[] {wg, 1});
            calls++;
            return;
        }
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
        transfers += 2;
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
                case Matrix.Blocks q -> new ClContext.Buffer[] {send(a.allocateFrom(ValueLayout.JAVA_FLOAT, q.toFloats()), q.type() + " weights, decoded")};
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
