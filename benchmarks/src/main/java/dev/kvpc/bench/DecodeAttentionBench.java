package dev.kvpc.bench;

import dev.kvpc.backend.jvm.DecodeKernelCompiler;
import dev.kvpc.backend.jvm.JvmDecodeKernels;
import dev.kvpc.runtime.engine.AttentionKernel;
import dev.kvpc.runtime.engine.DecodeKernel;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;
import org.openjdk.jmh.annotations.*;
import org.openjdk.jmh.infra.Blackhole;

import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * Item 1 of docs/performance.md: one decode step of standard attention for a GQA group of 4 query heads over one
 * KV lane of {@code entries} entries: the kernel the ASM backend generates for the lane's formats and the runtime's
 * generic kernel, both over the same paged lane, against the hand-written Vector API kernel over flat arrays, at the
 * same precision. Item 4 (bandwidth) divides the lane's bytes by the time.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--sun-misc-unsafe-memory-access=allow"})
public class DecodeAttentionBench {
    static final int GROUP = 4;

    @Param({"64", "128"})
    public int headDim;
    @Param({"4096", "32768"})
    public int entries;
    /**
     * Lane formats: f32, int4 or int2 per token in groups of 32, or kivi (int2 keys per channel in blocks of 32, int2
     * values per token, the last 128 entries f32). The hand-written kernels read f32 and int4 only.
     */
    @Param({"f32", "int4"})
    public String precision;

    private PagePool pool;
    private Lane lane;
    private final AttentionKernel kernel = new AttentionKernel();
    private DecodeKernel generated, asm, template, denseKernel;
    private dev.kvpc.runtime.engine.DenseRows dense;
    private StrongDecode strong, strong2;
    private float[] q, out, logits, row, keys, values, kScales, vScales;
    private byte[] kPacked, vPacked;
    private int[] qpos;

    @Setup(Level.Trial)
    public void setUp() {
        Random r = new Random(1);
        int d = headDim, n = entries;
        boolean int4 = precision.equals("int4");
        QuantSpec spec = Lanes.spec(precision.equals("kivi") ? "f32" : precision, d); // a kivi lane starts at f32
        pool = new PagePool();
        lane = new Lane(pool, d, spec, 256);
        keys = new float[n * d];
        values = new float[n * d];
        for (int i = 0; i < n * d; i++) {
            keys[i] = (float) r.nextGaussian();
            values[i] = (float) r.nextGaussian();
        }
        for (int j = 0; j < n; j++) lane.append(j, j, keys, j * d, values, j * d);
        if (precision.equals("kivi")) {
            Lanes.kivi(lane);
        } else if (!precision.equals("int2")) {
            asm = DecodeKernelCompiler.compile(d, GROUP, spec, spec, true).create();
        }
        template = JvmDecodeKernels.template(d, GROUP);
        JvmDecodeKernels provider = new JvmDecodeKernels();
        generated = provider.kernel(d, GROUP, lane.formatsInUse());
        if (generated == null) generated = provider.kernel(d, GROUP, spec, spec);
        if (generated == null) throw new IllegalStateException("no generated kernel for " + spec);
        dense = new dev.kvpc.runtime.engine.DenseRows(d);
        denseKernel = DecodeKernelCompiler.compile(d, GROUP, QuantSpec.of(Precision.F32), QuantSpec.of(Precision.F32), true).create();
        if (!precision.equals("f32") && !int4) {
            q = new float[GROUP * d];
            for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
            out = new float[GROUP * d];
            qpos = new int[] {n};
            return; // no hand-written kernel reads these
        }
        q = new float[GROUP * d];
        for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
        out = new float[GROUP * d];
        logits = new float[n];
        row = new float[d];
        qpos = new int[] {n};
        if (int4) {
            kPacked = new byte[n * d / 2];
            vPacked = new byte[n * d / 2];
            kScales = new float[n * d / 32];
            vScales = new float[n * d / 32];
            pack(keys, kPacked, kScales, n, d);
            pack(values, vPacked, vScales, n, d);
        }
        strong = new StrongDecode(d, GROUP, 1);
        strong2 = new StrongDecode(d, GROUP, 2);
        // the yardsticks must compute what the reference computes, or their times mean nothing
        float[] want = new float[GROUP * d];
        handWrittenVector(want);
        for (StrongDecode k : new StrongDecode[] {strong, strong2}) {
            strong(k, out);
            for (int i = 0; i < want.length; i++) {
                if (Math.abs(out[i] - want[i]) > 1e-4f * (1 + Math.abs(want[i])))
                    throw new IllegalStateException("the strong kernel disagrees with the reference at " + i + ": " + out[i] + " vs " + want[i]);
            }
        }
    }

    private void handWrittenVector(float[] o) {
        if (kPacked == null) ReferenceDecode.attendF32(keys, values, entries, headDim, q, GROUP, o, logits);
        else ReferenceDecode.attendInt4(kPacked, kScales, vPacked, vScales, entries, headDim, q, GROUP, o, logits, row);
    }

    private void strong(StrongDecode k, float[] o) {
        if (kPacked == null) k.f32(keys, values, entries, q, o);
        else k.int4(kPacked, kScales, vPacked, vScales, entries, q, o);
    }

    /** Symmetric int4 with one scale per 32 channels of a row: the layout the reference kernel reads. */
    static void pack(float[] src, byte[] packed, float[] scales, int n, int d) {
        for (int j = 0; j < n; j++) {
            for (int g = 0; g < d / 32; g++) {
                float amax = 0;
                for (int c = 0; c < 32; c++) amax = Math.max(amax, Math.abs(src[j * d + g * 32 + c]));
                float s = amax == 0 ? 1 : amax / 7;
                scales[j * (d / 32) + g] = s;
                for (int c = 0; c < 32; c += 2) {
                    int i = j * d + g * 32 + c;
                    int lo = Math.clamp(Math.round(src[i] / s), -8, 7) & 15, hi = Math.clamp(Math.round(src[i + 1] / s), -8, 7) & 15;
                    packed[(j * d + g * 32 + c) / 2] = (byte) (lo | (hi << 4));
                }
            }
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        pool.close();
    }

    @Benchmark
    public void runtimeKernel(Blackhole bh) {
        kernel.attend(lane, q, qpos, GROUP, null, out, null);
        bh.consume(out);
    }

    /** The kernel the runtime runs for this lane with the JVM backend installed (the ASM one, or the template). */
    @Benchmark
    public void generatedKernel(Blackhole bh) {
        generated.attend(lane, q, qpos[0], null, out, null);
        bh.consume(out);
    }

    /**
     * What the runtime did for lanes no kernel read in place: every row decoded into arrays
     * ({@code DenseRows}), then the f32 kernel generated with ASM over them.
     */
    @Benchmark
    public void decodedRowsPath(Blackhole bh) {
        denseKernel.attend(dense.read(lane, null, null, true), q, qpos[0], null, out, null);
        bh.consume(out);
    }

    /** The template kernel specialised to this shape, whatever the formats. */
    @Benchmark
    public void templateKernel(Blackhole bh) {
        template.attend(lane, q, qpos[0], null, out, null);
        bh.consume(out);
    }

    /** The class DecodeKernelCompiler generates with ASM for this head dim, group and format (f32 and int4). */
    @Benchmark
    public void asmKernel(Blackhole bh) {
        asm.attend(lane, q, qpos[0], null, out, null);
        bh.consume(out);
    }

    @Benchmark
    public void handWrittenVector(Blackhole bh) {
        handWrittenVector(out);
        bh.consume(out);
    }

    /** {@link StrongDecode}, one thread: the yardstick the generated kernel is held to. */
    @Benchmark
    public void strongHandWritten(Blackhole bh) {
        strong(strong, out);
        bh.consume(out);
    }

    /** {@link StrongDecode} with the entries split over two threads. */
    @Benchmark
    public void strongHandWritten2(Blackhole bh) {
        strong(strong2, out);
        bh.consume(out);
    }

    /**
     * Item 4's yardstick: one plain streaming read of the bytes a decode step must read at this precision (keys and
     * values, plus scales for int4), summed with the Vector API so the read is not optimised away.
     */
    @Benchmark
    public float streamingRead() {
        if (kPacked == null) return sum(keys) + sum(values);
        return sum(kPacked) + sum(vPacked) + sum(kScales) + sum(vScales);
    }

    /**
     * The same read over the lane's own pages (every page of every chain, as the kernels find them: the bytes in their
     * paged layout, unused room at a chain's end included): what reading the bytes where the runtime keeps them costs.
     */
    @Benchmark
    public float streamingReadPages() {
        float s = 0;
        for (int c = 0; c < lane.chainCount(); c++) for (java.lang.foreign.MemorySegment page : lane.chainPages(c)) s += sum(page);
        return s;
    }

    private static float sum(java.lang.foreign.MemorySegment page) {
        var acc = jdk.incubator.vector.FloatVector.zero(ReferenceDecode.S);
        long step = 4L * ReferenceDecode.S.length(), up = page.byteSize() / step * step;
        for (long o = 0; o < up; o += step) acc = acc.add(jdk.incubator.vector.FloatVector.fromMemorySegment(ReferenceDecode.S, page, o, java.nio.ByteOrder.LITTLE_ENDIAN));
        return acc.reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
    }

    private static float sum(float[] a) {
        var acc = jdk.incubator.vector.FloatVector.zero(ReferenceDecode.S);
        int i = 0, up = ReferenceDecode.S.loopBound(a.length);
        for (; i < up; i += ReferenceDecode.S.length()) acc = acc.add(jdk.incubator.vector.FloatVector.fromArray(ReferenceDecode.S, a, i));
        float s = acc.reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
        for (; i < a.length; i++) s += a[i];
        return s;
    }

    private static float sum(byte[] a) {
        var bs = jdk.incubator.vector.ByteVector.SPECIES_PREFERRED;
        var acc = jdk.incubator.vector.ByteVector.zero(bs);
        int i = 0, up = bs.loopBound(a.length);
        for (; i < up; i += bs.length()) acc = acc.lanewise(jdk.incubator.vector.VectorOperators.XOR, jdk.incubator.vector.ByteVector.fromArray(bs, a, i));
        int s = acc.reduceLanes(jdk.incubator.vector.VectorOperators.XOR);
        for (; i < a.length; i++) s ^= a[i];
        return s;
    }

    /** Bytes one decode step reads from the cache at this shape and precision (the streaming read's size). */
    public static long bytesRead(int entries, int headDim, String precision) {
        long n = (long) entries * headDim;
        return precision.equals("int4") ? 2 * (n / 2 + n / 32 * 4) : 2 * n * 4;
    }
}
