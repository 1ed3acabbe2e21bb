package dev.kvpc.gpu;

import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.gpu.kernels.ResidentDecodeKernel;
import dev.kvpc.runtime.engine.AttentionKernel;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Decode attention over lanes kept on the device, read in place in every float and per-token format, alone and mixed
 * in one lane, against the runtime's {@link AttentionKernel}; the lane changes between calls (appends, evictions,
 * re-stored rows) and the device copy follows, sending only changed pages. Tolerances as {@link DenseDecodeTest}.
 */
class ResidentDecodeKernelTest {
    private static ClContext cl;
    private static dev.kvpc.gpu.lane.DeviceLanes lanes;

    static synchronized ClContext cl() {
        if (cl == null) cl = Devices.context();
        return cl;
    }

    static synchronized dev.kvpc.gpu.lane.DeviceLanes lanes() {
        if (lanes == null) lanes = dev.kvpc.gpu.kernels.OpenClDecodeKernels.deviceLanes(cl());
        return lanes;
    }

    @AfterAll
    static void close() {
        if (lanes != null) lanes.close();
        lanes = null;
        if (cl != null) cl.close();
        cl = null;
    }

    static List<QuantSpec> formats(int d) {
        List<QuantSpec> l = new ArrayList<>(List.of(QuantSpec.of(Precision.F32), QuantSpec.of(Precision.F16), QuantSpec.of(Precision.BF16)));
        for (Precision p : new Precision[] {Precision.INT8, Precision.INT4, Precision.INT2}) {
            for (int g : new int[] {d, Math.min(d, 32), 8}) if (d % g == 0) l.add(QuantSpec.resolve(p, QuantSpec.Axis.TOKEN, g, d));
        }
        return l.stream().distinct().toList();
    }

    @TestFactory
    List<DynamicTest> everyFormatInPlace() {
        List<DynamicTest> tests = new ArrayList<>();
        for (int d : new int[] {8, 64, 128}) {
            for (QuantSpec f : formats(d)) {
                int group = d == 64 ? 4 : d == 8 ? 1 : 8;
                tests.add(DynamicTest.dynamicTest("d" + d + " group " + group + " " + f, () -> compare(d, group, f, null, d * 7919L + f.hashCode())));
            }
        }
        // mixed: values re-stored at another format, so the lane has two or three chains
        tests.add(DynamicTest.dynamicTest("d64 f16 with int4 and int2 rows", () -> compare(64, 4, QuantSpec.of(Precision.F16),
                new QuantSpec[] {QuantSpec.resolve(Precision.INT4, QuantSpec.Axis.TOKEN, 32, 64), QuantSpec.resolve(Precision.INT2, QuantSpec.Axis.TOKEN, 64, 64)}, 5)));
        // positions cache: keys rotated by their entry's index as they are read
        dev.kvpc.runtime.Rope rope = new dev.kvpc.runtime.Rope(10000.0);
        for (QuantSpec f : List.of(QuantSpec.of(Precision.F32), QuantSpec.of(Precision.BF16), QuantSpec.resolve(Precision.INT4, QuantSpec.Axis.TOKEN, 32, 64))) {
            tests.add(DynamicTest.dynamicTest("d64 " + f + " keys rotated by slot", () -> compare(64, 4, f, null, 11 + f.hashCode(), rope)));
        }
        tests.add(DynamicTest.dynamicTest("d8 f16 with int2 rows, keys rotated by slot", () -> compare(8, 1, QuantSpec.of(Precision.F16),
                new QuantSpec[] {QuantSpec.resolve(Precision.INT2, QuantSpec.Axis.TOKEN, 8, 8)}, 12, rope)));
        // KIVI: keys in blocks quantised per channel, values per token, the newest entries at the host format
        for (int[] shape : new int[][] {{64, 32, 2}, {16, 16, 2}, {128, 32, 4}, {8, 8, 8}}) {
            int d = shape[0], group = shape[1], bits = shape[2];
            tests.add(DynamicTest.dynamicTest("d" + d + " KIVI int" + bits + " key blocks of " + group, () -> compareKivi(d, group, bits, d * 31L + bits, null)));
        }
        tests.add(DynamicTest.dynamicTest("d64 KIVI int2 key blocks of 32, keys rotated by slot", () -> compareKivi(64, 32, 2, 77, rope)));
        tests.add(DynamicTest.dynamicTest("d128 f32 with int8 rows", () -> compare(128, 8, QuantSpec.of(Precision.F32),
                new QuantSpec[] {QuantSpec.resolve(Precision.INT8, QuantSpec.Axis.TOKEN, 128, 128)}, 6)));
        return tests;
    }

    static void compare(int d, int group, QuantSpec spec, QuantSpec[] others, long seed) {
        compare(d, group, spec, others, seed, null);
    }

    static void compare(int d, int group, QuantSpec spec, QuantSpec[] others, long seed, dev.kvpc.runtime.Rope bySlot) {
        Random r = new Random(seed);
        ResidentDecodeKernel kernel = new ResidentDecodeKernel(cl(), d, group, lanes());
        try (PagePool pool = new PagePool()) {
            Lane lane = new Lane(pool, d, spec, 16);
            float[] k = new float[d], v = new float[d];
            int next = 0;
            for (int step = 0; step < 8; step++) {
                // append a batch, evict some, re-store some rows at another format: the device copy must follow
                int add = step == 0 ? 200 + r.nextInt(400) : 1 + r.nextInt(40);
                for (int i = 0; i < add; i++, next++) {
                    for (int c = 0; c < d; c++) {
                        k[c] = (float) (r.nextGaussian() * 1.5 + 0.3);
                        v[c] = (float) r.nextGaussian();
                    }
                    lane.append(3 * next + 1, next, k, 0, v, 0);
                }
                if (step % 3 == 2) {
                    BitSet keep = new BitSet();
                    for (int j = 0; j < lane.size(); j++) if (r.nextInt(6) != 0) keep.set(j);
                    lane.retain(keep);
                }
                if (others != null && step % 2 == 1) {
                    for (int j = 0; j < lane.size(); j += 1 + r.nextInt(5)) {
                        lane.restore(j, r.nextBoolean() ? Lane.Part.VALUES : Lane.Part.KEYS, others[r.nextInt(others.length)]);
                    }
                }
                int n = lane.size();
                float[] q = new float[group * d];
                for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
                int qpos = step % 4 == 1 ? lane.position(n / 2) : lane.position(n - 1);
                BitSet attend = null;
                if (step % 4 == 3) {
                    attend = new BitSet();
                    for (int j = 0; j < n; j++) if (r.nextInt(3) != 0) attend.set(j);
                }
                float[] col0 = new float[n];
                for (int j = 0; j < n; j++) col0[j] = r.nextFloat();
                String where = "d" + d + " " + spec + (others != null ? " mixed" : "") + ", step " + step + ", " + n + " entries, " + lane.chainCount() + " chains";
                float[] out = new float[group * d], outRef = new float[group * d];
                java.util.Arrays.fill(out, Float.NaN);
                float[] col = col0.clone(), colRef = col0.clone();
                kernel.attend(lane, q, qpos, attend, out, col, bySlot);
                new AttentionKernel().attend(lane, q, new int[] {qpos}, group, attend, outRef, colRef, bySlot);
                DenseDecodeTest.assertClose(outRef, out, d, where);
                for (int j = 0; j < n; j++) assertEquals(colRef[j], col[j], Math.max(DenseDecodeTest.TOL * Math.abs(colRef[j]), 1e-9), where + ": column sum of entry " + j);
                long laneBytes = 0;
                for (int c = 0; c < lane.chainCount(); c++) for (var seg : lane.chainPages(c)) laneBytes += seg.byteSize();
                assertEquals(laneBytes, lanes().bytesOf(lane), where + ": the device holds the lane's pages, byte for byte");
            }
            lane.clear();
        }
    }

    /**
     * A lane as KIVI stores it: every full block of {@code group} older entries' keys quantised per channel (the
     * runtime's {@code Lane.quantiseBlock}), their values per token, the newest entries at f32.
     */
    static void compareKivi(int d, int group, int bits, long seed, dev.kvpc.runtime.Rope bySlot) {
        Random r = new Random(seed);
        ResidentDecodeKernel kernel = new ResidentDecodeKernel(cl(), d, 4, lanes());
        Precision p = bits == 8 ? Precision.INT8 : bits == 4 ? Precision.INT4 : Precision.INT2;
        QuantSpec keys = QuantSpec.resolve(p, QuantSpec.Axis.CHANNEL, group, d), values = QuantSpec.resolve(p, QuantSpec.Axis.TOKEN, Math.min(d, 32), d);
        try (PagePool pool = new PagePool()) {
            Lane lane = new Lane(pool, d, QuantSpec.of(Precision.F32), 16);
            float[] k = new float[d], v = new float[d];
            int next = 0;
            for (int step = 0; step < 6; step++) {
                int add = step == 0 ? 300 + r.nextInt(200) : 1 + r.nextInt(3 * group);
                for (int i = 0; i < add; i++, next++) {
                    for (int c = 0; c < d; c++) {
                        k[c] = (float) (r.nextGaussian() * 1.5 + 0.3);
                        v[c] = (float) r.nextGaussian();
                    }
                    lane.append(next, next, k, 0, v, 0);
                }
                kivi(lane, keys, values, 2 * group);
                if (step == 3) {
                    BitSet keep = new BitSet();
                    for (int j = 0; j < lane.size(); j++) if (r.nextInt(4) != 0) keep.set(j);
                    lane.retain(keep);
                }
                int n = lane.size();
                float[] q = new float[4 * d];
                for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
                float[] out = new float[4 * d], outRef = new float[4 * d], col = new float[n], colRef = new float[n];
                java.util.Arrays.fill(out, Float.NaN);
                String where = "d" + d + " KIVI int" + bits + "/" + group + ", step " + step + ", " + n + " entries, " + lane.chainCount() + " chains";
                kernel.attend(lane, q, lane.position(n - 1), null, out, col, bySlot);
                new AttentionKernel().attend(lane, q, new int[] {lane.position(n - 1)}, 4, null, outRef, colRef, bySlot);
                DenseDecodeTest.assertClose(outRef, out, d, where);
                for (int j = 0; j < n; j++) assertEquals(colRef[j], col[j], Math.max(DenseDecodeTest.TOL * Math.abs(colRef[j]), 1e-9), where + ": column sum of entry " + j);
                long laneBytes = 0;
                for (int c = 0; c < lane.chainCount(); c++) for (var seg : lane.chainPages(c)) laneBytes += seg.byteSize();
                assertEquals(laneBytes, lanes().bytesOf(lane), where + ": the device holds the lane's pages, byte for byte");
            }
            lane.clear();
        }
    }

    /** Packs the keys of entries older than the newest {@code residual} into blocks (in order), their values per token. */
    static void kivi(Lane lane, QuantSpec keys, QuantSpec values, int residual) {
        int n = lane.size(), group = keys.group();
        int[] chain = lane.chainTable();
        java.util.List<Integer> open = new java.util.ArrayList<>();
        for (int j = 0; j < n - residual; j++) if (!lane.chainSpec(chain[2 * j]).equals(keys)) open.add(j);
        for (int b = 0; b + group <= open.size(); b += group) {
            int[] e = new int[group];
            for (int t = 0; t < group; t++) e[t] = open.get(b + t);
            lane.packBlock(e, Lane.Part.KEYS, keys);
        }
        for (int j = 0; j < n - residual; j++) if (!lane.chainSpec(lane.chainTable()[2 * j + 1]).equals(values)) lane.restore(j, Lane.Part.VALUES, values);
    }

    /**
     * A prefill: every query position of the step in one launch ({@code attendAll}), each masked causally at its own
     * position, column sums accumulating over them, as the runtime kernel computes them for the same step; at lengths
     * of one split and several, f32 and KIVI-like mixed lanes, keys rotated by slot or not.
     */
    @TestFactory
    List<DynamicTest> aPrefillRunsItsPositionsTogether() {
        List<DynamicTest> tests = new ArrayList<>();
        dev.kvpc.runtime.Rope rope = new dev.kvpc.runtime.Rope(10000.0);
        for (int tokens : new int[] {1, 7, 64, 300}) {
            for (boolean rotate : new boolean[] {false, true}) {
                tests.add(DynamicTest.dynamicTest(tokens + " positions" + (rotate ? ", keys rotated by slot" : ""), () -> prefill(tokens, rotate ? rope : null)));
            }
        }
        return tests;
    }

    static void prefill(int tokens, dev.kvpc.runtime.Rope bySlot) {
        int d = 64, group = 4;
        Random r = new Random(tokens * 7L + (bySlot == null ? 0 : 1));
        ResidentDecodeKernel kernel = new ResidentDecodeKernel(cl(), d, group, lanes());
        try (PagePool pool = new PagePool()) {
            Lane lane = new Lane(pool, d, QuantSpec.of(Precision.F16), 16);
            float[] k = new float[d], v = new float[d];
            int past = 200;
            for (int j = 0; j < past + tokens; j++) {
                for (int c = 0; c < d; c++) {
                    k[c] = (float) (r.nextGaussian() * 1.5 + 0.3);
                    v[c] = (float) r.nextGaussian();
                }
                lane.append(j, 0, k, 0, v, 0);
            }
            for (int j = 0; j < past; j += 3) lane.restore(j, Lane.Part.VALUES, QuantSpec.resolve(Precision.INT4, QuantSpec.Axis.TOKEN, 32, d));
            int n = lane.size();
            int[] qpos = new int[tokens];
            for (int t = 0; t < tokens; t++) qpos[t] = past + t;
            float[] q = new float[tokens * group * d];
            for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
            BitSet attend = new BitSet();
            for (int j = 0; j < n; j++) if (r.nextInt(4) != 0 || j >= past) attend.set(j);
            float[] out = new float[q.length], outRef = new float[q.length], col = new float[n], colRef = new float[n];
            java.util.Arrays.fill(out, Float.NaN);
            kernel.attendAll(lane, q, qpos, attend, out, col, bySlot, 0);
            new AttentionKernel().attend(lane, q, qpos, group, attend, outRef, colRef, bySlot);
            String where = tokens + " positions over " + n + " entries";
            DenseDecodeTest.assertClose(outRef, out, d, where);
            for (int j = 0; j < n; j++) assertEquals(colRef[j], col[j], Math.max(DenseDecodeTest.TOL * Math.abs(colRef[j]), 1e-9), where + ": column sum of entry " + j);
            lane.clear();
        }
    }

    /** After a decode step appends one entry, the next call sends the pages its key and value rows went to, not the lane. */
    @Test
    void aStepSendsOnlyTheChangedPage() {
        int d = 64;
        ResidentDecodeKernel kernel = new ResidentDecodeKernel(cl(), d, 1, lanes());
        try (PagePool pool = new PagePool()) {
            Lane lane = new Lane(pool, d, QuantSpec.of(Precision.F16), 16);
            float[] k = new float[d], v = new float[d], q = new float[d], out = new float[d];
            Random r = new Random(3);
            for (int j = 0; j < 1000; j++) {
                for (int c = 0; c < d; c++) k[c] = v[c] = (float) r.nextGaussian();
                lane.append(j, j, k, 0, v, 0);
            }
            long sent00 = lanes().pagesSent();
            kernel.attend(lane, q, 999, null, out, null);
            long sent0 = lanes().pagesSent() - sent00;
            int pages = 0;
            for (int c = 0; c < lane.chainCount(); c++) pages += lane.chainPages(c).length;
            assertEquals(pages, sent0, "the first call sends every page");
            lane.append(1000, 1000, k, 0, v, 0);
            kernel.attend(lane, q, 1000, null, out, null);
            assertEquals(2, lane.chainCount(), "keys and values in a chain each");
            assertEquals(2, lanes().pagesSent() - sent00 - sent0, "one page of keys and one of values changed");
            kernel.attend(lane, q, 1000, null, out, null);
            assertEquals(2, lanes().pagesSent() - sent00 - sent0, "nothing changed");
            lane.clear();
        }
    }

    /**
     * A call sends the lane's entry tables only from the first entry that changed: nothing again for an unchanged
     * lane, one entry's (2 slots, 2 chains, a position, a flag) for an appended one, the entries after the first
     * evicted for an eviction; outputs still equal the runtime kernel's.
     */
    @Test
    void entryTablesAreSentWhereTheyChanged() {
        int d = 32;
        ResidentDecodeKernel kernel = new ResidentDecodeKernel(cl(), d, 2, lanes());
        Random r = new Random(5);
        try (PagePool pool = new PagePool()) {
            Lane lane = new Lane(pool, d, QuantSpec.of(Precision.F32), 16);
            float[] k = new float[d], v = new float[d], q = new float[2 * d], out = new float[2 * d], ref = new float[2 * d];
            for (int i = 0; i < q.length; i++) q[i] = (float) r.nextGaussian();
            java.util.function.IntConsumer add = pos -> {
                for (int c = 0; c < d; c++) {
                    k[c] = (float) r.nextGaussian();
                    v[c] = (float) r.nextGaussian();
                }
                lane.append(pos, pos, k, 0, v, 0);
            };
            for (int i = 0; i < 100; i++) add.accept(i);
            kernel.attend(lane, q, 99, null, out, null);
            dev.kvpc.gpu.lane.DeviceLane device = lanes().sync(lane);
            long sent = device.tableIntsSent();
            kernel.attend(lane, q, 99, null, out, null);
            assertEquals(sent, device.tableIntsSent(), "an unchanged lane sends no table entry");
            add.accept(100);
            kernel.attend(lane, q, 100, null, out, null);
            assertEquals(sent + 6, device.tableIntsSent(), "an appended entry sends its own");
            sent = device.tableIntsSent();
            BitSet keep = new BitSet();
            keep.set(0, lane.size());
            keep.clear(90);
            lane.retain(keep);
            kernel.attend(lane, q, 100, null, out, null);
            // the 10 entries after it: their key and value slots and positions (every entry is in chain 0: no change there)
            assertEquals(sent + 10 * 3, device.tableIntsSent(), "an eviction sends what moved down after it");
            new AttentionKernel().attend(lane, q, new int[] {100}, 2, null, ref, null, null);
            DenseDecodeTest.assertClose(ref, out, d, "after an eviction");
            lane.clear();
        }
    }
}
