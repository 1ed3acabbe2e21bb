package dev.kvpc.compiler.memory;

import dev.kvpc.ir.*;

import java.util.*;

/**
 * Predicted KV-cache memory of a specialised policy, per lane, from its IR. The scenario is a prompt of {@code prompt}
 * tokens run as one prefill step, then decode steps up to {@code context} tokens in all (a prompt of the whole context
 * by default): prefill handlers act on the prompt only, decode, overflow and every-N handlers after each decoded
 * token, so a prefill-only policy such as SnapKV holds its compressed prompt plus every decoded token. For each lane:
 * entries held, bytes of keys and values at their storage precision, quantisation scales, per-token / per-lane /
 * per-page state, and the transient peak of the prefill and of one decode step (entries before eviction, attention
 * rows and observed queries, selection scores). The runtime measures the same categories.
 *
 * <p>Layout rules (the runtime's): a packed b-bit element takes b/8 bytes; each quantisation group has a scale and
 * a zero point in f16 (4 bytes); per-channel groups span {@code group} tokens of one channel and only full groups
 * are quantised (the rest stays in the residual at the host precision); a state element of any kind takes
 * {@link Ty.Elem#STATE_BYTES} (4) bytes; observed queries and attention rows are f32.
 */
public final class MemoryModel {
    public static final int SCALE_BYTES = 4;

    /**
     * Bytes of one lane by category. {@code entriesExact}: the entries are the runtime's for the scenario; {@code
     * exact}: so are the entries and the bytes. Where not, they are bounds the runtime stays under (the policy's
     * decisions depend on the data, or on when its handlers ran). {@code pageSlack}: the most bytes the lane's row
     * chains can take beyond its entries' rows, a page each but one row (0 with pages of one entry).
     */
    public record LaneMemory(long entries, long kvBytes, long scaleBytes, long stateBytes, long prefillPeak, long decodePeak,
                             String precision, boolean sharedInLayer, boolean entriesExact, boolean exact, long pageSlack) {
        public long steadyBytes() {
            return kvBytes + scaleBytes + stateBytes;
        }
    }

    /** The whole model: one {@link LaneMemory} per (layer, KV head), and the full cache's figure for comparison. */
    /**
     * The whole model: one {@link LaneMemory} per (layer, KV head), and the full cache's figure for comparison.
     * {@code shareCap}: where every lane's budget is a share of one total among the cells of a model state
     * ({@code share(T, w)}), the bytes the shares bound the model to (the shares add up to at most T), else -1.
     * {@code modelStateBytes}: the sequence's {@code per model} states, beside the lanes (a cell per layer, head or
     * lane; a state over tokens a value per position seen).
     */
    public record Report(String policy, LaneShape shape, long prompt, long context, String dtype, int dtypeBytes, LaneMemory[][] lanes, long fullBytesPerLane,
                         long shareCap, long modelStateBytes) {
        /** Every lane's steady bytes together, or the shares' bound on them where that is less. */
        public long totalSteady() {
            long t = lanesTotal();
            return shareCap >= 0 ? Math.min(t, shareCap) : t;
        }

        /** Every lane's steady bytes (or bound) added up. */
        public long lanesTotal() {
            long t = 0;
            for (LaneMemory[] row : lanes) for (LaneMemory m : row) t += m.steadyBytes();
            return t;
        }

        /** Whether every lane's figures are exact (else some are upper bounds). */
        public boolean exact() {
            for (LaneMemory[] row : lanes) for (LaneMemory m : row) if (!m.exact()) return false;
            return true;
        }

        public long totalFull() {
            return fullBytesPerLane * shape.layers() * shape.kvHeads();
        }

        public double ratioToFull() {
            return totalFull() == 0 ? 0 : (double) totalSteady() / totalFull();
        }

        public long peak(boolean prefill) {
            // lanes run their events one after another per layer; the peak is steady state plus the largest transient
            long steady = totalSteady(), extra = 0;
            for (LaneMemory[] row : lanes) {
                for (LaneMemory m : row) extra = Math.max(extra, (prefill ? m.prefillPeak() : m.decodePeak()) - m.steadyBytes());
            }
            return steady + extra;
        }
    }

    private MemoryModel() {}

    /** A prompt of the whole context: the lane's state once a prompt of {@code context} tokens is processed. */
    public static Report predict(Specialized s, long context, String dtype) {
        return predict(s, context, context, dtype);
    }

    /**
     * A prompt of {@code prompt} tokens in one prefill step, then decode steps up to {@code context} tokens, with
     * pages of one entry: the entries' own bytes.
     */
    public static Report predict(Specialized s, long prompt, long context, String dtype) {
        return predict(s, prompt, context, dtype, 1);
    }

    /**
     * As above, for a runtime whose lanes take memory in pages of {@code entriesPerPage} entries (a key row and a value
     * row each, {@code Lane.entriesPerPage} of its rows per page): each row chain in whole pages, as the runtime counts.
     */
    public static Report predict(Specialized s, long prompt, long context, String dtype, int entriesPerPage) {
        if (entriesPerPage < 1) throw new IllegalArgumentException("entries per page must be positive, not " + entriesPerPage);
        if (prompt < 1 || prompt > context) throw new IllegalArgumentException("the prompt must be 1.." + context + " tokens, not " + prompt);
        int dtypeBytes = switch (dtype) {
            case "f32" -> 4;
            case "f16", "bf16" -> 2;
            default -> throw new IllegalArgumentException("dtype must be f32, f16 or bf16, not " + dtype);
        };
        LaneShape shape = s.shape();
        LaneMemory[] perClass = new LaneMemory[s.classes().size()];
        for (int c = 0; c < perClass.length; c++) perClass[c] = lane(s.classes().get(c), shape, prompt, context, dtypeBytes, entriesPerPage);
        LaneMemory full = lane(null, shape, prompt, context, dtypeBytes, entriesPerPage);
        LaneMemory[][] lanes = new LaneMemory[shape.layers()][shape.kvHeads()];
        for (int l = 0; l < shape.layers(); l++) {
            for (int h = 0; h < shape.kvHeads(); h++) lanes[l][h] = s.classOf()[l][h] < 0 ? full : perClass[s.classOf()[l][h]];
        }
        return new Report(s.root(), shape, prompt, context, dtype, dtypeBytes, lanes, full.steadyBytes(), shareCap(s, lanes, prompt, context),
                modelStateBytes(s, context));
    }

    /** {@code n} entries in whole pages of {@code perPage}. */
    static long paged(long n, int perPage) {
        return (n + perPage - 1) / perPage * perPage;
    }

    /** The bytes of the sequence's per model states: each policy's, once for all its lane classes. */
    private static long modelStateBytes(Specialized s, long context) {
        Map<String, Long> bytes = new TreeMap<>();
        for (PolicyIr p : s.classes()) {
            for (PolicyIr.State st : p.states()) {
                if (st.scope() != PolicyIr.StateScope.MODEL) continue;
                List<Axis> cells = st.modelAxes();
                long n = (cells.contains(Axis.LAYER) ? s.shape().layers() : 1L) * (cells.contains(Axis.HEAD) ? s.shape().kvHeads() : 1L);
                if (st.overTokens()) n *= context;
                bytes.put(p.name() + "." + st.name(), n * Ty.Elem.STATE_BYTES);
            }
        }
        long t = 0;
        for (long b : bytes.values()) t += b;
        return t;
    }

    /**
     * Where every lane's first overflow limit is {@code share(T, w) + c} for one total T and one model state w, the
     * bytes the lanes can hold together: each lane at most c entries plus its share, and the shares of w's cells adding
     * up to at most T, each cell's share held by each lane of that cell. Each entry is counted at the most bytes an
     * entry of its lane takes. -1 where the budgets are not shares.
     */
    private static long shareCap(Specialized s, LaneMemory[][] lanes, long prompt, long context) {
        LaneShape shape = s.shape();
        String state = null;
        long total = -1;
        PolicyIr.State decl = null;
        double fixedBytes = 0, most = 0;
        for (int l = 0; l < shape.layers(); l++) {
            for (int h = 0; h < shape.kvHeads(); h++) {
                int c = s.classOf()[l][h];
                if (c < 0) return -1;
                Sizes sizes = new Sizes(s.classes().get(c), prompt, context, shape.kvHeads());
                Sizes.Share sh = sizes.shareLimit();
                if (sh == null || (state != null && (!state.equals(sh.state()) || total != sh.total()))) return -1;
                state = sh.state();
                total = sh.total();
                for (PolicyIr.State st : s.classes().get(c).states()) if (st.name().equals(state)) decl = st;
                LaneMemory m = lanes[l][h];
                double perEntry = m.entries() == 0 ? 0 : (double) m.steadyBytes() / m.entries();
                fixedBytes += perEntry * Math.min(m.entries(), sh.fixed()) + m.pageSlack();
                most = Math.max(most, perEntry);
            }
        }
        if (decl == null) return -1;
        java.util.List<Axis> cells = decl.modelAxes();
        long count = (cells.contains(Axis.LAYER) ? shape.layers() : 1) * (cells.contains(Axis.HEAD) ? shape.kvHeads() : 1);
        long lanesPerCell = (long) shape.layers() * shape.kvHeads() / count;
        return (long) Math.ceil(fixedBytes + most * lanesPerCell * total);
    }

    /** One lane running {@code p} (null: the full cache) for a prompt of {@code n} tokens and {@code context} in all. */
    static LaneMemory lane(PolicyIr p, LaneShape shape, long n, long context, int dtypeBytes, int perPage) {
        int d = shape.headDim(), g = shape.group();
        long entryBytes = 2L * d * dtypeBytes;
        if (p == null) {
            return new LaneMemory(context, paged(context, perPage) * entryBytes, 0, 0, paged(n, perPage) * entryBytes, paged(context + 1, perPage) * entryBytes,
                    "host", false, true, true, (perPage - 1) * entryBytes);
        }
        Sizes sizes = new Sizes(p, n, context, shape.kvHeads());
        long e = sizes.steadyEntries();
        boolean shared = p.selection() == PolicyIr.Selection.LAYER;
        if (shared && context > n && sizes.overflowLimit() >= 0) {
            // a layer's lanes grow from unequal shares, and the first over the budget sets the handler off: each
            // lane stays within the budget, not within its share
            e = Math.max(e, Math.min(sizes.overflowLimit(), e + context - n));
            sizes.entriesExact = false;
        }

        // keys and values at their precision. A standing rule covers the lane as it ends; a handler's store covers
        // the entries the lane held when it last ran (the entries added since are at the host's precision, until a
        // standing rule takes them). Exact when each part has one rule (or a handler's `for` and `otherwise` pair),
        // its set's size is known, and no entry left the lane since it ran; else a bound.
        Storage keys = new Storage(), values = new Storage();
        boolean storageExact = true, countBound = true;
        long regular = e - (sizes.compensation ? 1 : 0);
        long lastFor = 0;
        boolean removes = sizes.removesEntries();
        Instr.Store previous = null;
        java.util.Set<Instr.Part> pairs = java.util.EnumSet.noneOf(Instr.Part.class);
        for (Sizes.StoreAt at : sizes.stores()) {
            Instr.Store st = at.store();
            long len;
            if (at.standing()) {
                len = regular;
            } else {
                Sizes.Run run = sizes.lastRun(st);
                if (run == null) continue; // never ran: it covers nothing
                if (run.inexact()) {
                    storageExact = false;
                    countBound = false;
                }
                // the compensation entry is never stored at another format: rules cover the regular entries
                len = Math.min(regular, run.len());
            }
            // a 'for' set of uncertain size with an 'otherwise' after it: the pair covers every entry, so counting the
            // larger format's side at its most is a bound (mixed's top(acc, n) + last(64), which may overlap)
            boolean pairedFor = st.scope() == Instr.Scope.FOR && !at.standing() && sizes.followedByOtherwise(st);
            boolean uncertain = (st.scope() == Instr.Scope.FOR || st.scope() == Instr.Scope.EXCEPT) && !sizes.setExact(st.set(), len);
            if (uncertain) {
                storageExact = false;
                if (!pairedFor) countBound = false;
            }
            // a rule that runs again over another set leaves the entries it covered before at its format: what it
            // covers accumulates. Exact: a standing rule for first(n) or except last(n) (the set only grows), a
            // handler's rule that ran once, or one whose 'otherwise' restores every other entry
            if (st.scope() == Instr.Scope.FOR || st.scope() == Instr.Scope.EXCEPT) {
                boolean stable = at.standing() ? sizes.isRange(st.set(), st.scope() == Instr.Scope.FOR ? Op.End.FIRST : Op.End.LAST)
                        : sizes.lastRun(st).times() == 1 || st.scope() == Instr.Scope.FOR && sizes.followedByOtherwise(st);
                if (!stable) {
                    storageExact = false;
                    countBound = false;
                }
            }
            // per-channel groups form from consecutive entries as they arrive: once entries leave, which groups are
            // full is history
            if (st.axis() == Instr.QuantAxis.CHANNEL && removes) {
                storageExact = false;
                countBound = false;
            }
            int bits = st.format() == Instr.Format.INT ? (int) sizes.value(st.bits(), len) : st.format().bits;
            // without group(n): a token's channels together, or 32 entries per channel (the runtime's default)
            long group = st.group() >= 0 ? sizes.value(st.group(), len) : st.axis() == Instr.QuantAxis.CHANNEL ? 32 : d;
            long covered = switch (st.scope()) {
                case ALL -> len;
                case FOR -> Math.min(len, uncertain && !largerThanOtherwise(st, bits, sizes, len, d) ? sizes.setMin(st.set(), len) : sizes.setSize(st.set(), len));
                case EXCEPT -> Math.max(0, len - Math.min(len, sizes.setSize(st.set(), len)));
                // the entries the previous 'for' of the same block left out
                case OTHERWISE -> previous != null && previous.scope() == Instr.Scope.FOR ? Math.max(0, len - lastFor) : len;
            };
            if (st.scope() == Instr.Scope.OTHERWISE && previous != null && previous.scope() == Instr.Scope.FOR) pairs.addAll(st.parts());
            if (st.scope() == Instr.Scope.FOR) lastFor = covered;
            previous = st;
            for (Instr.Part part : st.parts()) {
                Storage to = part == Instr.Part.KEYS ? keys : values;
                // a later rule over every entry decides every entry's format
                if (st.scope() == Instr.Scope.ALL && at.standing()) to.clear();
                to.rule(st.format(), bits, st.axis(), group, covered);
            }
        }
        for (Instr.Part part : Instr.Part.values()) {
            int rules = (part == Instr.Part.KEYS ? keys : values).rules.size();
            if (rules > 2 || rules == 2 && !pairs.contains(part)) {
                storageExact = false;
                countBound = false;
            }
        }
        long kv, scales;
        if (storageExact || countBound) {
            kv = keys.bytes(e, d, dtypeBytes, perPage) + values.bytes(e, d, dtypeBytes, perPage);
            scales = keys.scaleBytes(e, d, perPage) + values.scaleBytes(e, d, perPage);
        } else {
            // which entries each rule finally covers depends on when handlers ran and on the data: at most every
            // entry at the largest format, and every entry with the most scales a rule gives one
            kv = keys.boundBytes(e, d, dtypeBytes, perPage) + values.boundBytes(e, d, dtypeBytes, perPage);
            scales = keys.boundScaleBytes(e, d, perPage) + values.boundScaleBytes(e, d, perPage);
        }
        String precision = keys.describe(e) + " / " + values.describe(e);

        // state
        boolean pagesExact = true;
        long state = 0;
        for (PolicyIr.State st : p.states()) {
            // a model state is one sequence's few cells, beside the lanes: not a lane's bytes
            if (st.scope() == PolicyIr.StateScope.MODEL) continue;
            long elems = 1;
            for (Axis a : st.type().axes()) {
                elems *= switch (a) {
                    case TOKEN -> e;
                    case CHANNEL -> d;
                    case PAGE -> {
                        // pages of the regular entries (a compensation entry is in none); a page state is refreshed
                        // when read: it may still hold the pages of the most entries held
                        long page = Math.max(1, st.pageSize() == null ? 1 : sizes.computation(st.pageSize(), e));
                        long now = (sizes.regularAtMost(e) + page - 1) / page, most = (Math.max(e, sizes.mostSeen) + page - 1) / page;
                        if (most != now || sizes.regularAtMost(e) != sizes.regularAtLeast(e)) pagesExact = false;
                        yield Math.max(now, most);
                    }
                    case HEAD -> 1; // per-layer state is shared: this lane's share
                    default -> 1;
                };
            }
            state += elems * Ty.Elem.STATE_BYTES;
        }

        boolean exact = sizes.entriesExact && storageExact && pagesExact;
        long slack = keys.pageSlack(d, dtypeBytes, perPage) + values.pageSlack(d, dtypeBytes, perPage);
        if (shared && perPage > 1 && sizes.ragged()) {
            // a layer's lanes hold unequal shares of its entries, each chain in whole pages: the mean's pages and a page
            // less one row per chain bound a lane, not say it
            kv += slack;
            exact = false;
        }

        // transients
        long observed = sizes.observedQueries();
        long prefillEntries = n;
        long prefillRows = sizes.readsRows(true) ? (observed > 0 ? observed : n) * g * n * 4 : 0;
        long prefillQueries = observed * g * d * 4L;
        long scoresPrefill = sizes.ranks(true) ? n * 4 : 0;
        long prefillPeak = prefillEntries * entryBytes + state / Math.max(1, e) * Math.max(e, n) + prefillRows + prefillQueries + scoresPrefill;
        long decodeEntries = sizes.overflowLimit() >= 0 ? Math.min(context + 1, sizes.overflowLimit() + 1) : e + 1;
        long decodeRows = sizes.readsRows(false) ? (long) g * decodeEntries * 4 : 0;
        long scoresDecode = sizes.ranks(false) ? decodeEntries * 4 : 0;
        long perEntry = e == 0 ? entryBytes : (kv + scales + state) / Math.max(1, e);
        long decodePeak = kv + scales + state + Math.max(0, decodeEntries - e) * Math.max(perEntry, entryBytes) + decodeRows + scoresDecode;
        return new LaneMemory(e, kv, scales, state, Math.max(prefillPeak, kv + scales + state), decodePeak, precision, shared, sizes.entriesExact, exact,
                slack);
    }

    /** Whether a handler's {@code store ... for S} at {@code bits} takes more bytes per entry than the 'otherwise' after it. */
    private static boolean largerThanOtherwise(Instr.Store st, int bits, Sizes sizes, long len, int d) {
        Instr.Store other = sizes.otherwiseAfter(st);
        if (other == null) return true;
        int otherBits = other.format() == Instr.Format.INT ? (int) sizes.value(other.bits(), len) : other.format().bits;
        return entryBits(st, bits, sizes, len, d) >= entryBits(other, otherBits, sizes, len, d);
    }

    /** Bits one entry takes under a rule of {@code bits}: its channels, and its share of the scales if quantised. */
    private static double entryBits(Instr.Store st, int bits, Sizes sizes, long len, int d) {
        double b = (double) bits * d;
        if (bits >= 16) return b;
        long group = Math.max(1, st.group() >= 0 ? sizes.value(st.group(), len) : st.axis() == Instr.QuantAxis.CHANNEL ? 32 : d);
        return b + 8.0 * SCALE_BYTES * (st.axis() == Instr.QuantAxis.CHANNEL ? (double) d / group : Math.ceil((double) d / group));
    }

    /** Storage rules for keys or values, applied in order (later rules take entries from the host precision pool). */
    private static final class Storage {
        private record Rule(Instr.Format format, int bits, Instr.QuantAxis axis, long group, long covered) {
            /** Whether its entries are rows of a row chain (paged), not per-channel blocks. */
            boolean rows() {
                return bits >= 16 || axis == Instr.QuantAxis.TOKEN;
            }

            /** The runtime's chain its entries go to: one per format. */
            String chain(int hostBytes) {
                if (bits >= 16 && format.bits == hostBytes * 8 && (format != Instr.Format.BF16)) return "host";
                return format + "/" + bits + "/" + axis + "/" + group;
            }

            /** Bytes of a row of this format: packed elements and, quantised, its scales. */
            long rowBytes(int d) {
                return (long) d * bits / 8 + (bits < 16 ? (d + Math.max(1, group) - 1) / Math.max(1, group) * SCALE_BYTES : 0);
            }
        }

        private final List<Rule> rules = new ArrayList<>();

        void rule(Instr.Format format, int bits, Instr.QuantAxis axis, long group, long covered) {
            rules.add(new Rule(format, bits, axis, group, covered));
        }

        /**
         * Entries of each row chain rounded up to whole pages of {@code perPage}: {@code c[i]} entries of rule i become
         * their share of their chain's rounded count (the host chain also takes what no rule covers, as {@code host}).
         * Returns the rounded count per rule, the host's last.
         */
        private long[] paged(long[] c, long host, int hostBytes, int perPage) {
            long[] out = new long[c.length + 1];
            Map<String, Long> chain = new HashMap<>();
            for (int i = 0; i < c.length; i++) if (rules.get(i).rows()) chain.merge(rules.get(i).chain(hostBytes), c[i], Long::sum);
            chain.merge("host", host, Long::sum);
            // each chain's rounding is given to its first rule (or the host)
            java.util.Set<String> given = new java.util.HashSet<>();
            for (int i = 0; i < c.length; i++) {
                Rule r = rules.get(i);
                out[i] = c[i];
                if (!r.rows() || r.chain(hostBytes).equals("host")) continue;
                if (given.add(r.chain(hostBytes))) out[i] += MemoryModel.paged(chain.get(r.chain(hostBytes)), perPage) - chain.get(r.chain(hostBytes));
            }
            out[c.length] = host + MemoryModel.paged(chain.get("host"), perPage) - chain.get("host");
            return out;
        }

        /** The most bytes this part's row chains can take beyond their rows: a page less one row each. */
        long pageSlack(int d, int hostBytes, int perPage) {
            Map<String, Long> chains = new HashMap<>();
            chains.put("host", (long) d * hostBytes);
            for (Rule r : rules) if (r.rows()) chains.merge(r.chain(hostBytes), r.rowBytes(d), Math::max);
            long t = 0;
            for (long b : chains.values()) t += (perPage - 1) * b;
            return t;
        }

        void clear() {
            rules.clear();
        }

        /** At most: every entry at the largest of the host's and the rules' formats, each chain's last page full. */
        long boundBytes(long e, int d, int hostBytes, int perPage) {
            long most = (long) d * hostBytes * 8;
            for (Rule r : rules) most = Math.max(most, (long) d * r.bits);
            return (e + (rules.size() + 1L) * (perPage - 1)) * most / 8;
        }

        /** At most: every entry with the most scales any quantising rule gives an entry, each chain's last page full. */
        long boundScaleBytes(long e, int d, int perPage) {
            e += (rules.size() + 1L) * (perPage - 1);
            long most = 0;
            for (Rule r : rules) {
                if (r.bits >= 16) continue;
                long group = Math.max(1, r.group);
                most = Math.max(most, r.axis == Instr.QuantAxis.TOKEN ? (d + group - 1) / group * SCALE_BYTES : ((long) d * SCALE_BYTES + group - 1) / group);
            }
            return e * most;
        }

        /** Entries per rule: explicit coverage first, 'otherwise' takes what remains; the rest is at host precision. */
        private long[] counts(long e) {
            long[] c = new long[rules.size()];
            long used = 0;
            for (int i = 0; i < rules.size(); i++) {
                Rule r = rules.get(i);
                if (r.covered >= 0) {
                    long k = Math.min(r.covered, Math.max(0, e - used));
                    if (r.bits < 16 && r.axis == Instr.QuantAxis.CHANNEL && r.group > 0) k = (k / r.group) * r.group;
                    c[i] = k;
                    used += k;
                }
            }
            for (int i = 0; i < rules.size(); i++) {
                if (rules.get(i).covered < 0) {
                    c[i] = Math.max(0, e - used);
                    used = e;
                }
            }
            return c;
        }

        long bytes(long e, int d, int hostBytes, int perPage) {
            long[] c = counts(e);
            long used = 0;
            for (long x : c) used += x;
            long[] p = paged(c, Math.max(0, e - used), hostBytes, perPage);
            long total = 0;
            for (int i = 0; i < c.length; i++) total += p[i] * (long) d * rules.get(i).bits / 8;
            return total + p[c.length] * d * hostBytes;
        }

        long scaleBytes(long e, int d, int perPage) {
            long[] c = counts(e);
            long used = 0;
            for (long x : c) used += x;
            c = java.util.Arrays.copyOf(paged(c, Math.max(0, e - used), 0, perPage), c.length);
            long total = 0;
            for (int i = 0; i < c.length; i++) {
                Rule r = rules.get(i);
                if (r.bits >= 16) continue;
                long group = Math.max(1, r.group);
                total += r.axis == Instr.QuantAxis.TOKEN
                        ? c[i] * ((d + group - 1) / group) * SCALE_BYTES
                        : (c[i] / group) * d * SCALE_BYTES;
            }
            return total;
        }

        String describe(long e) {
            if (rules.isEmpty()) return "host";
            StringJoiner j = new StringJoiner("+");
            long[] c = counts(e);
            long used = 0;
            for (int i = 0; i < c.length; i++) {
                Rule r = rules.get(i);
                j.add((r.bits >= 16 ? "f" + r.bits : "int" + r.bits) + ":" + c[i]);
                used += c[i];
            }
            if (used < e) j.add("host:" + (e - used));
            return j.toString();
        }
    }

    /** Sizes read off a leaf policy's IR for a prompt of {@code n} tokens, then decode steps up to {@code context}. */
    private static final class Sizes {
        private final PolicyIr p;
        private final long n, context;
        private final int kvHeads;
        /** What the {@code context} signal reads: the prompt while it is processed, then the whole context. */
        private long seen;
        private final Map<Integer, Instr.Def> defs = new HashMap<>();

        Sizes(PolicyIr p, long n, long context, int kvHeads) {
            this.p = p;
            this.n = n;
            this.context = context;
            this.seen = context;
            this.kvHeads = kvHeads;
            forEach(i -> {
                if (i instanceof Instr.Def d) defs.put(d.id(), d);
            });
            for (PolicyIr.State s : p.states()) {
                if (s.pageSize() != null) addDefs(s.pageSize().block());
                if (s.init() != null) addDefs(s.init().block());
            }
            for (PolicyIr.Observe o : p.observes()) if (o.count() != null) addDefs(o.count().block());
            for (PolicyIr.Handler h : p.handlers()) if (h.limit() != null) addDefs(h.limit().block());
        }

        private void addDefs(Block b) {
            for (Instr i : b.instrs()) if (i instanceof Instr.Def d) defs.put(d.id(), d);
        }

        private void forEach(java.util.function.Consumer<Instr> f) {
            IrWalk.forEachInstr(p.standing(), f);
            for (PolicyIr.Handler h : p.handlers()) IrWalk.forEachInstr(h.body(), f);
        }

        private static void visit(Block b, java.util.function.Consumer<Instr> f) {
            IrWalk.forEachInstr(b, f);
        }

        /** A store, and whether it is a standing rule (applied at every event, after the handlers). */
        record StoreAt(Instr.Store store, boolean standing) {}

        /** The stores in the order an event applies them: the handlers', then the standing rules. */
        List<StoreAt> stores() {
            List<StoreAt> out = new ArrayList<>();
            for (PolicyIr.Handler h : p.handlers()) {
                IrWalk.forEachInstr(h.body(), i -> {
                    if (i instanceof Instr.Store st) out.add(new StoreAt(st, false));
                });
            }
            IrWalk.forEachInstr(p.standing(), i -> {
                if (i instanceof Instr.Store st) out.add(new StoreAt(st, true));
            });
            return out;
        }

        /**
         * A handler's store when it last ran: the regular entries the lane held then, and whether what it covered is
         * no longer known (an entry left the lane since, or it ran in a branch that depends on the data).
         */
        record Run(long len, boolean inexact, int times) {}

        private final Map<Instr.Store, Run> runs = new java.util.IdentityHashMap<>();
        private int inIf;

        /** The last run of a handler's store in the steps followed, or null if it never ran. */
        Run lastRun(Instr.Store st) {
            return runs.get(st);
        }

        /** Whether a set is first(n) ({@code end} FIRST) or last(n) with n known. */
        boolean isRange(int id, Op.End end) {
            Instr.Def d = defs.get(id);
            return d != null && d.op() instanceof Op.Range r && r.end() == end && known(r.count());
        }

        /** Whether a handler's {@code store ... for S} is followed in its block by a {@code store ... otherwise}. */
        boolean followedByOtherwise(Instr.Store st) {
            return otherwiseAfter(st) != null;
        }

        /** The {@code store ... otherwise} that follows a handler's {@code store ... for S} in its block, or null. */
        Instr.Store otherwiseAfter(Instr.Store st) {
            for (PolicyIr.Handler h : p.handlers()) {
                List<Instr> is = h.body().instrs();
                for (int i = 0; i < is.size(); i++) {
                    if (is.get(i) != st) continue;
                    for (int j = i + 1; j < is.size(); j++) {
                        if (is.get(j) instanceof Instr.Store o) {
                            return o.scope() == Instr.Scope.OTHERWISE && o.parts().containsAll(st.parts()) ? o : null;
                        }
                    }
                }
            }
            return null;
        }


        /**
         * Whether the layer's lanes can hold different numbers of entries: a selection shares a count among them
         * ({@code top(s, n, per head at least m)}, a score over [head, token]); one over [token] picks the same for all.
         */
        boolean ragged() {
            for (Instr.Def d : defs.values()) {
                if (d.op() instanceof Op.Rank && d.type() instanceof Ty.SetTy st && st.perHead()) return true;
            }
            return false;
        }

        /** Whether any handler can remove entries (keep, evict). */
        boolean removesEntries() {
            boolean[] found = {false};
            for (PolicyIr.Handler h : p.handlers()) {
                IrWalk.forEachInstr(h.body(), i -> {
                    if (i instanceof Instr.Keep || i instanceof Instr.Evict) found[0] = true;
                });
            }
            return found[0];
        }

        /** Entries left the lane: what the stores that ran before covered is no longer known. */
        private void entriesLeft() {
            runs.replaceAll((k, v) -> new Run(v.len(), true, v.times()));
        }

        /** A limit {@code share(total, state) + fixed}: its share's state, its total and its fixed part. */
        record Share(String state, long total, long fixed) {}

        /** The first overflow handler's limit as a share of a total plus a fixed part, or null when it is not one. */
        Share shareLimit() {
            for (PolicyIr.Handler h : p.handlers()) {
                if (!h.events().contains(PolicyIr.Event.OVERFLOW)) continue;
                String state = null;
                int shares = 0;
                for (Instr i : h.limit().block().instrs()) {
                    if (i instanceof Instr.Def d && d.op() instanceof Op.ModelStat ms && ms.stat() == Op.CellStat.SHARE) {
                        state = ms.state();
                        shares++;
                    }
                }
                if (shares != 1 || !shareForm(h.limit().result())) return null;
                long fixed = lowest(h.limit(), context), most = computation(h.limit(), context);
                return fixed < 0 || most < fixed ? null : new Share(state, most - fixed, fixed);
            }
            return null;
        }

        /** Whether a value is {@code share(T, w)} ({@code int(T * fraction)}) or it plus a known value: a share's form. */
        private boolean shareForm(int id) {
            Instr.Def d = defs.get(id);
            if (d == null) return false;
            if (d.op() instanceof Op.Map2 m && m.fn() == Op.Fn2.ADD) return shareForm(m.a()) && known(m.b()) || known(m.a()) && shareForm(m.b());
            if (!(d.op() instanceof Op.Map1 m1 && m1.fn() == Op.Fn1.TO_INT && defs.get(m1.x()) != null && defs.get(m1.x()).op() instanceof Op.Map2 mul
                    && mul.fn() == Op.Fn2.MUL)) return false;
            return isShare(mul.a()) && known(mul.b()) || known(mul.a()) && isShare(mul.b());
        }

        private boolean isShare(int id) {
            Instr.Def d = defs.get(id);
            return d != null && d.op() instanceof Op.ModelStat ms && ms.stat() == Op.CellStat.SHARE;
        }

        long overflowLimit() {
            for (PolicyIr.Handler h : p.handlers()) {
                if (h.events().contains(PolicyIr.Event.OVERFLOW)) return computation(h.limit(), context);
            }
            return -1;
        }

        /**
         * Whether the lane may hold its compensation entry (a merge into it creates it), and whether it surely does,
         * as the steps are followed.
         */
        private boolean compensation, compensationSure;
        /**
         * Whether the entries followed are exactly the runtime's: the fewest and the most the lane can hold agree at
         * the end. Where a decision depends on the data (a set whose size is not known, an {@code if} whose branches
         * differ, an overflow handler that may or may not run), the most is a bound the runtime stays under.
         */
        boolean entriesExact = true;
        /** The most regular entries of a lane of {@code e}: without its compensation entry where it surely holds one. */
        long regularAtMost(long e) {
            return e - (compensationSure ? 1 : 0);
        }

        /** The fewest regular entries of a lane of {@code e}: without its compensation entry where it may hold one. */
        long regularAtLeast(long e) {
            return e - (compensation ? 1 : 0);
        }

        /** The most entries the lane held at the end of an event's append, before its handlers. */
        long mostSeen;

        /** The fewest and the most entries a lane can hold at a point of the steps followed. */
        private record Count(long lo, long hi) {
            Count plus(long k) {
                return new Count(lo + k, hi + k);
            }
        }

        /**
         * Entries in the lane once the prompt is processed and the decode steps are taken, step by step: each decode
         * step adds an entry, then its handlers act ({@code every N} at the steps N divides, {@code overflow(B)}
         * whenever the lane holds more than B), so a lane that an overflow handler cuts below its budget is followed
         * up the saw-tooth to the step the prediction is for. The fewest and the most entries are followed together:
         * the most is what the prediction states.
         */
        long steadyEntries() {
            seen = n;
            compensation = false;
            compensationSure = false;
            mostSeen = n;
            Count c = apply(new Count(n, n), true, 0);
            for (long t = 1; t <= context - n; t++) {
                seen = n + t;
                mostSeen = Math.max(mostSeen, c.hi() + 1);
                c = apply(c.plus(1), false, t);
            }
            seen = context;
            // under per-layer selection a lane's figure is its share of the layer's: exact is said of the layer
            entriesExact = c.lo() == c.hi();
            return c.hi();
        }

        /** The prefill's (or decode step {@code step}'s) handlers on a lane of {@code c} entries, in their order. */
        private Count apply(Count c, boolean prefill, long step) {
            for (PolicyIr.Handler h : p.handlers()) {
                boolean overflow = h.events().contains(PolicyIr.Event.OVERFLOW);
                boolean every = h.events().contains(PolicyIr.Event.EVERY);
                if (every) {
                    long period = computation(h.limit(), c.hi());
                    if (prefill || period <= 0 || step % period != 0) continue;
                    c = after(h.body(), c);
                    continue;
                }
                boolean runs = overflow || (prefill ? h.events().contains(PolicyIr.Event.PREFILL) : h.events().contains(PolicyIr.Event.DECODE));
                if (!runs) continue;
                if (!overflow) {
                    c = after(h.body(), c);
                    continue;
                }
                // a limit read from a model state's share lies between its value at no share and at the whole total
                long b = computation(h.limit(), c.hi());
                long least = known(h.limit().result()) ? b : lowest(h.limit(), c.hi());
                if (c.hi() <= least) continue;
                if (c.lo() > b) {
                    c = after(h.body(), c);
                } else {
                    // over the budget or not, as the data decided: either the handler runs on more than the limit, or not
                    Count fired = after(h.body(), new Count(Math.max(c.lo(), least + 1), c.hi()));
                    c = new Count(Math.min(c.lo(), fired.lo()), Math.max(Math.min(b, c.hi()), fired.hi()));
                }
            }
            return c;
        }

        /**
         * Entries after the keeps, evictions and merges into the compensation entry of a block, in order, on a lane of
         * {@code c} entries. An {@code if} left after specialisation depends on the data: the fewest and the most of
         * its branches'.
         */
        private Count after(Block b, Count c) {
            long lo = c.lo(), hi = c.hi();
            for (Instr i : b.instrs()) {
                if (i instanceof Instr.Keep k) {
                    boolean holds = holdsCompensation(k.set());
                    long most = setSize(k.set(), hi);
                    // a set without the compensation entry drops it
                    if (!holds) most = Math.min(most, hi - (compensationSure ? 1 : 0));
                    long least = Math.min(lo, setMin(k.set(), lo));
                    if (!holds) least = Math.min(least, lo - (compensation ? 1 : 0));
                    if (most < hi || !setExact(k.set(), hi)) entriesLeft();
                    hi = Math.min(hi, most);
                    lo = Math.max(0, Math.min(lo, least));
                    if (!holds) {
                        compensation = false;
                        compensationSure = false;
                    }
                } else if (i instanceof Instr.Evict ev) {
                    if (setSize(ev.set(), hi) > 0) entriesLeft();
                    hi = Math.max(0, hi - setMin(ev.set(), hi));
                    lo = Math.max(0, lo - Math.min(lo, setSize(ev.set(), lo)));
                    if (holdsCompensation(ev.set())) {
                        compensation = false;
                        compensationSure = false;
                    }
                } else if (i instanceof Instr.Merge m && defs.get(m.dest()) != null && defs.get(m.dest()).op() instanceof Op.Compensation) {
                    // the first merge into it adds the lane's compensation entry (nothing to merge adds none)
                    boolean surely = setMin(m.source(), lo) >= 1;
                    if (!compensationSure) {
                        hi++;
                        if (surely && !compensation) lo++;
                    }
                    compensation = true;
                    compensationSure |= surely;
                } else if (i instanceof Instr.Store st) {
                    Run was = runs.get(st);
                    runs.put(st, new Run(regular(hi), inIf > 0, was == null ? 1 : was.times() + 1));
                } else if (i instanceof Instr.If f) {
                    boolean before = compensation, beforeSure = compensationSure;
                    inIf++;
                    Count a = after(f.then(), new Count(lo, hi));
                    boolean thenMaybe = compensation, thenSure = compensationSure;
                    compensation = before;
                    compensationSure = beforeSure;
                    Count o = after(f.otherwise(), new Count(lo, hi));
                    inIf--;
                    compensation |= thenMaybe;
                    compensationSure &= thenSure;
                    lo = Math.min(a.lo(), o.lo());
                    hi = Math.max(a.hi(), o.hi());
                }
            }
            return new Count(lo, hi);
        }

        /** Whether an int value is known from the constants, {@code len} and {@code context} (else it depends on data). */
        boolean known(int id) {
            Instr.Def d = defs.get(id);
            if (d == null) return false;
            return switch (d.op()) {
                case Op.Const c -> true;
                case Op.Signal s -> s.signal() == Signal.CONTEXT || s.signal() == Signal.LEN;
                case Op.Map1 m when m.fn() == Op.Fn1.TO_INT || m.fn() == Op.Fn1.TO_FLOAT -> known(m.x());
                case Op.Map2 m when m.fn() == Op.Fn2.ADD || m.fn() == Op.Fn2.SUB || m.fn() == Op.Fn2.MUL || m.fn() == Op.Fn2.DIV
                        || m.fn() == Op.Fn2.MAX || m.fn() == Op.Fn2.MIN -> known(m.a()) && known(m.b());
                case Op.Choose c -> truth(c.cond(), 0) != null && known(c.a()) && known(c.b());
                default -> false;
            };
        }

        /** A comparison of known values (or a constant truth), or null when it depends on the data. */
        Boolean truth(int id, long len) {
            Instr.Def d = defs.get(id);
            if (d == null) return null;
            if (d.op() instanceof Op.Const c && c.value() instanceof Boolean b) return b;
            if (d.op() instanceof Op.Map1 m && m.fn() == Op.Fn1.NOT) {
                Boolean x = truth(m.x(), len);
                return x == null ? null : !x;
            }
            if (!(d.op() instanceof Op.Map2 m)) return null;
            if (m.fn() == Op.Fn2.AND || m.fn() == Op.Fn2.OR) {
                Boolean a = truth(m.a(), len), b = truth(m.b(), len);
                return a == null || b == null ? null : m.fn() == Op.Fn2.AND ? a && b : a || b;
            }
            if (!m.fn().comparison() || !known(m.a()) || !known(m.b())) return null;
            return m.fn().apply(dvalue(m.a(), len), dvalue(m.b(), len)) != 0;
        }

        /** The regular entries of a lane of {@code len} (its compensation entry, if held, is not one). */
        private long regular(long len) {
            return Math.max(0, len - (compensation ? 1 : 0));
        }

        /** Whether a set holds exactly {@link #setSize} entries of a lane of {@code len}, whatever the data. */
        boolean setExact(int id, long len) {
            Instr.Def d = defs.get(id);
            if (d == null) return false;
            return switch (d.op()) {
                case Op.Range r -> known(r.count()) && value(r.count(), len) <= regular(len);
                case Op.Rank r -> {
                    // a per-head floor shares the layer's count among its lanes: the layer's total is the count
                    if (!known(r.count()) || r.floor() >= 0 && p.selection() != PolicyIr.Selection.LAYER) yield false;
                    long c = value(r.count(), len);
                    Instr.Def sd = defs.get(r.score());
                    long candidates = sd != null && sd.op() instanceof Op.Within w ? setMin(w.set(), len) : regular(len);
                    yield c <= candidates;
                }
                case Op.All a -> true;
                case Op.Compensation c -> true;
                case Op.SetOp o when o.fn() == Op.SetFn.UNION -> setExact(o.a(), len) && setExact(o.b(), len) && (sameEnd(o.a(), o.b()) || disjoint(o.a(), o.b(), len));
                default -> false;
            };
        }

        /** Whether two sets surely share no entry. */
        private boolean disjoint(int a, int b, long len) {
            Instr.Def da = defs.get(a), db = defs.get(b);
            if (da == null || db == null) return false;
            if (db.op() instanceof Op.SetOp u && u.fn() == Op.SetFn.UNION) return disjoint(a, u.a(), len) && disjoint(a, u.b(), len);
            if (da.op() instanceof Op.SetOp u && u.fn() == Op.SetFn.UNION) return disjoint(u.a(), b, len) && disjoint(u.b(), b, len);
            if (da.op() instanceof Op.Compensation) return !holdsCompensation(b);
            if (db.op() instanceof Op.Compensation) return !holdsCompensation(a);
            if (da.op() instanceof Op.Range x && db.op() instanceof Op.Range y) {
                return x.end() != y.end() && value(x.count(), len) + value(y.count(), len) <= regular(len);
            }
            // a ranking within S has its members in S (H2O's top(acc within all - last(r), ...), SnapKV's within
            // first(len - w)); A - B has none of B
            if (da.op() instanceof Op.Rank r) return withinDisjoint(r.score(), b, len);
            if (db.op() instanceof Op.Rank r) return withinDisjoint(r.score(), a, len);
            if (da.op() instanceof Op.SetOp o && o.fn() == Op.SetFn.DIFF) return sameSet(o.b(), b, len) || disjoint(o.a(), b, len);
            if (db.op() instanceof Op.SetOp o && o.fn() == Op.SetFn.DIFF) return sameSet(o.b(), a, len) || disjoint(a, o.a(), len);
            return false;
        }

        /** Whether a ranking of {@code score} ({@code x within S}) shares no entry with {@code set}. */
        private boolean withinDisjoint(int score, int set, long len) {
            Instr.Def sd = defs.get(score);
            return sd != null && sd.op() instanceof Op.Within w && disjoint(w.set(), set, len);
        }

        /** Whether both sets are first(n) (or both last(n)): their union is the larger. */
        private boolean sameEnd(int a, int b) {
            Instr.Def da = defs.get(a), db = defs.get(b);
            return da != null && db != null && da.op() instanceof Op.Range x && db.op() instanceof Op.Range y && x.end() == y.end();
        }

        private boolean sameSet(int a, int b, long len) {
            if (a == b) return true;
            Instr.Def da = defs.get(a), db = defs.get(b);
            return da != null && db != null && da.op() instanceof Op.Range x && db.op() instanceof Op.Range y && x.end() == y.end()
                    && known(x.count()) && known(y.count()) && value(x.count(), len) == value(y.count(), len);
        }

        /** Whether a set has the compensation entry among its members ({@link Op.SetFn#compensation}). */
        private boolean holdsCompensation(int id) {
            Instr.Def d = defs.get(id);
            if (d == null) return false;
            return switch (d.op()) {
                case Op.All a -> true;
                case Op.Compensation c -> true;
                case Op.SetOp o -> o.fn().compensation(holdsCompensation(o.a()), holdsCompensation(o.b()));
                case Op.Choose c -> holdsCompensation(c.a()) || holdsCompensation(c.b());
                default -> false;
            };
        }

        long computation(Computation c, long len) {
            return value(c.result(), len);
        }

        /** An int value with {@code len} = {@code len} and {@code context} = the prompt; unknown values count as len. */
        long value(int id, long len) {
            Instr.Def d = defs.get(id);
            if (d == null) return len;
            return switch (d.op()) {
                case Op.Const c -> c.value() instanceof Long l ? l : c.value() instanceof Double x ? (long) (double) x : 0;
                case Op.Signal s -> s.signal() == Signal.CONTEXT ? seen : len;
                case Op.Map1 m when m.fn() == Op.Fn1.TO_INT || m.fn() == Op.Fn1.TO_FLOAT -> value(m.x(), len);
                case Op.Choose c when truth(c.cond(), len) != null -> value(truth(c.cond(), len) ? c.a() : c.b(), len);
                case Op.Map2 m -> {
                    double a = dvalue(m.a(), len), b = dvalue(m.b(), len);
                    yield (long) switch (m.fn()) {
                        case ADD -> a + b;
                        case SUB -> a - b;
                        case MUL -> a * b;
                        case DIV -> b == 0 ? len : a / b;
                        case MAX -> Math.max(a, b);
                        case MIN -> Math.min(a, b);
                        default -> len;
                    };
                }
                default -> len;
            };
        }

        /**
         * What a model state's {@code share} fraction counts as: 1 (a part is at most the whole total) while the most
         * is computed, 0 for {@link #lowest}.
         */
        private double shareFraction = 1;

        /** A computation's value with every share at 0: the least a limit read from shares can be. */
        private long lowest(Computation c, long len) {
            shareFraction = 0;
            try {
                return computation(c, len);
            } finally {
                shareFraction = 1;
            }
        }

        private double dvalue(int id, long len) {
            Instr.Def d = defs.get(id);
            if (d != null && d.op() instanceof Op.Const c && c.value() instanceof Double x) return x;
            if (d != null && d.op() instanceof Op.ModelStat ms && ms.stat() == Op.CellStat.SHARE) return shareFraction;
            if (d != null && d.op() instanceof Op.Map2 m && (m.fn() == Op.Fn2.MUL || m.fn() == Op.Fn2.SUB || m.fn() == Op.Fn2.ADD || m.fn() == Op.Fn2.DIV)) {
                double a = dvalue(m.a(), len), b = dvalue(m.b(), len);
                return switch (m.fn()) {
                    case MUL -> a * b;
                    case SUB -> a - b;
                    case ADD -> a + b;
                    default -> b == 0 ? len : a / b;
                };
            }
            return value(id, len);
        }

        /** Most entries a set can hold in a lane of {@code len} entries. */
        long setSize(int id, long len) {
            Instr.Def d = defs.get(id);
            if (d == null) return len;
            long s = switch (d.op()) {
                case Op.Range r -> Math.max(0, value(r.count(), len));
                case Op.Rank r -> {
                    long c = Math.max(0, value(r.count(), len));
                    // a per-layer allocation shares heads * b among the layer's lanes: this lane's share on average
                    if (p.selection() == PolicyIr.Selection.LAYER && d.type() instanceof Ty.SetTy st && st.perHead()) {
                        c = c / Math.max(1, laneHeads());
                    }
                    yield c;
                }
                case Op.SetOp o when o.fn() == Op.SetFn.UNION && sameEnd(o.a(), o.b()) -> Math.max(setSize(o.a(), len), setSize(o.b(), len));
                case Op.SetOp o -> switch (o.fn()) {
                    case UNION -> setSize(o.a(), len) + setSize(o.b(), len);
                    case DIFF -> setSize(o.a(), len);
                    case INTER -> Math.min(setSize(o.a(), len), setSize(o.b(), len));
                };
                case Op.Compensation c -> compensation ? 1 : 0;
                case Op.Where w -> rankBound(w.pred(), len);
                case Op.Prim pr when pr.fn() == Op.PrimFn.STRATA -> {
                    long c = Math.max(0, value(pr.args().get(1), len));
                    if (p.selection() == PolicyIr.Selection.LAYER && d.type() instanceof Ty.SetTy st && st.perHead()) {
                        c = c / Math.max(1, laneHeads());
                    }
                    yield c;
                }
                default -> len;
            };
            return Math.min(s, len + (d.op() instanceof Op.Compensation ? 1 : 0));
        }

        /**
         * The most entries {@code where(rank(s) < n)} holds: ranks are distinct whole numbers from 0, so {@code
         * ceil(n)} ({@code floor(n) + 1} for {@code <=}); {@code len} for any other predicate (the checker's rule).
         */
        private long rankBound(int pred, long len) {
            Instr.Def d = defs.get(pred);
            if (d == null || !(d.op() instanceof Op.Map2 m)) return len;
            boolean rankLeft = isRank(m.a()), rankRight = isRank(m.b());
            int n;
            boolean strict;
            switch (m.fn()) {
                case LT, LE -> {
                    if (!rankLeft) return len;
                    n = m.b();
                    strict = m.fn() == Op.Fn2.LT;
                }
                case GT, GE -> {
                    if (!rankRight) return len;
                    n = m.a();
                    strict = m.fn() == Op.Fn2.GT;
                }
                default -> {
                    return len;
                }
            }
            double v = dvalue(n, len);
            return (long) Math.max(0, strict ? Math.ceil(v) : Math.floor(v) + 1);
        }

        private boolean isRank(int id) {
            Instr.Def d = defs.get(id);
            return d != null && d.op() instanceof Op.Prim p && p.fn() == Op.PrimFn.RANK;
        }

        private long laneHeads() {
            return kvHeads;
        }

        private long setMin(int id, long len) {
            Instr.Def d = defs.get(id);
            if (d == null) return 0;
            if (d.op() instanceof Op.All) return len;
            if (d.op() instanceof Op.Compensation) return compensationSure ? 1 : 0;
            if (setExact(id, len)) return Math.min(len, setSize(id, len));
            if (d.op() instanceof Op.SetOp o && o.fn() == Op.SetFn.DIFF) return Math.max(0, setMin(o.a(), len) - setSize(o.b(), len));
            if (d.op() instanceof Op.SetOp o && o.fn() == Op.SetFn.UNION) return Math.max(setMin(o.a(), len), setMin(o.b(), len));
            return 0;
        }

        long observedQueries() {
            long q = 0;
            for (PolicyIr.Observe o : p.observes()) q = Math.max(q, o.count() == null ? n : Math.min(n, computation(o.count(), n)));
            return q;
        }

        /** Does a handler running at prefill (or decode) read attention rows that are not fused into the kernel? */
        boolean readsRows(boolean prefill) {
            boolean[] found = {false};
            for (PolicyIr.Handler h : p.handlers()) {
                boolean runs = prefill ? h.events().contains(PolicyIr.Event.PREFILL) || h.events().contains(PolicyIr.Event.CHUNK)
                        : h.events().contains(PolicyIr.Event.DECODE) || h.events().contains(PolicyIr.Event.OVERFLOW) || h.events().contains(PolicyIr.Event.EVERY);
                if (!runs) continue;
                visit(h.body(), i -> {
                    if (i instanceof Instr.Def d && d.op() instanceof Op.Signal s && s.signal().attention()) found[0] = true;
                });
            }
            return found[0];
        }

        boolean ranks(boolean prefill) {
            boolean[] found = {false};
            for (PolicyIr.Handler h : p.handlers()) {
                boolean runs = prefill ? !h.events().contains(PolicyIr.Event.DECODE) || h.events().contains(PolicyIr.Event.PREFILL) : !h.events().equals(List.of(PolicyIr.Event.PREFILL));
                if (!runs) continue;
                visit(h.body(), i -> {
                    if (i instanceof Instr.Def d && d.op() instanceof Op.Rank) found[0] = true;
                });
            }
            return found[0];
        }
    }
}
