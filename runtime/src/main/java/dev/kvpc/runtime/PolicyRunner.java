package dev.kvpc.runtime;

import dev.kvpc.runtime.lane.Lane;

import java.util.BitSet;
import java.util.List;

/**
 * A compiled policy as the runtime runs it (backends implement it: the reference interpreter first, the JVM
 * backend's classes next). For each layer of each step the runtime opens an event on the lanes of one lane class,
 * asks for the attend sets, computes attention, then lets the policy finish the event (its handlers, eviction,
 * storage precision), which changes the lanes in place.
 */
public interface PolicyRunner {
    /** The lane class of a lane, or -1 for the full cache (nothing to run). */
    int laneClass(int layer, int kvHead);

    /** Whether a lane class selects per layer (its lanes of a layer are handled together). */
    boolean perLayer(int laneClass);

    /** The attention variant of the deployment, or null for standard attention. */
    default AttentionVariant variant() {
        return null;
    }

    /**
     * The IR of {@link #variant()} (logit, mask, normalisation), from which other kernels than the compiled variant
     * can be made (an OpenCL device's), or null where the runner does not have it; null for standard attention.
     */
    default dev.kvpc.ir.AttentionIr variantIr() {
        return null;
    }

    /**
     * Whether a lane class's events settle (overflow handlers, standing stores) only after the step's last layer, at
     * {@link Event#settle}: a policy with {@code per model} state. Its events keep the step's queries until then.
     */
    default boolean settlesAfterLastLayer(int laneClass) {
        return false;
    }

    /** Whether a lane class uses cache positions (RoPE by cache slot, {@code positions cache}). */
    default boolean cachePositions(int laneClass) {
        return false;
    }

    /** No policy: every lane is in no class and keeps every entry. */
    static PolicyRunner fullCache() {
        return FullCache.INSTANCE;
    }

    /**
     * The bytes of the policy's per-lane state for {@code lane}, which the runner keeps beside the lane (4 a value,
     * as per-token state is counted); 0 for a policy without any.
     */
    default long laneStateBytes(Lane lane) {
        return 0;
    }

    /** Starts the event of one step on lanes of one class in one layer; {@code kvHeads[i]} is the KV head of {@code lanes.get(i)}. */
    Event open(int laneClass, Step step, int layer, int[] kvHeads, List<Lane> lanes);

    /** One step, as the policy sees it. */
    /** {@code rope}: the model's RoPE when queries (and keys) are unrotated, else null. */
    /**
     * {@code sequence}: what identifies the sequence the step belongs to (its {@code per model} states are kept by it);
     * null where a host runs a single sequence.
     */
    /**
     * {@code where}: where the queries are current ({@link dev.kvpc.runtime.engine.HostArrays}): {@link #queries()}
     * brings them to the host the first time a policy reads them, so a step whose policy reads none leaves them on a
     * device that computed them.
     */
    record Step(Kind kind, int[] positions, float[] queries, int decodeStep, int context, Rope rope, Object sequence,
                dev.kvpc.runtime.engine.HostArrays where) {
        public enum Kind { PREFILL, CHUNK, DECODE }

        public Step {
            if (where == null) where = dev.kvpc.runtime.engine.HostArrays.HOST;
        }

        public Step(Kind kind, int[] positions, float[] queries, int decodeStep, int context, Rope rope, Object sequence) {
            this(kind, positions, queries, decodeStep, context, rope, sequence, null);
        }

        public Step(Kind kind, int[] positions, float[] queries, int decodeStep, int context, Rope rope) {
            this(kind, positions, queries, decodeStep, context, rope, null, null);
        }

        /** The step's queries ({@code tokens x heads x headDim}, unrotated where {@link #rope} is set), current on the host. */
        @Override
        public float[] queries() {
            where.toHost(queries);
            return queries;
        }
    }

    /** An event in progress. */
    interface Event {
        /** Per lane, the entries this step's attention may read (null: all). Runs handlers that restrict attention. */
        BitSet[] attendSets();

        /**
         * Per lane, the entries each query head of its group reads, where the policy attends a set per query head
         * (then {@link #attendSets} gives each lane the union of its heads'); null when it does not, and null for a
         * lane whose query heads all read its {@link #attendSets} set. Asked after {@link #attendSets}.
         */
        default BitSet[][] queryHeadSets() {
            return null;
        }

        /**
         * Per lane, an array (at least as long as the lane) to which the attention kernel adds each entry's attention
         * probability, summed over the step's queries and the lane's query heads, entries in lane order as they are
         * at attention time; null when the policy reads no such fused statistic. Asked after {@link #attendSets}.
         */
        default float[][] columnSums() {
            return null;
        }

        /** Runs the rest of the event (but what {@link #settle} runs, where the class settles later); lanes change in place. */
        void finish();

        /**
         * After the step's last layer: the overflow handlers and standing stores of a class that
         * {@link PolicyRunner#settlesAfterLastLayer settles after the last layer}; nothing for the others.
         */
        default void settle() {}
    }

    /** {@link #fullCache()}. */
    final class FullCache implements PolicyRunner {
        static final FullCache INSTANCE = new FullCache();

        private FullCache() {}

        @Override
        public int laneClass(int layer, int kvHead) {
            return -1;
        }

        @Override
        public boolean perLayer(int laneClass) {
            return false;
        }

        @Override
        public Event open(int laneClass, Step step, int layer, int[] kvHeads, List<Lane> lanes) {
            throw new IllegalStateException("the full cache runs no policy");
        }
    }
}
