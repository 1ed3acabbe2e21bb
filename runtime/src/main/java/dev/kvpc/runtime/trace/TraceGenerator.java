package dev.kvpc.runtime.trace;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.SplittableRandom;
import java.util.TreeMap;

/**
 * Random traces with planted attention structure, deterministic from a seed.
 *
 * <h2>Plain random</h2>
 * Keys, values and queries are independent standard Gaussians per channel. With unit-variance queries the
 * logit {@code q.k / sqrt(d)} of a random pair has variance exactly 1, so logits are O(1) and attention is
 * neither uniform nor one-hot. (Scaling queries by {@code 1/sqrt(d)} as well would give logits of standard
 * deviation {@code 1/sqrt(d)}: nearly uniform attention.)
 *
 * <h2>Planted structure</h2>
 * Each lane (layer, KV head) draws orthonormal directions from the seed, one per kind of planting in use:
 * {@code u} (sinks), {@code w} (heavy hitters), {@code n} (needle). Every key and query is first projected
 * onto the complement of those directions, so between ordinary tokens nothing changes (the logit stays a
 * random variable of standard deviation at most 1), and planted components add exactly known logits:
 * <ul>
 *   <li><b>Attention sinks</b> ({@link Options#withSinks}): the keys of positions {@code 0..S-1} get
 *   {@code sinkLogit * u}, and every query (except the needle queries) gets {@code sqrt(d) * u}. Each sink
 *   then has logit {@code sinkLogit} (+ noise) for every query, against about {@code e^0.5 = 1.65} for an
 *   ordinary token in expectation, so the sinks take about {@code S e^a / (S e^a + 1.65 n)} of the mass of a
 *   query that sees {@code n} ordinary tokens: with the default {@code a = 8} and {@code S = 4}, about 97% at
 *   {@code n = 256} and still 64% at {@code n = 4096}.</li>
 *   <li><b>Heavy hitters</b> ({@link Options#withHeavyHitters}): a few positions, drawn from the first half
 *   of the prefill after the sinks, get {@code heavyHitterLogit * w} in their keys; each query independently
 *   with probability {@code heavyHitterShare} (default 0.75) gets {@code sqrt(d) * w}. For those queries a
 *   heavy hitter has logit {@code heavyHitterLogit} (default 5, weight {@code e^5 = 148} against 1.65 for an
 *   ordinary token), so summed over the later queries heavy hitters accumulate far more attention than the
 *   average token: what H2O-style policies look for.</li>
 *   <li><b>Repeated keys</b> ({@link Options#withRepeat}): the keys and values of positions
 *   {@code to .. to+length-1} are exact copies of those of {@code from .. from+length-1} (the queries stay
 *   random). Any query gives a copy the same logit as its source, so the two share attention equally, and
 *   merging by {@code cosine(k)} finds exact duplicates: the repetition retrieval and induction heads see.</li>
 *   <li><b>A needle</b> ({@link Options#withNeedle}): the key of one position gets {@code needleLogit * n};
 *   the queries of the last {@code Q} decode steps get {@code sqrt(d) * n} instead of the sink and heavy
 *   hitter components. For those queries the needle has logit {@code needleLogit} (default 10) and every other
 *   key only noise, so the needle is their argmax (and takes most of their attention); for every other query
 *   the needle is an ordinary token. A policy that evicted it before the end loses the answer: passkey
 *   retrieval in miniature.</li>
 * </ul>
 * Plantings combine freely; positions may not collide (a needle or a heavy hitter inside a repeated block, or
 * a repeat of a sink, is rejected), and with {@code m} kinds planted the head dimension must exceed {@code m}.
 *
 * <h2>Determinism</h2>
 * The same options give the same trace, bit for bit, on every JVM: {@link SplittableRandom} streams split in
 * a fixed order (directions, positions, noise, query alignment), Gaussians by Box-Muller over {@link StrictMath}.
 * Values are generated position by position, so the chunk size changes how the prefill is grouped into steps
 * but not one value, and adding or removing a planting leaves the random draws of every token unchanged
 * (only their projection and planted components differ), so a trace with a planting and one without are a
 * controlled pair.
 */
public final class TraceGenerator {

    private TraceGenerator() {
    }

    /** A block of {@code length} positions starting at {@code from}, copied to positions starting at {@code to}. */
    public record Repeat(int from, int length, int to) {
        public Repeat {
            if (from < 0 || length < 1 || to < 0 || (long) from + length > to) {
                throw new IllegalArgumentException("a repeat copies from >= 0, length >= 1, to >= from + length; got from="
                        + from + " length=" + length + " to=" + to);
            }
        }

        boolean inSource(int p) {
            return p >= from && p < from + length;
        }

        boolean inCopy(int p) {
            return p >= to && p < to + length;
        }
    }

    /**
     * What to generate. Start from {@link #of(TraceShape)} and change what you need with the {@code with}
     * methods; {@link TraceGenerator#generate} checks how the options fit together.
     *
     * @param prefill prompt tokens, at least 1
     * @param chunk prefill chunk size; 0 for one prefill step
     * @param decode decode steps
     * @param sinks number of sink positions (0 for none)
     * @param heavyHitters number of heavy hitter positions (0 for none)
     * @param heavyHitterShare probability that a query is aligned with the heavy hitters
     * @param needle the needle's position, or -1 for none
     * @param needleQueries how many final decode steps query the needle
     */
    public record Options(TraceShape shape, long seed, int prefill, int chunk, int decode,
                          int sinks, double sinkLogit,
                          int heavyHitters, double heavyHitterLogit, double heavyHitterShare,
                          Optional<Repeat> repeat,
                          int needle, int needleQueries, double needleLogit) {

        public Options {
            Objects.requireNonNull(shape, "shape");
            Objects.requireNonNull(repeat, "repeat");
            if (prefill < 1 || chunk < 0 || decode < 0 || sinks < 0 || heavyHitters < 0 || needle < -1 || needleQueries < 0) {
                throw new IllegalArgumentException("prefill must be at least 1 and the other counts not negative: prefill="
                        + prefill + " chunk=" + chunk + " decode=" + decode + " sinks=" + sinks + " heavy_hitters="
                        + heavyHitters + " needle=" + needle + " needle_queries=" + needleQueries);
            }
            if ((long) prefill + decode > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("prefill + decode exceeds " + Integer.MAX_VALUE + " tokens");
            }
            for (double logit : new double[] {sinkLogit, heavyHitterLogit, needleLogit}) {
                if (!(logit > 0) || !Double.isFinite(logit)) {
                    throw new IllegalArgumentException("planted logits must be positive and finite, got " + logit);
                }
            }
            if (!(heavyHitterShare >= 0 && heavyHitterShare <= 1)) {
                throw new IllegalArgumentException("heavy hitter share must be within 0..1, got " + heavyHitterShare);
            }
        }

        /** Seed 0, a 64-token prefill in one step, 8 decode steps, nothing planted. */
        public static Options of(TraceShape shape) {
            return new Options(shape, 0, 64, 0, 8, 0, 8.0, 0, 5.0, 0.75, Optional.empty(), -1, 0, 10.0);
        }

        /** Total tokens. */
        public int length() {
            return prefill + decode;
        }

        public Options withSeed(long seed) {
            return new Options(shape, seed, prefill, chunk, decode, sinks, sinkLogit, heavyHitters, heavyHitterLogit,
                    heavyHitterShare, repeat, needle, needleQueries, needleLogit);
        }

        public Options withPrefill(int prefill) {
            return new Options(shape, seed, prefill, chunk, decode, sinks, sinkLogit, heavyHitters, heavyHitterLogit,
                    heavyHitterShare, repeat, needle, needleQueries, needleLogit);
        }

        /** Feeds the prefill in chunks of {@code chunk} tokens (the last may be shorter); 0 for one step. */
        public Options withChunk(int chunk) {
            return new Options(shape, seed, prefill, chunk, decode, sinks, sinkLogit, heavyHitters, heavyHitterLogit,
                    heavyHitterShare, repeat, needle, needleQueries, needleLogit);
        }

        public Options withDecode(int decode) {
            return new Options(shape, seed, prefill, chunk, decode, sinks, sinkLogit, heavyHitters, heavyHitterLogit,
                    heavyHitterShare, repeat, needle, needleQueries, needleLogit);
        }

        /** Plants {@code count} sinks at the first positions (0 for none), at the current sink logit. */
        public Options withSinks(int count) {
            return withSinks(count, sinkLogit);
        }

        public Options withSinks(int count, double logit) {
            return new Options(shape, seed, prefill, chunk, decode, count, logit, heavyHitters, heavyHitterLogit,
                    heavyHitterShare, repeat, needle, needleQueries, needleLogit);
        }

        /** Plants {@code count} heavy hitters (0 for none), at the current logit and share. */
        public Options withHeavyHitters(int count) {
            return withHeavyHitters(count, heavyHitterLogit, heavyHitterShare);
        }

        public Options withHeavyHitters(int count, double logit, double share) {
            return new Options(shape, seed, prefill, chunk, decode, sinks, sinkLogit, count, logit, share, repeat,
                    needle, needleQueries, needleLogit);
        }

        public Options withRepeat(int from, int length, int to) {
            return new Options(shape, seed, prefill, chunk, decode, sinks, sinkLogit, heavyHitters, heavyHitterLogit,
                    heavyHitterShare, Optional.of(new Repeat(from, length, to)), needle, needleQueries, needleLogit);
        }

        public Options withoutRepeat() {
            return new Options(shape, seed, prefill, chunk, decode, sinks, sinkLogit, heavyHitters, heavyHitterLogit,
                    heavyHitterShare, Optional.empty(), needle, needleQueries, needleLogit);
        }

        /** Plants a needle at {@code position}, queried by the last {@code queries} decode steps. */
        public Options withNeedle(int position, int queries) {
            return withNeedle(position, queries, needleLogit);
        }

        public Options withNeedle(int position, int queries, double logit) {
            if (position < 0) {
                throw new IllegalArgumentException("needle position must not be negative, got " + position);
            }
            return new Options(shape, seed, prefill, chunk, decode, sinks, sinkLogit, heavyHitters, heavyHitterLogit,
                    heavyHitterShare, repeat, position, queries, logit);
        }

        public Options withoutNeedle() {
            return new Options(shape, seed, prefill, chunk, decode, sinks, sinkLogit, heavyHitters, heavyHitterLogit,
                    heavyHitterShare, repeat, -1, 0, needleLogit);
        }

        /** Planted directions per lane. */
        int plantedKinds() {
            return (sinks > 0 ? 1 : 0) + (heavyHitters > 0 ? 1 : 0) + (needle >= 0 ? 1 : 0);
        }
    }

    /**
     * Where the structure went. Positions are sequence positions.
     *
     * @param sinks the sink positions, {@code 0..S-1}
     * @param heavyHitters the heavy hitter positions, ascending
     * @param needleQueries the positions of the decode steps whose queries look for the needle
     */
    public record Planted(List<Integer> sinks, List<Integer> heavyHitters, Optional<Repeat> repeat, OptionalInt needle,
                          List<Integer> needleQueries) {
        public Planted {
            sinks = List.copyOf(sinks);
            heavyHitters = List.copyOf(heavyHitters);
            needleQueries = List.copyOf(needleQueries);
            Objects.requireNonNull(repeat, "repeat");
            Objects.requireNonNull(needle, "needle");
        }
    }

    /** A generated trace and what was planted in it (also recorded in the trace's attributes). */
    public record Generated(Trace trace, Planted planted) {
        public Generated {
            Objects.requireNonNull(trace, "trace");
            Objects.requireNonNull(planted, "planted");
        }
    }

    /** Generates a trace with {@link Options#of} defaults on {@code shape} and the given seed. */
    public static Trace random(TraceShape shape, long seed) {
        return generate(Options.of(shape).withSeed(seed)).trace();
    }

    /**
     * Generates the trace the options describe.
     *
     * @throws IllegalArgumentException if the options do not fit together (a planting outside the trace, two
     *     plantings on one position, too few positions for the heavy hitters, a head too narrow)
     */
    public static Generated generate(Options o) {
        TraceShape shape = o.shape();
        int length = o.length();
        int d = shape.headDim();
        check(o);

        SplittableRandom root = new SplittableRandom(o.seed());
        SplittableRandom directionRandom = root.split();
        SplittableRandom positionRandom = root.split();
        Gaussian noise = new Gaussian(root.split());
        SplittableRandom alignRandom = root.split();

        // Directions: always three Gaussian draws per lane, so the choice of plantings does not move the
        // random stream; only the ones in use are orthonormalised.
        boolean sinks = o.sinks() > 0;
        boolean hitters = o.heavyHitters() > 0;
        boolean needle = o.needle() >= 0;
        double[][][] dirs = new double[shape.layers() * shape.kvHeads()][][];
        Gaussian dirNoise = new Gaussian(directionRandom);
        for (int lane = 0; lane < dirs.length; lane++) {
            double[][] raw = new double[3][d];
            for (double[] r : raw) {
                for (int c = 0; c < d; c++) {
                    r[c] = dirNoise.next();
                }
            }
            List<double[]> used = new ArrayList<>(3);
            boolean[] inUse = {sinks, hitters, needle};
            double[][] lane3 = new double[3][];
            for (int i = 0; i < 3; i++) {
                if (inUse[i]) {
                    lane3[i] = orthonormal(raw[i], used);
                    used.add(lane3[i]);
                }
            }
            dirs[lane] = lane3;
        }

        List<Integer> hitterPositions = heavyHitterPositions(o, positionRandom);
        boolean[] isHitter = new boolean[length];
        hitterPositions.forEach(p -> isHitter[p] = true);

        // Steps and their arrays.
        List<int[]> spans = new ArrayList<>(); // {start, tokens}
        if (o.chunk() == 0) {
            spans.add(new int[] {0, o.prefill()});
        } else {
            for (int s = 0; s < o.prefill(); s += o.chunk()) {
                spans.add(new int[] {s, Math.min(o.chunk(), o.prefill() - s)});
            }
        }
        for (int p = o.prefill(); p < length; p++) {
            spans.add(new int[] {p, 1});
        }
        int kvWidth = shape.kvWidth();
        int qWidth = shape.qWidth();
        float[][][] ks = new float[spans.size()][][];
        float[][][] vs = new float[spans.size()][][];
        float[][][] qs = new float[spans.size()][][];
        for (int s = 0; s < spans.size(); s++) {
            int tokens = spans.get(s)[1];
            ks[s] = new float[shape.layers()][StepData.floats(tokens, kvWidth)];
            vs[s] = new float[shape.layers()][StepData.floats(tokens, kvWidth)];
            qs[s] = new float[shape.layers()][StepData.floats(tokens, qWidth)];
        }

        double qNorm = Math.sqrt(d);
        int firstNeedleQuery = needle ? length - o.needleQueries() : length;
        Repeat repeat = o.repeat().orElse(null);
        double[] x = new double[d];
        int step = 0;
        for (int p = 0; p < length; p++) {
            if (step + 1 < spans.size() && spans.get(step + 1)[0] == p) {
                step++;
            }
            int t = p - spans.get(step)[0];
            boolean copy = repeat != null && repeat.inCopy(p);
            int sourceStep = 0;
            int sourceToken = 0;
            if (copy) {
                int source = p - repeat.to() + repeat.from();
                while (sourceStep + 1 < spans.size() && spans.get(sourceStep + 1)[0] <= source) {
                    sourceStep++;
                }
                sourceToken = source - spans.get(sourceStep)[0];
            }
            for (int layer = 0; layer < shape.layers(); layer++) {
                for (int g = 0; g < shape.kvHeads(); g++) {
                    double[][] lane = dirs[layer * shape.kvHeads() + g];
                    int at = (t * shape.kvHeads() + g) * d;
                    // key
                    noise.fill(x);
                    project(x, lane);
                    if (sinks && p < o.sinks()) {
                        add(x, lane[0], o.sinkLogit());
                    }
                    if (hitters && isHitter[p]) {
                        add(x, lane[1], o.heavyHitterLogit());
                    }
                    if (needle && p == o.needle()) {
                        add(x, lane[2], o.needleLogit());
                    }
                    store(x, ks[step][layer], at);
                    // value
                    noise.fill(x);
                    store(x, vs[step][layer], at);
                    if (copy) { // the noise was drawn all the same, so later tokens do not depend on the repeat
                        int from = (sourceToken * shape.kvHeads() + g) * d;
                        System.arraycopy(ks[sourceStep][layer], from, ks[step][layer], at, d);
                        System.arraycopy(vs[sourceStep][layer], from, vs[step][layer], at, d);
                    }
                }
                for (int h = 0; h < shape.heads(); h++) {
                    double[][] lane = dirs[layer * shape.kvHeads() + h / shape.group()];
                    noise.fill(x);
                    project(x, lane);
                    boolean aligned = alignRandom.nextDouble() < o.heavyHitterShare();
                    if (p >= firstNeedleQuery) {
                        add(x, lane[2], qNorm);
                    } else {
                        if (sinks) {
                            add(x, lane[0], qNorm);
                        }
                        if (hitters && aligned) {
                            add(x, lane[1], qNorm);
                        }
                    }
                    store(x, qs[step][layer], (t * shape.heads() + h) * d);
                }
            }
        }

        List<Trace.Step> steps = new ArrayList<>(spans.size());
        for (int s = 0; s < spans.size(); s++) {
            StepData data = StepData.adopt(shape, spans.get(s)[1], ks[s], vs[s], qs[s]);
            boolean prefill = spans.get(s)[0] < o.prefill();
            steps.add(!prefill ? new Trace.Decode(data) : o.chunk() == 0 ? new Trace.Prefill(data) : new Trace.Chunk(data));
        }

        List<Integer> sinkPositions = new ArrayList<>();
        for (int p = 0; p < o.sinks(); p++) {
            sinkPositions.add(p);
        }
        List<Integer> needleQueries = new ArrayList<>();
        for (int p = firstNeedleQuery; p < length; p++) {
            needleQueries.add(p);
        }
        Planted planted = new Planted(sinkPositions, hitterPositions, o.repeat(),
                needle ? OptionalInt.of(o.needle()) : OptionalInt.empty(), needleQueries);
        return new Generated(new Trace(shape, steps, attributes(o, planted)), planted);
    }

    private static void check(Options o) {
        int length = o.length();
        int kinds = o.plantedKinds();
        if (kinds > 0 && o.shape().headDim() <= kinds) {
            throw new IllegalArgumentException(kinds + " kinds of planted structure need head_dim > " + kinds
                    + " (a direction each, plus room for noise); head_dim is " + o.shape().headDim());
        }
        if (o.sinks() > o.prefill()) {
            throw new IllegalArgumentException(o.sinks() + " sinks do not fit a prefill of " + o.prefill());
        }
        if (o.repeat().isPresent()) {
            Repeat r = o.repeat().get();
            if ((long) r.to() + r.length() > length) {
                throw new IllegalArgumentException("the repeat's copy " + r.to() + ".." + (r.to() + r.length() - 1)
                        + " runs past the trace's " + length + " tokens");
            }
            if (r.from() < o.sinks()) {
                throw new IllegalArgumentException("the repeat's source " + r.from() + ".." + (r.from() + r.length() - 1)
                        + " overlaps the sinks 0.." + (o.sinks() - 1));
            }
        }
        if (o.needle() >= 0) {
            int p = o.needle();
            if (o.needleQueries() < 1 || o.needleQueries() > o.decode()) {
                throw new IllegalArgumentException("the needle needs 1 to " + o.decode()
                        + " querying decode steps (the decode steps there are), got " + o.needleQueries());
            }
            if (p >= length - o.needleQueries()) {
                throw new IllegalArgumentException("the needle at " + p + " must come before its first query at "
                        + (length - o.needleQueries()));
            }
            if (p < o.sinks()) {
                throw new IllegalArgumentException("the needle at " + p + " is a sink (sinks are 0.." + (o.sinks() - 1) + ")");
            }
            if (o.repeat().isPresent() && (o.repeat().get().inSource(p) || o.repeat().get().inCopy(p))) {
                throw new IllegalArgumentException("the needle at " + p + " is inside the repeated block " + o.repeat().get());
            }
        } else if (o.needleQueries() != 0) {
            throw new IllegalArgumentException("needle queries without a needle");
        }
    }

    /** Heavy hitters: distinct positions drawn uniformly from the eligible ones in the first half of the prefill. */
    private static List<Integer> heavyHitterPositions(Options o, SplittableRandom random) {
        if (o.heavyHitters() == 0) {
            return List.of();
        }
        int end = (o.prefill() + 1) / 2;
        List<Integer> eligible = new ArrayList<>();
        for (int p = o.sinks(); p < end; p++) {
            Repeat r = o.repeat().orElse(null);
            boolean taken = p == o.needle() || (r != null && (r.inSource(p) || r.inCopy(p)));
            if (!taken) {
                eligible.add(p);
            }
        }
        if (eligible.size() < o.heavyHitters()) {
            throw new IllegalArgumentException(o.heavyHitters() + " heavy hitters requested, but only " + eligible.size()
                    + " positions are free in " + o.sinks() + ".." + (end - 1)
                    + " (the first half of the prefill, after the sinks, not the needle or a repeat); lengthen the prefill");
        }
        for (int i = 0; i < o.heavyHitters(); i++) { // partial Fisher-Yates
            Collections.swap(eligible, i, i + random.nextInt(eligible.size() - i));
        }
        List<Integer> chosen = new ArrayList<>(eligible.subList(0, o.heavyHitters()));
        Collections.sort(chosen);
        return chosen;
    }

    private static Map<String, String> attributes(Options o, Planted planted) {
        Map<String, String> a = new TreeMap<>();
        a.put("generator", "TraceGenerator seed=" + o.seed() + " prefill=" + o.prefill() + " chunk=" + o.chunk()
                + " decode=" + o.decode());
        if (!planted.sinks().isEmpty()) {
            a.put("planted.sinks", "0.." + (o.sinks() - 1) + " logit=" + o.sinkLogit());
        }
        if (!planted.heavyHitters().isEmpty()) {
            StringBuilder b = new StringBuilder();
            planted.heavyHitters().forEach(p -> b.append(p).append(' '));
            a.put("planted.heavy_hitters", b + "logit=" + o.heavyHitterLogit() + " share=" + o.heavyHitterShare());
        }
        planted.repeat().ifPresent(r -> a.put("planted.repeat", "from=" + r.from() + " length=" + r.length() + " to=" + r.to()));
        planted.needle().ifPresent(p -> a.put("planted.needle", p + " queries=" + planted.needleQueries().getFirst() + ".."
                + planted.needleQueries().getLast() + " logit=" + o.needleLogit()));
        return a;
    }

    /** {@code v} made orthogonal to {@code basis} (orthonormal) and of unit length. */
    private static double[] orthonormal(double[] v, List<double[]> basis) {
        double[] r = v.clone();
        for (int pass = 0; pass < 2; pass++) { // twice: classical Gram-Schmidt loses orthogonality once
            for (double[] b : basis) {
                add(r, b, -dot(r, b));
            }
        }
        double norm = Math.sqrt(dot(r, r));
        if (norm < 1e-9) {
            throw new IllegalStateException("degenerate random direction; pick another seed");
        }
        for (int i = 0; i < r.length; i++) {
            r[i] /= norm;
        }
        return r;
    }

    /** Removes from {@code x} its components along the lane's planted directions (null ones are unused). */
    private static void project(double[] x, double[][] lane) {
        for (double[] b : lane) {
            if (b != null) {
                add(x, b, -dot(x, b));
            }
        }
    }

    private static void add(double[] x, double[] direction, double scale) {
        for (int i = 0; i < x.length; i++) {
            x[i] += scale * direction[i];
        }
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    private static void store(double[] x, float[] into, int at) {
        for (int i = 0; i < x.length; i++) {
            into[at + i] = (float) x[i];
        }
    }

    /** Standard normal draws by Box-Muller over StrictMath, so the stream is the same on every platform. */
    private static final class Gaussian {
        private final SplittableRandom random;
        private double spare;
        private boolean hasSpare;

        Gaussian(SplittableRandom random) {
            this.random = random;
        }

        double next() {
            if (hasSpare) {
                hasSpare = false;
                return spare;
            }
            double u1 = 1.0 - random.nextDouble(); // (0, 1]: log is finite
            double u2 = random.nextDouble();
            double radius = StrictMath.sqrt(-2.0 * StrictMath.log(u1));
            double angle = 2.0 * StrictMath.PI * u2;
            spare = radius * StrictMath.sin(angle);
            hasSpare = true;
            return radius * StrictMath.cos(angle);
        }

        void fill(double[] x) {
            for (int i = 0; i < x.length; i++) {
                x[i] = next();
            }
        }
    }
}
