package dev.kvpc.runtime.lane;

import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Packing;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.store.QuantSpec;
import dev.kvpc.runtime.store.RowCodec;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Rows written elsewhere ({@link Lane#appendElsewhere}): a holder that keeps a copy of the lane's pages the way a
 * device does (sending a page only where its stamp moved, writing appended rows into its copy) and a lane that only
 * ever appends on the host go through the same appends, evictions, merges and re-stores, and read the same rows.
 */
class LaneElsewhereTest {
    /** A copy of a lane's pages, kept as {@code DeviceLane} keeps one: by stamp, from the pages as the host holds them. */
    static final class Holder implements Lane.PageSource {
        final Map<Integer, List<byte[]>> pages = new HashMap<>();
        final Map<Integer, long[]> sentStamps = new HashMap<>();
        int sent, filled;

        void sync(Lane lane) {
            for (int c = 0; c < lane.chainCount(); c++) {
                MemorySegment[] segs = lane.chainPagesAsHeld(c);
                long[] stamps = lane.chainPageStamps(c);
                List<byte[]> copy = pages.computeIfAbsent(c, x -> new ArrayList<>());
                long[] st = sentStamps.computeIfAbsent(c, x -> new long[4096]);
                while (copy.size() > segs.length) copy.removeLast();
                for (int p = 0; p < segs.length; p++) {
                    if (p >= copy.size()) {
                        copy.add(new byte[(int) segs[p].byteSize()]);
                        st[p] = Long.MIN_VALUE;
                    }
                    if (st[p] == stamps[p]) continue;
                    copy.set(p, segs[p].toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
                    st[p] = stamps[p];
                    sent++;
                }
            }
        }

        /** Writes entry {@code e}'s part into the copy, as the host's codec would. */
        void write(Lane lane, int e, Lane.Part part, float[] row) {
            int idx = 2 * e + part.ordinal(), c = lane.chainTable()[idx], s = lane.slotTable()[idx];
            QuantSpec spec = lane.chainSpec(c);
            long rowBytes = RowCodec.of(spec, lane.headDim()).rowBytes();
            MemorySegment page = MemorySegment.ofArray(pages.get(c).get(s / lane.rowsPerPage()));
            Packing.writeRow(spec.precision(), row, 0, lane.headDim(), page, (s % lane.rowsPerPage()) * rowBytes);
        }

        @Override
        public void fill(Lane lane, int chain, int page, MemorySegment into) {
            into.copyFrom(MemorySegment.ofArray(pages.get(chain).get(page)));
            filled++;
        }

        /** Whether rows move in the holder's copy ({@link Lane.PageSource#move}); else the host copies them. */
        boolean moves;
        int moved;

        @Override
        public boolean move(Lane lane, int chain, int fromPage, long fromOffset, int toPage, long toOffset, long bytes) {
            if (!moves) return false;
            System.arraycopy(pages.get(chain).get(fromPage), (int) fromOffset, pages.get(chain).get(toPage), (int) toOffset, (int) bytes);
            moved++;
            return true;
        }
    }

    @Test
    void rowsWrittenElsewhereReadAsRowsAppendedHere() {
        for (boolean moves : new boolean[] {false, true}) {
            for (Precision host : new Precision[] {Precision.F32, Precision.F16}) run(host, moves);
        }
    }

    private static void run(Precision host, boolean moves) {
        int d = 8;
        try (PagePool pool = new PagePool()) {
            Lane here = new Lane(pool, d, QuantSpec.of(host), 8), there = new Lane(pool, d, QuantSpec.of(host), 8);
            Holder holder = new Holder();
            holder.moves = moves;
            there.keepRowsElsewhere(holder);
            Random r = new Random(7);
            int position = 0;
            for (int step = 0; step < 300; step++) {
                int op = r.nextInt(10);
                if (op < 6) {
                    float[] k = LaneTest.row(r, d), v = LaneTest.row(r, d);
                    here.append(position, step, k, 0, v, 0);
                    if (r.nextInt(4) == 0) {
                        there.append(position, step, k, 0, v, 0);
                    } else {
                        int e = there.appendElsewhere(position, step);
                        holder.sync(there);
                        holder.write(there, e, Lane.Part.KEYS, k);
                        holder.write(there, e, Lane.Part.VALUES, v);
                    }
                    position++;
                } else if (op < 8 && here.size() > 4) {
                    BitSet keep = new BitSet();
                    for (int i = 0; i < here.size(); i++) if (r.nextInt(5) != 0) keep.set(i);
                    here.retain(keep);
                    there.retain(keep);
                } else if (op == 8 && here.size() > 0) {
                    int e = r.nextInt(here.size());
                    float[] m = LaneTest.row(r, d);
                    here.overwrite(e, Lane.Part.VALUES, m, 0);
                    there.overwrite(e, Lane.Part.VALUES, m, 0);
                } else if (here.size() > 0) {
                    int e = r.nextInt(here.size());
                    QuantSpec to = QuantSpec.of(Precision.F16);
                    here.restore(e, Lane.Part.KEYS, to);
                    there.restore(e, Lane.Part.KEYS, to);
                }
                if (r.nextInt(3) == 0) {
                    holder.sync(there);
                    assertSame(here, there, host + (moves ? ", moving there" : "") + ", step " + step);
                }
            }
            holder.sync(there);
            assertSame(here, there, host + " at the end");
            assertTrue(holder.filled > 0, "the host read rows written elsewhere");
            assertEquals(moves, holder.moved > 0, "rows moved where their pages were");
            assertEquals(here.bytes(), there.bytes());
        }
    }

    @Test
    void aPageAlreadyElsewhereIsNotSentAgain() {
        int d = 4;
        try (PagePool pool = new PagePool()) {
            Lane lane = new Lane(pool, d, QuantSpec.of(Precision.F32), 8);
            Holder holder = new Holder();
            lane.keepRowsElsewhere(holder);
            // 4 rows a page of each part (keys and values have chains of their own)
            int e = lane.appendElsewhere(0, 0);
            holder.sync(lane);
            assertEquals(2, holder.sent, "a new page of keys and one of values: their bytes may hold what the host wrote before");
            holder.write(lane, e, Lane.Part.KEYS, new float[] {1, 2, 3, 4});
            holder.write(lane, e, Lane.Part.VALUES, new float[] {5, 6, 7, 8});
            for (int p = 1; p < 4; p++) {
                e = lane.appendElsewhere(p, p);
                holder.sync(lane);
                holder.write(lane, e, Lane.Part.KEYS, new float[] {p, p, p, p});
                holder.write(lane, e, Lane.Part.VALUES, new float[] {-p, -p, -p, -p});
            }
            assertEquals(2, holder.sent, "appends into pages whose newest bytes are elsewhere send nothing");
            assertEquals(0, holder.filled);
            float[] got = new float[d];
            lane.read(0, Lane.Part.KEYS, got, 0);
            assertArrayEquals(new float[] {1, 2, 3, 4}, got);
            assertEquals(1, holder.filled, "reading a row brings its page back once");
            lane.read(3, Lane.Part.KEYS, got, 0);
            assertArrayEquals(new float[] {3, 3, 3, 3}, got);
            assertEquals(1, holder.filled);
            lane.read(2, Lane.Part.VALUES, got, 0);
            assertArrayEquals(new float[] {-2, -2, -2, -2}, got);
            assertEquals(2, holder.filled);
        }
    }

    @Test
    void appendingElsewhereNeedsAHolder() {
        try (PagePool pool = new PagePool()) {
            Lane lane = new Lane(pool, 4, QuantSpec.of(Precision.F32), 8);
            assertThrows(IllegalStateException.class, () -> lane.appendElsewhere(0, 0));
            Holder a = new Holder();
            lane.keepRowsElsewhere(a);
            lane.keepRowsElsewhere(a);
            assertThrows(IllegalStateException.class, () -> lane.keepRowsElsewhere(new Holder()));
        }
    }

    private static void assertSame(Lane a, Lane b, String where) {
        assertEquals(a.size(), b.size(), where);
        float[] x = new float[a.headDim()], y = new float[a.headDim()];
        for (int i = 0; i < a.size(); i++) {
            assertEquals(a.position(i), b.position(i), where);
            for (Lane.Part p : Lane.Part.values()) {
                assertEquals(a.spec(i, p), b.spec(i, p), where);
                a.read(i, p, x, 0);
                b.read(i, p, y, 0);
                assertArrayEquals(x, y, where + ", entry " + i + " " + p);
            }
            float[] q = {1, -2, 3, 0.5f, 0.25f, -1, 2, 1};
            assertEquals(a.dotKey(i, java.util.Arrays.copyOf(q, a.headDim()), 0), b.dotKey(i, java.util.Arrays.copyOf(q, b.headDim()), 0), where);
        }
    }
}
