package dev.kvpc.runtime;

import dev.kvpc.runtime.engine.AttentionKernel;
import dev.kvpc.runtime.engine.DecodeKernel;
import dev.kvpc.runtime.engine.DecodeKernelProvider;
import dev.kvpc.runtime.engine.DecodeKernels;
import dev.kvpc.runtime.engine.DenseRows;
import dev.kvpc.runtime.engine.HostArrays;
import dev.kvpc.runtime.engine.RowWriter;
import dev.kvpc.runtime.engine.Parallel;
import dev.kvpc.runtime.lane.KernelRows;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.QuantSpec;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One sequence's KV cache: a lane per (layer, KV head). A step starts with {@link #beginPrefill}, {@link #beginChunk}
 * or {@link #beginDecode}; then, per layer, {@link #append} the step's keys and values and {@link #attend} its
 * queries, which also runs the policy for that layer. Not thread-safe; close it to give its pages back.
 */
public final class Sequence implements AutoCloseable {
    private final ModelSpec model;
    private final PolicyRunner policy;
    private final Lane[][] lanes;
    /** Threads a layer's attention may use, and what each needs. */
    private final int threads;
    private final long minWork;
    private final Worker[] workers;
    private PolicyRunner.Step.Kind kind;
    private int next, tokens, decodeStep;
    private final boolean[] appended;
    /** What writes appended rows where the kernels keep the lanes (null: the host writes them). */
    private final RowWriter writer;
    private final DecodeKernelProvider provider;
    /** The current attend's: whether its lanes attend in place, and where the host's arrays are. */
    private boolean inPlace;
    private HostArrays arrays = HostArrays.HOST;
    private final int rowsPerPage;
    /** Positions each lane's attention read at the last attend of its layer (null: all entries). */
    private final int[][][] attended;

    Sequence(ModelSpec model, PolicyRunner policy, PagePool pool, int rowsPerPage, DecodeKernelProvider kernels, int threads, long minWork) {
        this.model = model;
        this.threads = threads;
        this.minWork = minWork;
        this.workers = new Worker[threads];
        for (int i = 0; i < threads; i++) workers[i] = new Worker(kernels);
        this.writer = kernels.rowWriter();
        this.provider = kernels;
        this.policy = policy;
        this.lanes = new Lane[model.layers()][model.kvHeads()];
        for (int l = 0; l < model.layers(); l++) {
            for (int h = 0; h < model.kvHeads(); h++) lanes[l][h] = new Lane(pool, model.headDim(), QuantSpec.of(model.dtype()), rowsPerPage);
        }
        this.appended = new boolean[model.layers()];
        this.rowsPerPage = rowsPerPage;
        this.attended = new int[model.layers()][model.kvHeads()][];
    }

    public void beginPrefill(int n) {
        begin(PolicyRunner.Step.Kind.PREFILL, n);
    }

    public void beginChunk(int n) {
        begin(PolicyRunner.Step.Kind.CHUNK, n);
    }

    public void beginDecode() {
        begin(PolicyRunner.Step.Kind.DECODE, 1);
    }

    private void begin(PolicyRunner.Step.Kind k, int n) {
        if (n < 1) throw new IllegalArgumentException("a step has at least one token");
        // a host that did not attend the last layer: what waits for it settles before the next step
        settle();
        if (kind != null) next += tokens;
        kind = k;
        tokens = n;
        if (k == PolicyRunner.Step.Kind.DECODE) decodeStep++;
        java.util.Arrays.fill(appended, false);
    }

    /** Appends the step's keys and values of a layer: {@code tokens x kvHeads x headDim} each. */
    public void append(int layer, float[] k, float[] v) {
        append(layer, k, v, HostArrays.HOST);
    }

    /**
     * As above, for a host whose arrays may be current elsewhere ({@code arrays}): where the decode kernels' provider
     * keeps the lanes on a device that holds copies of {@code k} and {@code v} ({@link DecodeKernelProvider#rowWriter}),
     * the rows are written there and cross to the host only if the host reads them; otherwise they are brought to
     * the host and appended here.
     */
    public void append(int layer, float[] k, float[] v, HostArrays arrays) {
        if (kind == null) throw new IllegalStateException("begin a step first");
        int d = model.headDim(), g = model.kvHeads();
        if (k.length != tokens * g * d || v.length != k.length) throw new IllegalArgumentException("keys and values must be tokens x kvHeads x headDim");
        if (writer != null && writer.writes(QuantSpec.of(model.dtype()), d, model.rope(), k, v, arrays, next + tokens - 1)) {
            Lane[] ls = lanes[layer];
            int[][] entries = new int[g][tokens];
            boolean[] rotate = new boolean[g];
            for (int h = 0; h < g; h++) {
                rotate[h] = model.rope() != null && !cachePositions(layer, h);
                ls[h].keepRowsElsewhere(writer.source());
                for (int t = 0; t < tokens; t++) entries[h][t] = ls[h].appendElsewhere(next + t, decodeStep);
            }
            writer.write(ls, entries, k, v, model.rope(), next, rotate);
            appended[layer] = true;
            return;
        }
        arrays.toHost(k);
        arrays.toHost(v);
        Rope rope = model.rope();
        float[] row = rope == null ? null : new float[d];
        for (int t = 0; t < tokens; t++) {
            for (int h = 0; h < g; h++) {
                if (rope != null && !cachePositions(layer, h)) {
                    // original positions: the key is stored rotated by its text position, as the host would have
                    System.arraycopy(k, (t * g + h) * d, row, 0, d);
                    rope.rotate(row, 0, d, next + t);
                    lanes[layer][h].append(next + t, decodeStep, row, 0, v, (t * g + h) * d);
                } else {
                    lanes[layer][h].append(next + t, decodeStep, k, (t * g + h) * d, v, (t * g + h) * d);
                }
            }
        }
        appended[layer] = true;
    }

    private boolean cachePositions(int layer, int kvHead) {
        int c = policy.laneClass(layer, kvHead);
        return c >= 0 && policy.cachePositions(c);
    }

    /**
     * Attention of the step's queries of a layer ({@code tokens x heads x headDim}) into {@code out} (same shape),
     * and the policy's work for this layer.
     */
    public void attend(int layer, float[] q, float[] out) {
        attend(layer, q, out, HostArrays.HOST);
    }

    /**
     * As above, for a host whose arrays may be current elsewhere ({@code arrays}): where the decode kernels attend in
     * place there ({@link DecodeKernelProvider#attendsInPlace}: a device that holds copies of {@code q} and
     * {@code out}), the queries are rotated and read there and the outputs written there, and the queries come to the
     * host only if the policy reads them; otherwise the queries come to the host and the outputs are written here.
     */
    public void attend(int layer, float[] q, float[] out, HostArrays arrays) {
        if (!appended[layer]) throw new IllegalStateException("append the step's keys and values of layer " + layer + " first");
        inPlace = arrays != HostArrays.HOST && provider.attendsInPlace(q, out, arrays, model.rope(), model.headDim(), next + tokens);
        this.arrays = arrays;
        int[] positions = new int[tokens];
        for (int t = 0; t < tokens; t++) positions[t] = next + t;
        boolean later = false;
        for (int h = 0; h < model.kvHeads(); h++) {
            int c = policy.laneClass(layer, h);
            later |= c >= 0 && policy.settlesAfterLastLayer(c);
        }
        // an event that settles after the last layer keeps this layer's queries (the host reuses its buffer)
        float[] kept = q;
        if (later) {
            arrays.toHost(q);
            kept = q.clone();
        }
        // the policy's reads of the queries bring them to the host (Step.queries)
        PolicyRunner.Step step = new PolicyRunner.Step(kind, positions, kept, decodeStep, next + tokens, model.rope(), this, later ? HostArrays.HOST : arrays);
        // lanes of one class in this layer that select together
        Map<Integer, List<Integer>> groups = new LinkedHashMap<>();
        for (int h = 0; h < model.kvHeads(); h++) {
            int c = policy.laneClass(layer, h);
            boolean together = c >= 0 && policy.perLayer(c);
            groups.computeIfAbsent(together ? c : -2 - h, x -> new ArrayList<>()).add(h);
        }
        // the order of events: every group's event opens (its attend sets chosen), in order of its first KV head;
        // then every lane attends (on several threads when that pays); then the events finish, in the same order
        List<PolicyRunner.Event> events = new ArrayList<>();
        LaneJob[] jobs = new LaneJob[model.kvHeads()];
        for (List<Integer> heads : groups.values()) {
            int c = policy.laneClass(layer, heads.getFirst());
            List<Lane> ls = new ArrayList<>();
            for (int h : heads) ls.add(lanes[layer][h]);
            PolicyRunner.Event ev = c < 0 ? null : policy.open(c, step, layer, heads.stream().mapToInt(Integer::intValue).toArray(), ls);
            BitSet[] attend = ev == null ? null : ev.attendSets();
            BitSet[][] perQueryHead = ev == null ? null : ev.queryHeadSets();
            float[][] sums = ev == null ? null : ev.columnSums();
            if (ev != null) events.add(ev);
            for (int i = 0; i < heads.size(); i++) {
                int h = heads.get(i);
                BitSet a = attend == null ? null : attend[i];
                attended[layer][h] = a == null ? null : a.stream().map(lanes[layer][h]::position).toArray();
                jobs[h] = new LaneJob(h, a, perQueryHead == null ? null : perQueryHead[i], sums == null ? null : sums[i]);
            }
        }
        int parts = parts(layer);
        // in place only where every lane's kernel is the provider's and attends the whole group together
        for (int h = 0; h < jobs.length && inPlace; h++) {
            inPlace = jobs[h].queryHeads() == null && lanes[layer][h].size() > 0 && workers[h % parts].kernel(layer, h, model.group()) != null;
        }
        if (!inPlace) arrays.toHost(q);
        Parallel.run(parts, p -> {
            for (int h = p; h < jobs.length; h += parts) workers[p].attend(layer, jobs[h], positions, q, out);
        });
        if (!inPlace) arrays.fromHost(out);
        for (PolicyRunner.Event ev : events) ev.finish();
        if (later) unsettled.addAll(events);
        if (layer == model.layers() - 1) settle();
    }

    /** Events of this step waiting for its last layer to settle ({@link PolicyRunner.Event#settle}), in layer order. */
    private final List<PolicyRunner.Event> unsettled = new ArrayList<>();

    private void settle() {
        for (PolicyRunner.Event ev : unsettled) ev.settle();
        unsettled.clear();
    }

    /**
     * One lane's attention in a step: its KV head, the entries it may read (null: all), the entries each query head
     * of its group reads (null: each reads {@code attend}), its fused column sums.
     */
    private record LaneJob(int kvHead, BitSet attend, BitSet[] queryHeads, float[] colSums) {}

    /**
     * Threads a layer's attention runs on: up to {@link #threads} while each gets at least {@link #minWork}
     * multiply-adds of keys and values (a hand-off costs microseconds), never more than the lanes.
     */
    private int parts(int layer) {
        if (threads == 1) return 1;
        long work = 0;
        for (Lane l : lanes[layer]) work += (long) l.size() * model.headDim() * model.group() * tokens * 2;
        long parts = minWork == 0 ? threads : work / minWork;
        return (int) Math.max(1, Math.min(Math.min(threads, model.kvHeads()), parts));
    }

    /**
     * What one thread needs to attend lanes: the kernels (they keep scratch buffers) and the step's buffers. Lanes
     * are spread over workers by KV head ({@code h mod parts}); each lane's result depends only on the lane, so the
     * number of threads changes no bit of the output.
     */
    private final class Worker {
        private final AttentionKernel kernel = new AttentionKernel();
        /** Compiled kernels for single-token steps of standard attention (the others run on {@link #kernel}). */
        private final DecodeKernels compiled;
        private float[] qLane = new float[0], outLane = new float[0];
        /** A lane's rows as one step reads them, for the f32 kernel (reused). */
        private DenseRows dense;

        Worker(DecodeKernelProvider provider) {
            this.compiled = new DecodeKernels(provider);
        }

        void attend(int layer, LaneJob job, int[] positions, float[] q, float[] out) {
            if (job.queryHeads() == null) {
                attend(layer, job, job.attend(), 0, model.group(), positions, q, out);
                return;
            }
            // a set per query head: each head of the group attends alone, its column sums adding to the lane's
            for (int gi = 0; gi < model.group(); gi++) attend(layer, job, job.queryHeads()[gi], gi, 1, positions, q, out);
        }

        /**
         * The compiled kernel for a lane's {@code group} query heads, or null (the runtime's kernel then): standard
         * attention, keys read in place (and rotated by slot as they are read, for positions cache, by a kernel that
         * can); under an attention variant, a kernel the provider makes from the variant's IR, if it makes one.
         */
        DecodeKernel kernel(int layer, int h, int group) {
            Lane lane = lanes[layer][h];
            boolean cache = model.rope() != null && cachePositions(layer, h);
            dev.kvpc.ir.AttentionIr variantIr = policy.variant() == null ? null : policy.variantIr();
            DecodeKernel dk = policy.variant() == null ? compiled.forLane(lane, group)
                    : variantIr != null ? compiled.forLaneVariant(lane, group, variantIr, model) : null;
            if (dk != null && cache && !dk.rotatesKeysBySlot()) dk = null;
            return dk;
        }

        /** As below, the kernel reading the queries and writing the outputs where {@link #arrays} has them. */
        private void attendInPlace(int layer, LaneJob job, BitSet a, int head0, int group, int[] positions, float[] q, float[] out) {
            int h = job.kvHead();
            Lane lane = lanes[layer][h];
            boolean cache = model.rope() != null && cachePositions(layer, h);
            DecodeKernel dk = kernel(layer, h, group);
            if (!dk.attendInPlace(lane, q, out, model.heads(), head0, group, positions, queryRotations(lane, cache, positions), model.rope(), a,
                    job.colSums(), cache ? model.rope() : null, arrays)) {
                throw new IllegalStateException("a kernel of a provider that attends in place did not");
            }
        }

        /** Attention of query heads {@code first..first+group-1} of the lane's group, reading entries {@code a} (null: all). */
        private void attend(int layer, LaneJob job, BitSet a, int first, int group, int[] positions, float[] q, float[] out) {
            int d = model.headDim(), h = job.kvHead(), head0 = h * model.group() + first;
            if (inPlace) {
                attendInPlace(layer, job, a, head0, group, positions, q, out);
                return;
            }
            if (qLane.length != tokens * group * d) {
                qLane = new float[tokens * group * d];
                outLane = new float[tokens * group * d];
            }
            Lane lane = lanes[layer][h];
            boolean cache = model.rope() != null && cachePositions(layer, h);
            // original: rotate by text position; cache: by the slot the query's own entry holds
            int[] at = queryRotations(lane, cache, positions);
            for (int t = 0; t < tokens; t++) {
                System.arraycopy(q, (t * model.heads() + head0) * d, qLane, t * group * d, group * d);
                if (at != null) for (int gi = 0; gi < group; gi++) model.rope().rotate(qLane, (t * group + gi) * d, d, at[t]);
            }
            float[] colSums = job.colSums();
            DecodeKernel dk = kernel(layer, h, group);
            Rope bySlot = dk != null && cache ? model.rope() : null;
            KernelRows rows = lane;
            if (dk == null && policy.variant() == null && lane.size() > 0 && (dk = compiled.dense(d, group)) != null) {
                // no kernel reads this lane in place (a format or mix the provider's kernels do not read, or keys
                // rotated by slot and no kernel that rotates them): its rows, read once for the step as the runtime
                // kernel reads them, go to the f32 kernel
                if (dense == null) dense = new DenseRows(d);
                rows = dense.read(lane, a, cache ? model.rope() : null, true);
            }
            if (dk != null && tokens == 1) {
                dk.attend(rows, qLane, positions[0], a, outLane, colSums, bySlot, head0);
            } else if (dk != null) {
                dk.attendAll(rows, qLane, positions, a, outLane, colSums, bySlot, head0);
            } else {
                kernel.attend(lane, qLane, positions, group, a, outLane, colSums, cache ? model.rope() : null, policy.variant(), head0, next + tokens);
            }
            for (int t = 0; t < tokens; t++) {
                System.arraycopy(outLane, t * group * d, out, (t * model.heads() + head0) * d, group * d);
            }
        }
    }

    /** The positions each query is rotated at (null: none): the text position, or for positions cache its entry's slot. */
    private int[] queryRotations(Lane lane, boolean cache, int[] positions) {
        if (model.rope() == null) return null;
        int[] at = new int[positions.length];
        for (int t = 0; t < positions.length; t++) at[t] = cache ? slotOf(lane, positions[t]) : positions[t];
        return at;
    }

    /** The index (cache slot) of the entry at text position {@code pos}. */
    private static int slotOf(Lane lane, int pos) {
        for (int i = lane.size() - 1; i >= 0; i--) if (lane.position(i) == pos) return i;
        throw new IllegalStateException("the query's own entry (position " + pos + ") is not in the lane");
    }

    /** The positions the last attention of this lane read, or null when the policy did not restrict it. */
    public int[] attendedPositions(int layer, int kvHead) {
        int[] a = attended[layer][kvHead];
        return a == null ? null : a.clone();
    }

    public Lane lane(int layer, int kvHead) {
        return lanes[layer][kvHead];
    }

    /** Measured bytes of every lane, by category. */
    public Lane.LaneBytes[][] memory() {
        Lane.LaneBytes[][] m = new Lane.LaneBytes[model.layers()][model.kvHeads()];
        for (int l = 0; l < model.layers(); l++) for (int h = 0; h < model.kvHeads(); h++) m[l][h] = bytes(lanes[l][h]);
        return m;
    }

    /** Entries a page of host-precision rows holds: lanes take memory a page at a time. */
    public int entriesPerPage() {
        return Lane.entriesPerPage(rowsPerPage);
    }

    /** What {@link #totalBytes()} is for the full cache of {@code entries} tokens: whole pages of host-precision rows. */
    public long fullCacheBytes(int entries) {
        return Lane.bytesAt(QuantSpec.of(model.dtype()), model.headDim(), rowsPerPage, entries) * model.layers() * model.kvHeads();
    }

    public long totalBytes() {
        long t = 0;
        for (Lane[] row : lanes) for (Lane l : row) t += bytes(l).total();
        return t;
    }

    /** Bytes of the lanes' key and value pages (rows and their scales), without policy state. */
    public long kvBytes() {
        long t = 0;
        for (Lane[] row : lanes) {
            for (Lane l : row) {
                Lane.LaneBytes b = l.bytes();
                t += b.kv() + b.scales();
            }
        }
        return t;
    }

    /** A lane's bytes, with the per-lane state its policy runner keeps beside it. */
    private Lane.LaneBytes bytes(Lane lane) {
        Lane.LaneBytes b = lane.bytes();
        long extra = policy.laneStateBytes(lane);
        return extra == 0 ? b : new Lane.LaneBytes(b.kv(), b.scales(), b.state() + extra);
    }

    @Override
    public void close() {
        for (Lane[] row : lanes) for (Lane l : row) l.clear();
    }
}
