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

    /** Bytes of one lane by category. */
    public record LaneMemory(long entries, long kvBytes, long scaleBytes, long stateBytes, long prefillPeak, long decodePeak,
                             String precision, boolean sharedInLayer) {
        public long steadyBytes() {
            return kvBytes + scaleBytes + stateBytes;
        }
    }

    /** The whole model: one {@link LaneMemory} per (layer, KV head), and the full cache's figure for comparison. */
    public record Report(String policy, LaneShape shape, long prompt, long context, String dtype, int dtypeBytes, LaneMemory[][] lanes, long fullBytesPerLane) {
        public long totalSteady() {
            long t = 0;
            for (LaneMemory[] row : lanes) for (LaneMemory m : row) t += m.steadyBytes();
            return t;
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

    /** A prompt of {@code prompt} tokens in one prefill step, then decode steps up to {@code context} tokens. */
    public static Report predict(Specialized s, long prompt, long context, String dtype) {
        if (prompt < 1 || prompt > context) throw new IllegalArgumentException("the prompt must be 1.." + context + " tokens, not " + prompt);
        int dtypeBytes = switch (dtype) {
            case "f32" -> 4;
            case "f16", "bf16" -> 2;
            default -> throw new IllegalArgumentException("dtype must be f32, f16 or bf16, not " + dtype);
        };
        LaneShape shape = s.shape();
        LaneMemory[] perClass = new LaneMemory[s.classes().size()];
        for (int c = 0; c < perClass.length; c++) perClass[c] = lane(s.classes().get(c), shape, prompt, context, dtypeBytes);
        LaneMemory full = lane(null, shape, prompt, context, dtypeBytes);
        LaneMemory[][] lanes = new LaneMemory[shape.layers()][shape.kvHeads()];
        for (int l = 0; l < shape.layers(); l++) {
            for (int h = 0; h < shape.kvHeads(); h++) lanes[l][h] = s.classOf()[l][h] < 0 ? full : perClass[s.classOf()[l][h]];
        }
        return new Report(s.root(), shape, prompt, context, dtype, dtypeBytes, lanes, full.steadyBytes());
    }

    /** One lane running {@code p} (null: the full cache) for a prompt of {@code n} tokens and {@code context} in all. */
    static LaneMemory lane(PolicyIr p, LaneShape shape, long n, long context, int dtypeBytes) {
        int d = shape.headDim(), g = shape.group();
        long entryBytes = 2L * d * dtypeBytes;
        if (p == null) return new LaneMemory(context, context * entryBytes, 0, 0, n * entryBytes, (context + 1) * entryBytes, "host", false);
        Sizes sizes = new Sizes(p, n, context, shape.kvHeads());
        long e = sizes.steadyEntries();
        boolean shared = p.selection() == PolicyIr.Selection.LAYER;

        // keys and values at their precision
        Storage keys = new Storage(), values = new Storage();
        for (Sizes.StoreAt at : sizes.stores()) {
            Instr.Store st = at.store();
            // a store of the prompt's handlers covers what the prompt's lane held then (of n entries), not the
            // entries decoded after it; later ones cover the lane as it ends
            long len = at.promptOnly() ? Math.min(e, n) : e;
            int bits = st.format() == Instr.Format.INT ? (int) sizes.value(st.bits(), len) : st.format().bits;
            long group = st.group() >= 0 ? sizes.value(st.group(), len) : d;
            long covered = switch (st.scope()) {
                case ALL -> len;
                case FOR -> Math.min(len, sizes.setSize(st.set(), at.promptOnly() ? n : e));
                case EXCEPT -> at.promptOnly() ? Math.min(len, Math.max(0, n - Math.min(n, sizes.setSize(st.set(), n))))
                        : Math.max(0, e - Math.min(e, sizes.setSize(st.set(), e)));
                case OTHERWISE -> -1;
            };
            for (Instr.Part part : st.parts()) (part == Instr.Part.KEYS ? keys : values).rule(bits, st.axis(), group, covered);
        }
        long kv = keys.bytes(e, d, dtypeBytes) + values.bytes(e, d, dtypeBytes);
        long scales = keys.scaleBytes(e, d) + values.scaleBytes(e, d);
        String precision = keys.describe(e) + " / " + values.describe(e);

        // state
        long state = 0;
        for (PolicyIr.State st : p.states()) {
            long elems = 1;
            for (Axis a : st.type().axes()) {
                elems *= switch (a) {
                    case TOKEN -> e;
                    case CHANNEL -> d;
                    case PAGE -> {
                        long page = Math.max(1, st.pageSize() == null ? 1 : sizes.computation(st.pageSize(), e));
                        yield (e + page - 1) / page;
                    }
                    case HEAD -> 1; // per-layer state is shared: this lane's share
                    default -> 1;
                };
            }
            state += elems * Ty.Elem.STATE_BYTES;
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
        return new LaneMemory(e, kv, scales, state, Math.max(prefillPeak, kv + scales + state), decodePeak, precision, shared);
    }

    /** Storage rules for keys or values, applied in order (later rules take entries from the host precision pool). */
    private static final class Storage {
        private record Rule(int bits, Instr.QuantAxis axis, long group, long covered) {}

        private final List<Rule> rules = new ArrayList<>();

        void rule(int bits, Instr.QuantAxis axis, long group, long covered) {
            rules.add(new Rule(bits, axis, group, covered));
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

        long bytes(long e, int d, int hostBytes) {
            long[] c = counts(e);
            long total = 0, used = 0;
            for (int i = 0; i < c.length; i++) {
                total += c[i] * (long) d * rules.get(i).bits / 8;
                used += c[i];
            }
            return total + Math.max(0, e - used) * d * hostBytes;
        }

        long scaleBytes(long e, int d) {
            long[] c = counts(e);
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

        /** A store, and whether it runs only in the prompt's handlers (prefill or chunk, never after). */
        record StoreAt(Instr.Store store, boolean promptOnly) {}

        List<StoreAt> stores() {
            List<StoreAt> out = new ArrayList<>();
            IrWalk.forEachInstr(p.standing(), i -> {
                if (i instanceof Instr.Store st) out.add(new StoreAt(st, false));
            });
            for (PolicyIr.Handler h : p.handlers()) {
                boolean prompt = h.events().stream().allMatch(ev -> ev == PolicyIr.Event.PREFILL || ev == PolicyIr.Event.CHUNK);
                IrWalk.forEachInstr(h.body(), i -> {
                    if (i instanceof Instr.Store st) out.add(new StoreAt(st, prompt));
                });
            }
            return out;
        }

        long overflowLimit() {
            for (PolicyIr.Handler h : p.handlers()) {
                if (h.events().contains(PolicyIr.Event.OVERFLOW)) return computation(h.limit(), context);
            }
            return -1;
        }

        /** Entries in the lane once the prompt is processed and the decode steps are taken. */
        long steadyEntries() {
            seen = n;
            long e = apply(n, true);
            if (context > n) {
                seen = context;
                // each decoded token adds an entry and the decode-time handlers act; the last step's state stands
                e = apply(e + context - n, false);
            }
            seen = context;
            return e;
        }

        /** The prefill's (or a decode step's) handlers on a lane of {@code e} entries, in their order. */
        private long apply(long e, boolean prefill) {
            for (PolicyIr.Handler h : p.handlers()) {
                boolean overflow = h.events().contains(PolicyIr.Event.OVERFLOW);
                boolean runs = overflow || (prefill ? h.events().contains(PolicyIr.Event.PREFILL)
                        : h.events().contains(PolicyIr.Event.DECODE) || h.events().contains(PolicyIr.Event.EVERY));
                if (!runs) continue;
                if (overflow && e <= computation(h.limit(), e)) continue;
                e = entriesAfter(h.body(), e);
            }
            return e;
        }

        /**
         * Entries after the keeps and evictions of a block, in order, on a lane of {@code e}. An {@code if} left after
         * specialisation depends on the data: the larger of its branches' outcomes, a bound the measure stays under.
         */
        private long entriesAfter(Block b, long e) {
            for (Instr i : b.instrs()) {
                if (i instanceof Instr.Keep k) e = Math.min(e, setSize(k.set(), e));
                else if (i instanceof Instr.Evict ev) e = Math.max(0, e - setMin(ev.set(), e));
                else if (i instanceof Instr.If f) e = Math.max(entriesAfter(f.then(), e), entriesAfter(f.otherwise(), e));
            }
            return e;
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

        private double dvalue(int id, long len) {
            Instr.Def d = defs.get(id);
            if (d != null && d.op() instanceof Op.Const c && c.value() instanceof Double x) return x;
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
                case Op.SetOp o -> switch (o.fn()) {
                    case UNION -> setSize(o.a(), len) + setSize(o.b(), len);
                    case DIFF -> setSize(o.a(), len);
                    case INTER -> Math.min(setSize(o.a(), len), setSize(o.b(), len));
                };
                case Op.Compensation c -> 1;
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
            if (d != null && d.op() instanceof Op.All) return len;
            if (d != null && d.op() instanceof Op.SetOp o && o.fn() == Op.SetFn.DIFF) return Math.max(0, setMin(o.a(), len) - setSize(o.b(), len));
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
