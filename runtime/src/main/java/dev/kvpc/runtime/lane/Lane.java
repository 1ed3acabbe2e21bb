package dev.kvpc.runtime.lane;

import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.QuantSpec;
import dev.kvpc.runtime.store.RowCodec;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One lane (a KV head of a layer of a sequence): its entries in position order, with keys and values in dense
 * row chains of pages from the shared pool, each part at its own storage format, plus per-token state columns and
 * merge counts. Removing entries gives memory back to the pool. Not thread-safe: one sequence, one thread.
 */
public final class Lane implements KernelRows {
    /** Keys or values. */
    public enum Part { KEYS, VALUES }

    private final PagePool pool;
    private final int headDim;
    /** Rows a page of each chain holds: half of the configured page (keys and values are in chains of their own). */
    private final int rowsPerPage;
    private final QuantSpec host;
    private final List<RowStore> chains = new ArrayList<>();
    /** Each chain's format, read without a call through {@link RowStore} (whose classes differ from chain to chain). */
    private QuantSpec[] chainSpecs = new QuantSpec[4];
    /**
     * The chain of each format, keys' and values' apart: a pass over a lane's keys (a step's scores) then reads its
     * key rows one after another, not every other row of pages it shares with the values.
     */
    private final List<Map<QuantSpec, Integer>> chainOf = List.of(new HashMap<>(), new HashMap<>());
    /**
     * Per chain: who owns each slot, as {@code 2 * position + part} (the compensation entry's position is -1). Keyed
     * by position, not entry index, so that survivors moving down in {@link #retain} keep their keys: eviction
     * copies arrays and touches no slot table. {@link #ownerIndex} finds the entry again.
     */
    private final List<int[]> owner = new ArrayList<>();
    /** Per chain and part ({@code 2 * chain + part}): how many entries hold that part there. */
    private int[] partCount = new int[8];
    /**
     * Per part: entries {@code [0, prefix[part])} are regular entries holding that part at precision
     * {@code prefixAt[part]}. A lower bound, lowered by every change that could break it and raised only by
     * {@link #prefixAt}: a standing store's targets are then found above it, not among the thousands below.
     */
    private final int[] prefix = new int[2];
    private final dev.kvpc.runtime.store.Precision[] prefixAt = new dev.kvpc.runtime.store.Precision[2];

    private int n;
    private int[] pos = new int[16], step = new int[16], chain = new int[32], slot = new int[32];
    private double[] count = new double[16];
    private boolean[] comp = new boolean[16];
    private final Map<String, float[]> states = new LinkedHashMap<>();
    private int version, order;
    private long rows;
    private final Map<String, Integer> stateWidth = new LinkedHashMap<>();
    /** Per-page state: values per page, its width per page, and the page size in entries. */
    private final Map<String, float[]> pageStates = new LinkedHashMap<>();
    private final Map<String, int[]> pageStateShape = new LinkedHashMap<>();

    public Lane(PagePool pool, int headDim, QuantSpec host, int rowsPerPage) {
        this.pool = pool;
        this.headDim = headDim;
        this.host = host.validate(headDim);
        if (rowsPerPage < 1) throw new IllegalArgumentException("rows per page must be positive");
        this.rowsPerPage = entriesPerPage(rowsPerPage);
    }

    @Override
    public int size() {
        return n;
    }

    @Override
    public int headDim() {
        return headDim;
    }

    /** The format new entries arrive in (the host's precision). */
    public QuantSpec hostSpec() {
        return host;
    }

    public int position(int i) {
        check(i);
        return pos[i];
    }

    /**
     * A counter that changes whenever the entries or their order change (an entry added, entries dropped or moved):
     * arrays indexed by entry stay valid while it reads the same.
     */
    public int entriesVersion() {
        return version;
    }

    /**
     * A counter that changes whenever entries move to other indices (an entry before the last ones leaves, or two
     * swap), but not when entries are appended or only the last ones leave: entries there at an earlier reading and
     * still there are at the same indices while it reads the same.
     */
    public int orderVersion() {
        return order;
    }

    /**
     * A counter that changes whenever a stored row changes in place (re-stored at another format, packed into a block,
     * overwritten by a merge): what was computed from an entry's rows holds while it and the entries read the same.
     */
    public long rowsVersion() {
        return rows;
    }

    /** The lane's own positions array (entry i's at i, -1 for the compensation entry): read only. */
    @Override
    public int[] positionTable() {
        return pos;
    }

    public int addedAtStep(int i) {
        check(i);
        return step[i];
    }

    public double count(int i) {
        check(i);
        return count[i];
    }

    private void check(int i) {
        if (i < 0 || i >= n) throw new IndexOutOfBoundsException("entry " + i + " of " + n);
    }

    /** Declares a per-token state of {@code width} floats per entry (0 for existing entries). */
    public void declareState(String name, int width) {
        if (stateWidth.containsKey(name)) return;
        stateWidth.put(name, width);
        states.put(name, new float[Math.max(16, pos.length) * width]);
    }

    /** The state column of {@code name}: {@code width} floats per entry, entries in order; writable. */
    public float[] state(String name) {
        float[] s = states.get(name);
        if (s == null) throw new IllegalArgumentException("no state " + name);
        return s;
    }

    /**
     * Sets a per-page state: {@code values} holds {@code width} floats for each page of {@code pageSize} entries
     * (Quest's per-page key bounds). The runtime keeps it with the lane and counts its bytes.
     */
    public void setPageState(String name, int pageSize, int width, float[] values) {
        if (pageSize < 1 || width < 1 || values.length % width != 0) throw new IllegalArgumentException("bad page state " + name);
        pageStates.put(name, values.clone());
        pageStateShape.put(name, new int[] {pageSize, width});
    }

    /** Whether a per-page state of that name has been set. */
    public boolean hasPageState(String name) {
        return pageStates.containsKey(name);
    }

    public float[] pageState(String name) {
        float[] v = pageStates.get(name);
        if (v == null) throw new IllegalArgumentException("no page state " + name);
        return v;
    }

    private int chainFor(QuantSpec spec, Part part) {
        Integer c = chainOf.get(part.ordinal()).get(spec);
        if (c != null) return c;
        boolean blocks = spec.quantised() && spec.axis() == QuantSpec.Axis.CHANNEL;
        chains.add(blocks ? new BlockChain(spec, headDim, pool, 1) : new RowChain(RowCodec.of(spec, headDim), pool, rowsPerPage));
        if (elsewhere != null) fillFrom(chains.getLast(), chains.size() - 1);
        if (chainSpecs.length < chains.size()) chainSpecs = Arrays.copyOf(chainSpecs, 2 * chains.size());
        chainSpecs[chains.size() - 1] = chains.getLast().spec();
        owner.add(new int[16]);
        if (partCount.length < chains.size() * 2) partCount = Arrays.copyOf(partCount, chains.size() * 4);
        chainOf.get(part.ordinal()).put(spec, chains.size() - 1);
        return chains.size() - 1;
    }

    private void grow() {
        if (n < pos.length) return;
        int cap = pos.length * 2;
        pos = Arrays.copyOf(pos, cap);
        step = Arrays.copyOf(step, cap);
        count = Arrays.copyOf(count, cap);
        comp = Arrays.copyOf(comp, cap);
        chain = Arrays.copyOf(chain, cap * 2);
        slot = Arrays.copyOf(slot, cap * 2);
        for (var e : states.entrySet()) e.setValue(Arrays.copyOf(e.getValue(), cap * stateWidth.get(e.getKey())));
    }

    /** Records that slot {@code s} of chain {@code c} holds part {@code idx & 1} of entry {@code idx >> 1} (whose position is set). */
    private void own(int c, int s, int idx) {
        int[] o = owner.get(c);
        if (s >= o.length) {
            o = Arrays.copyOf(o, Math.max(s + 1, o.length * 2));
            owner.set(c, o);
        }
        o[s] = pos[idx >> 1] * 2 + (idx & 1);
    }

    /** The {@code 2 * entry + part} index of an owner key: regular entries are in position order, the compensation entry last. */
    private int ownerIndex(int key) {
        int p = key >> 1, part = key & 1;
        int regular = n > 0 && comp[n - 1] ? n - 1 : n;
        int entry = p == -1 ? regular : Arrays.binarySearch(pos, 0, regular, p);
        if (entry < 0 || entry >= n || pos[entry] != p) throw new IllegalStateException("no entry at position " + p + " owns a slot");
        return entry * 2 + part;
    }

    /** Whether entry {@code i} is the lane's compensation entry (merged summary, always last, position -1). */
    public boolean isCompensation(int i) {
        check(i);
        return comp[i];
    }

    /** Appends an entry at the host precision; positions must increase (the compensation entry stays last). */
    public void append(int position, int addedAtStep, float[] k, int kOff, float[] v, int vOff) {
        int last = n > 0 && comp[n - 1] ? n - 2 : n - 1;
        if (last >= 0 && position <= pos[last]) throw new IllegalArgumentException("position " + position + " after " + pos[last]);
        add(position, addedAtStep, k, kOff, v, vOff, false, 1);
        if (n >= 2 && comp[n - 2]) swap(n - 2, n - 1);
    }

    /**
     * Where the bytes of pages written elsewhere come from: a device that keeps this lane's pages and writes appended
     * rows into its copy ({@link #appendElsewhere}).
     */
    public interface PageSource {
        /** Copies page {@code page} of chain {@code chain} of {@code lane}, as the holder has it, into {@code into}. */
        void fill(Lane lane, int chain, int page, java.lang.foreign.MemorySegment into);

        /**
         * Copies {@code bytes} from {@code fromOffset} of page {@code fromPage} to {@code toOffset} of page
         * {@code toPage} of chain {@code chain}, in the holder's copy of both, whose bytes are the newest: a row that
         * moves down when another leaves its chain. False where the holder does not (the host copies, having brought
         * both pages back); by default false.
         */
        default boolean move(Lane lane, int chain, int fromPage, long fromOffset, int toPage, long toOffset, long bytes) {
            return false;
        }

        /** Whether the holder re-stores rows of format {@code from} at {@code to} itself ({@link #convert}); by default false. */
        default boolean converts(Lane lane, QuantSpec from, QuantSpec to) {
            return false;
        }

        /**
         * Re-stores the row in slot {@code fromSlot} of chain {@code fromChain}, whose newest bytes the holder has, into
         * slot {@code toSlot} of chain {@code toChain} (taken with its bytes left to the holder), in the holder's copy:
         * the row the host's codecs would write there from the row it would read (a store at another format).
         */
        default void convert(Lane lane, int fromChain, int fromSlot, int toChain, int toSlot) {
            throw new UnsupportedOperationException("this holder does not re-store rows");
        }

        /**
         * A merge in the holder's copy, as {@code LaneView.merge} makes it: each of {@code sources} in order folds into
         * the most similar of {@code dests} ({@code by}: {@link #MERGE_NEAREST}, {@link #MERGE_COSINE_KEYS},
         * {@link #MERGE_COSINE_VALUES}, or {@link #MERGE_ALL} into {@code dests[0]}), weighted by the entries' counts
         * and {@code weights}, the row stored again at its format. Returns the entry each source folded into (-1:
         * none), the lane's counts left to the caller; null where the holder does not merge these rows.
         */
        default int[] merge(Lane lane, int[] sources, int[] dests, int by, double[] weights) {
            return null;
        }

        int MERGE_NEAREST = 0, MERGE_COSINE_KEYS = 1, MERGE_COSINE_VALUES = 2, MERGE_ALL = 3;

        /** Whether the holder packs part {@code part} of {@code entries} into a block of {@code spec} itself ({@link #pack}); by default false. */
        default boolean packs(Lane lane, Part part, int[] entries, QuantSpec spec) {
            return false;
        }

        /**
         * Quantises part {@code part} of {@code entries} (their rows as the holder has them, each read as its codec
         * reads it) per channel into block {@code block} of chain {@code chain} (taken with its bytes left to the
         * holder), as {@code ChannelBlockCodec.quantise} writes it.
         */
        default void pack(Lane lane, Part part, int[] entries, int chain, int block) {
            throw new UnsupportedOperationException("this holder does not pack blocks");
        }
    }

    /**
     * A merge where the lane's rows are kept elsewhere, made there ({@link PageSource#merge}): the destinations' rows
     * change there, and their pages are brought back when the host next reads them. Returns what
     * {@link PageSource#merge} returns (null: the caller merges on the host); the counts are the caller's to add.
     */
    public int[] mergeElsewhere(int[] sources, int[] dests, int by, double[] weights) {
        if (elsewhere == null) return null;
        int[] best = elsewhere.merge(this, sources, dests, by, weights);
        if (best == null) return null;
        rows++;
        for (int b : best) {
            if (b < 0) continue;
            for (int p = 0; p < 2; p++) ((RowChain) chains.get(chain[2 * b + p])).markElsewhere(slot[2 * b + p]);
        }
        return best;
    }

    private PageSource elsewhere;

    /**
     * From now on rows of this lane may be written elsewhere ({@link #appendElsewhere}), their pages' bytes brought
     * back from {@code source} when the host reads or writes them. One source for the lane's life.
     */
    public void keepRowsElsewhere(PageSource source) {
        java.util.Objects.requireNonNull(source, "source");
        if (elsewhere == source) return;
        if (elsewhere != null) throw new IllegalStateException("this lane's rows are already kept elsewhere");
        elsewhere = source;
        for (int c = 0; c < chains.size(); c++) fillFrom(chains.get(c), c);
    }

    private void fillFrom(RowStore store, int c) {
        PageSource src = elsewhere;
        ElsewherePages.Fill f = new ElsewherePages.Fill() {
            @Override
            public void fill(int page, java.lang.foreign.MemorySegment into) {
                src.fill(Lane.this, c, page, into);
            }

            @Override
            public boolean move(int fromPage, long fromOffset, int toPage, long toOffset, long bytes) {
                return src.move(Lane.this, c, fromPage, fromOffset, toPage, toOffset, bytes);
            }
        };
        switch (store) {
            case RowChain rc -> rc.fillFrom(f);
            case BlockChain bc -> bc.fillFrom(f);
        }
    }

    /**
     * Appends an entry at the host precision whose key and value rows someone else writes: the holder of the lane's
     * pages ({@link #keepRowsElsewhere}) writes them into its copy of their slots ({@link #slotTable},
     * {@link #chainTable}), and the host's pages get them back when the host next reads them. Returns the entry's
     * index; positions must increase, as for {@link #append}.
     */
    public int appendElsewhere(int position, int addedAtStep) {
        if (elsewhere == null) throw new IllegalStateException("this lane's rows are not kept elsewhere");
        int last = n > 0 && comp[n - 1] ? n - 2 : n - 1;
        if (last >= 0 && position <= pos[last]) throw new IllegalArgumentException("position " + position + " after " + pos[last]);
        add(position, addedAtStep, null, 0, null, 0, false, 1);
        if (n >= 2 && comp[n - 2]) {
            swap(n - 2, n - 1);
            return n - 2;
        }
        return n - 1;
    }

    /** Adds the compensation entry (there is at most one). */
    public void appendCompensation(int addedAtStep, float[] k, float[] v, double weight) {
        for (int i = 0; i < n; i++) if (comp[i]) throw new IllegalStateException("the lane already has a compensation entry");
        add(-1, addedAtStep, k, 0, v, 0, true, weight);
    }

    private void add(int position, int addedAtStep, float[] k, int kOff, float[] v, int vOff, boolean compensation, double c) {
        grow();
        version++;
        pos[n] = position;
        step[n] = addedAtStep;
        count[n] = c;
        comp[n] = compensation;
        for (var e : states.entrySet()) Arrays.fill(e.getValue(), n * stateWidth.get(e.getKey()), (n + 1) * stateWidth.get(e.getKey()), 0f);
        place(n, Part.KEYS, chainFor(host, Part.KEYS), k, kOff);
        place(n, Part.VALUES, chainFor(host, Part.VALUES), v, vOff);
        n++;
    }

    private void swap(int a, int b) {
        version++;
        order++;
        int tp = pos[a]; pos[a] = pos[b]; pos[b] = tp;
        int ts = step[a]; step[a] = step[b]; step[b] = ts;
        double tc = count[a]; count[a] = count[b]; count[b] = tc;
        boolean tb = comp[a]; comp[a] = comp[b]; comp[b] = tb;
        for (int p = 0; p < 2; p++) {
            int ia = a * 2 + p, ib = b * 2 + p;
            int c = chain[ia]; chain[ia] = chain[ib]; chain[ib] = c;
            int sl = slot[ia]; slot[ia] = slot[ib]; slot[ib] = sl;
            own(chain[ia], slot[ia], ia);
            own(chain[ib], slot[ib], ib);
            prefix[p] = Math.min(prefix[p], Math.min(a, b));
        }
        for (var e : states.entrySet()) {
            int w = stateWidth.get(e.getKey());
            float[] col = e.getValue();
            for (int i = 0; i < w; i++) {
                float t = col[a * w + i];
                col[a * w + i] = col[b * w + i];
                col[b * w + i] = t;
            }
        }
    }

    private void place(int entry, Part part, int c, float[] row, int off) {
        RowChain rc = (RowChain) chains.get(c);
        // no row: its bytes are written elsewhere (appendElsewhere)
        int s = row == null ? rc.addElsewhere() : rc.add(row, off);
        placed(entry, part, c, s);
    }

    /** Records that part {@code part} of {@code entry} is in slot {@code s} of chain {@code c}. */
    private void placed(int entry, Part part, int c, int s) {
        int idx = entry * 2 + part.ordinal();
        chain[idx] = c;
        slot[idx] = s;
        own(c, s, idx);
        partCount[idx & 1 | c << 1]++;
        int pi = part.ordinal();
        if (entry < prefix[pi] && chainSpecs[c].precision() != prefixAt[pi]) prefix[pi] = entry;
    }

    private void unplace(int idx) {
        int c = chain[idx];
        partCount[idx & 1 | c << 1]--;
        chains.get(c).remove(slot[idx], (from, to) -> {
            int movedIdx = ownerIndex(owner.get(c)[from]);
            slot[movedIdx] = to;
            own(c, to, movedIdx);
        });
    }

    public QuantSpec spec(int entry, Part part) {
        check(entry);
        return chainSpecs[chain[entry * 2 + part.ordinal()]];
    }

    /** How many entries (the compensation entry included) hold {@code part} at precision {@code p}, in any layout: O(formats). */
    public int countAt(Part part, dev.kvpc.runtime.store.Precision p) {
        int total = 0;
        for (int c = 0; c < chains.size(); c++) if (chainSpecs[c].precision() == p) total += partCount[c * 2 + part.ordinal()];
        return total;
    }

    /** Whether entry {@code i}'s {@code part} is stored at precision {@code p}. */
    public boolean isAt(int entry, Part part, dev.kvpc.runtime.store.Precision p) {
        check(entry);
        return chainSpecs[chain[entry * 2 + part.ordinal()]].precision() == p;
    }

    /**
     * How many leading entries hold {@code part} at precision {@code p}, or fewer (a lower bound: 0 when the lane
     * tracks another precision for the part): every entry below the answer is a regular entry at {@code p}. Amortised
     * O(1) when asked again and again as entries arrive and are stored (a standing store).
     */
    public int prefixAt(Part part, dev.kvpc.runtime.store.Precision p) {
        int pi = part.ordinal(), l = prefix[pi];
        if (prefixAt[pi] != p) {
            if (l > 0) return 0;
            prefixAt[pi] = p;
        }
        while (l < n && !comp[l] && chainSpecs[chain[l * 2 + pi]].precision() == p) l++;
        prefix[pi] = l;
        return l;
    }

    /**
     * Quantises one part of {@code group} entries together per channel (a block, KIVI's keys): their current values
     * become one block of the spec's format.
     */
    public void packBlock(int[] entries, Part part, QuantSpec spec) {
        if (!spec.quantised() || spec.axis() != QuantSpec.Axis.CHANNEL) throw new IllegalArgumentException(spec + " is not a per-channel format");
        if (entries.length != spec.group()) throw new IllegalArgumentException("a block holds " + spec.group() + " entries, got " + entries.length);
        this.rows++;
        if (elsewhere != null && elsewhere.packs(this, part, entries, spec)) {
            // the holder of the lane's pages packs the block in its copy, from the rows as it holds them
            int c = chainFor(spec, part);
            int first = ((BlockChain) chains.get(c)).addBlockElsewhere();
            elsewhere.pack(this, part, entries, c, first / spec.group());
            for (int e : entries) unplace(e * 2 + part.ordinal());
            placeBlock(entries, part, spec, c, first);
            return;
        }
        float[] rows = new float[entries.length * headDim];
        for (int t = 0; t < entries.length; t++) read(entries[t], part, rows, t * headDim);
        for (int e : entries) unplace(e * 2 + part.ordinal());
        int c = chainFor(spec, part);
        int first = ((BlockChain) chains.get(c)).addBlock(rows);
        placeBlock(entries, part, spec, c, first);
    }

    /** Records that the entries' parts are tokens {@code 0 .. group-1} of the block at slot {@code first} of chain {@code c}. */
    private void placeBlock(int[] entries, Part part, QuantSpec spec, int c, int first) {
        if (spec.precision() != prefixAt[part.ordinal()]) for (int e : entries) prefix[part.ordinal()] = Math.min(prefix[part.ordinal()], e);
        for (int t = 0; t < entries.length; t++) {
            int idx = entries[t] * 2 + part.ordinal();
            chain[idx] = c;
            slot[idx] = first + t;
            own(c, first + t, idx);
            partCount[idx & 1 | c << 1]++;
        }
    }

    /** Re-stores one part of an entry at another per-token format (its current, dequantised values quantised anew). */
    public void restore(int entry, Part part, QuantSpec spec) {
        check(entry);
        if (spec.quantised() && spec.axis() == QuantSpec.Axis.CHANNEL) throw new IllegalArgumentException("per-channel formats are stored in blocks: packBlock");
        int idx = entry * 2 + part.ordinal();
        if (chainSpecs[chain[idx]].equals(spec)) return;
        rows++;
        if (elsewhere != null && chains.get(chain[idx]) instanceof RowChain from && from.isElsewhere(slot[idx])
                && elsewhere.converts(this, chainSpecs[chain[idx]], spec)) {
            // the row's newest bytes are with the holder of the lane's pages: it re-stores the row there
            int c = chainFor(spec, part);
            int s = ((RowChain) chains.get(c)).addElsewhere();
            elsewhere.convert(this, chain[idx], slot[idx], c, s);
            unplace(idx);
            placed(entry, part, c, s);
            return;
        }
        float[] row = new float[headDim];
        chains.get(chain[idx]).read(slot[idx], row, 0);
        unplace(idx);
        place(entry, part, chainFor(spec, part), row, 0);
    }

    public void read(int entry, Part part, float[] dst, int dstOff) {
        check(entry);
        int idx = entry * 2 + part.ordinal();
        chains.get(chain[idx]).read(slot[idx], dst, dstOff);
    }

    /** Overwrites an entry's row (a merge), at its current format, and its count. */
    public void overwrite(int entry, Part part, float[] row, int rowOff) {
        check(entry);
        int idx = entry * 2 + part.ordinal();
        rows++;
        chains.get(chain[idx]).write(slot[idx], row, rowOff);
    }

    public void setCount(int entry, double c) {
        check(entry);
        count[entry] = c;
    }

    public float dotKey(int entry, float[] q, int qOff) {
        int idx = entry * 2;
        return chains.get(chain[idx]).dot(slot[idx], q, qOff);
    }

    /**
     * {@code q . k} over {@code d} channels as every stored format sums it: channel c into partial sum {@code c mod 4},
     * then {@code (s0 + s1) + (s2 + s3)}. {@link #dotKey} equals this on the key row {@link #read} gives, bit for bit.
     */
    public static float dot4(float[] q, int qOff, float[] k, int kOff, int d) {
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
        int c = 0;
        for (; c + 3 < d; c += 4) {
            s0 += q[qOff + c] * k[kOff + c];
            s1 += q[qOff + c + 1] * k[kOff + c + 1];
            s2 += q[qOff + c + 2] * k[kOff + c + 2];
            s3 += q[qOff + c + 3] * k[kOff + c + 3];
        }
        if (c < d) s0 += q[qOff + c] * k[kOff + c];
        if (c + 1 < d) s1 += q[qOff + c + 1] * k[kOff + c + 1];
        if (c + 2 < d) s2 += q[qOff + c + 2] * k[kOff + c + 2];
        return (s0 + s1) + (s2 + s3);
    }

    /**
     * The similarity a merge by cosine uses: {@code a . b / (|a| |b|)} of two rows, summed in double in channel order
     * (0 when either row is zero). The interpreter and the runtime's runner both call this.
     */
    public static double cosine(float[] a, float[] b) {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.length; i++) {
            dot += a[i] * b[i];
            na += a[i] * a[i];
            nb += b[i] * b[i];
        }
        return na == 0 || nb == 0 ? 0 : dot / Math.sqrt(na * nb);
    }

    /**
     * The merge fold: row {@code from} folded into row {@code into} in place, as the mean of the two weighted by
     * count x weight ({@code countInto * wInto} and {@code countFrom * wFrom}); by counts alone when those weigh
     * nothing, and {@code from} as it is when the counts do too. Each channel is mixed in double and rounded to float.
     * The interpreter and the runtime's runner both call this, for keys and for values.
     */
    public static void mergeRow(float[] into, float[] from, double countInto, double countFrom, double wInto, double wFrom) {
        double a = countInto * wInto, b = countFrom * wFrom;
        if (a + b <= 0) {
            a = countInto;
            b = countFrom;
        }
        if (a + b <= 0) {
            a = 0;
            b = 1;
        }
        for (int c = 0; c < into.length; c++) into[c] = (float) ((into[c] * a + from[c] * b) / (a + b));
    }

    /** An entry's weight in a merge, from the policy's weight value: never below 1e-12, so no entry weighs nothing. */
    public static double mergeWeight(double w) {
        return Math.max(1e-12, w);
    }

    /** {@code acc[accOff + c] += w * v[c]} for the entry's value row {@code v} as {@link #read} gives it, bit for bit. */
    public void axpyValue(int entry, float w, float[] acc, int accOff) {
        int idx = entry * 2 + 1;
        chains.get(chain[idx]).axpy(slot[idx], w, acc, accOff);
    }

    // ---- direct row access for compiled kernels (dev.kvpc.runtime.engine.DecodeKernel) ----

    /**
     * The per-token row format in which every entry's {@code part} is stored, when all of them live in one row chain
     * (so a compiled kernel can read them in place); null when the lane is empty, the part is spread over several
     * formats, or it is held in per-channel blocks. Costs one pass over the entries.
     */
    public QuantSpec rowFormat(Part part) {
        if (n == 0) return null;
        int c = chain[part.ordinal()];
        if (!(chains.get(c) instanceof RowChain)) return null;
        for (int i = 1; i < n; i++) if (chain[i * 2 + part.ordinal()] != c) return null;
        return chains.get(c).spec();
    }

    /**
     * The slot table: entry {@code i}'s part {@code p} is row {@code table[2 * i + p.ordinal()]} of its chain. The
     * lane's own array, to be read only, and valid until the lane next changes.
     */
    @Override
    public int[] slotTable() {
        return slot;
    }

    /**
     * What {@link #bytes()} is for a lane holding {@code entries} entries, keys and values all at {@code spec}, the
     * lane made with pages of {@code rowsPerPage} rows: a chain of keys and a chain of values, each in whole pages of
     * {@link #entriesPerPage} rows (for an even {@code rowsPerPage}, as many bytes as the entries' key and value rows
     * in whole pages of {@code rowsPerPage}).
     */
    public static long bytesAt(QuantSpec spec, int headDim, int rowsPerPage, long entries) {
        long e = entriesPerPage(rowsPerPage), rows = 2 * ((entries + e - 1) / e * e);
        return rows * RowCodec.of(spec, headDim).rowBytes();
    }

    /**
     * Entries a page of {@code rowsPerPage} rows holds, a key row and a value row each: its keys and its values are
     * in pages of half that many rows, one chain for each part, so that a pass over the keys reads them one after
     * another (a step's scores) and a pass over the values likewise.
     */
    public static int entriesPerPage(int rowsPerPage) {
        return Math.max(1, rowsPerPage / 2);
    }

    /**
     * Rows per page of the lane's chains ({@link #entriesPerPage} of the rows per page it was made with): slot
     * {@code s} is row {@code s % rowsPerPage} of page {@code s / rowsPerPage}.
     */
    @Override
    public int rowsPerPage() {
        return rowsPerPage;
    }

    /**
     * The page segments of the row chain holding {@code part} (entry 0's chain; check {@link #rowFormat} first):
     * row {@code s} starts at byte {@code (s % rowsPerPage) * rowBytes} of page {@code s / rowsPerPage}, laid out as
     * its {@link RowCodec} says. Valid until the lane next changes.
     */
    @Override
    public java.lang.foreign.MemorySegment[] rowPages(Part part) {
        if (n == 0) return new java.lang.foreign.MemorySegment[0];
        if (!(chains.get(chain[part.ordinal()]) instanceof RowChain rc)) throw new IllegalStateException(part + " of this lane are not in a row chain");
        return rc.pageSegments();
    }

    /**
     * Which chains hold keys or values now, as bits {@code 2 * chain + part} (-1 when the lane has more than 32
     * chains): the same bits mean the same {@link #formatsInUse} and {@link #rowFormat}s, since chains are only ever
     * added and keep their format. No allocation.
     */
    public long chainsInUse() {
        if (chains.size() > 32) return -1;
        long bits = 0;
        for (int i = 0; i < 2 * chains.size(); i++) if (partCount[i] > 0) bits |= 1L << i;
        return bits;
    }

    /** The formats of the chains that hold some entry's key or value now. */
    public java.util.Set<QuantSpec> formatsInUse() {
        java.util.Set<QuantSpec> s = new java.util.HashSet<>();
        for (int c = 0; c < chains.size(); c++) if (partCount[2 * c] + partCount[2 * c + 1] > 0) s.add(chains.get(c).spec());
        return s;
    }

    @Override
    public int[] chainTable() {
        return chain;
    }

    @Override
    public int chainCount() {
        return chains.size();
    }

    @Override
    public QuantSpec chainSpec(int c) {
        if (c >= chains.size()) throw new IndexOutOfBoundsException("chain " + c + " of " + chains.size());
        return chainSpecs[c];
    }

    @Override
    public java.lang.foreign.MemorySegment[] chainPages(int c) {
        return chains.get(c).pageSegments();
    }

    @Override
    public java.lang.foreign.MemorySegment[] chainPagesAsHeld(int c) {
        return switch (chains.get(c)) {
            case RowChain rc -> rc.pageSegmentsAsHeld();
            case BlockChain bc -> bc.pageSegmentsAsHeld();
        };
    }

    @Override
    public long[] chainPageStamps(int c) {
        return chains.get(c).pageStamps();
    }

    /** Keeps exactly the entries whose indices are set; the others' rows leave their chains (memory falls). */
    public void retain(BitSet keep) {
        version++;
        for (int i = keep.previousClearBit(n - 1); i >= 0; i = keep.previousClearBit(i - 1)) {
            unplace(i * 2);
            unplace(i * 2 + 1);
        }
        // survivors move down in runs (one copy per run and array, not per entry): evicting one entry of a long
        // lane is one pass of array copies
        int w = 0, keys = 0, values = 0;
        for (int a = keep.nextSetBit(0); a >= 0 && a < n; ) {
            int b = Math.min(n, keep.nextClearBit(a));
            int len = b - a;
            // the kept entries of a prefix are the new prefix
            keys += Math.max(0, Math.min(b, prefix[0]) - a);
            values += Math.max(0, Math.min(b, prefix[1]) - a);
            if (w != a) {
                System.arraycopy(pos, a, pos, w, len);
                System.arraycopy(step, a, step, w, len);
                System.arraycopy(count, a, count, w, len);
                System.arraycopy(comp, a, comp, w, len);
                System.arraycopy(chain, a * 2, chain, w * 2, len * 2);
                System.arraycopy(slot, a * 2, slot, w * 2, len * 2);
                for (var e : states.entrySet()) {
                    int wd = stateWidth.get(e.getKey());
                    System.arraycopy(e.getValue(), a * wd, e.getValue(), w * wd, len * wd);
                }
                // slot owners are keyed by position: nothing to update
            }
            w += len;
            a = b >= n ? -1 : keep.nextSetBit(b);
        }
        // keeping a prefix moves no entry
        if (keep.nextClearBit(0) < w) order++;
        n = w;
        prefix[0] = keys;
        prefix[1] = values;
    }

    /** Bytes held, by category: key and value rows (packed data and their scales), and per-token state. */
    public LaneBytes bytes() {
        long kv = 0, scales = 0;
        for (RowStore c : chains) {
            long sc = c.scaleBytes();
            kv += c.bytes() - sc;
            scales += sc;
        }
        long state = 0;
        for (var e : stateWidth.entrySet()) state += (long) n * e.getValue() * dev.kvpc.ir.Ty.Elem.STATE_BYTES;
        for (float[] v : pageStates.values()) state += (long) v.length * dev.kvpc.ir.Ty.Elem.STATE_BYTES;
        return new LaneBytes(kv, scales, state);
    }

    /** Measured bytes of a lane by category. */
    public record LaneBytes(long kv, long scales, long state) {
        public long total() {
            return kv + scales + state;
        }
    }

    /** Gives every page back to the pool. */
    public void clear() {
        version++;
        order++;
        for (RowStore c : chains) c.clear();
        Arrays.fill(partCount, 0);
        pageStates.clear();
        n = 0;
        prefix[0] = 0;
        prefix[1] = 0;
    }
}
