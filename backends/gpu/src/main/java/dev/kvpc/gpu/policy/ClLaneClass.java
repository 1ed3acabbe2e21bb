package dev.kvpc.gpu.policy;

import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.gpu.emit.CEmitter;
import dev.kvpc.gpu.emit.Dialect;
import dev.kvpc.gpu.kir.KirText;
import dev.kvpc.ir.Axis;
import dev.kvpc.ir.Instr;
import dev.kvpc.ir.Op;
import dev.kvpc.ir.Ty;
import dev.kvpc.ir.loop.Loop;
import dev.kvpc.ir.loop.LoopLowering;
import dev.kvpc.runtime.policy.CompiledLaneClass;
import dev.kvpc.runtime.policy.LaneContext;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One lane class of a policy on an OpenCL device: its loop nests are kernels ({@link NestLowering}), one program for
 * the class; what lies between them (binding the runtime's buffers, set operations, rankings, effects, scalar
 * assignments, conditions) runs on the host through the event's {@link LaneContext}, the same calls the JVM
 * backend's code makes, so the rules stay the context's. Buffers live where they were last written and move only
 * when the other side reads them.
 */
public final class ClLaneClass implements CompiledLaneClass {
    private final String policy;
    private final ClContext cl;
    private final List<Loop.Kernel> kernels;
    private final String[] names;
    /** Per kernel: its nests by identity, and the buffers' shapes and element types. */
    private final List<Map<Loop.For, Launch>> nests = new ArrayList<>();
    private final List<Map<Integer, List<Loop.Dim>>> dims = new ArrayList<>();
    private final List<Map<Integer, Ty.Elem>> elems = new ArrayList<>();
    private final List<Map<Integer, List<Axis>>> axes = new ArrayList<>();
    private final String source;
    private long launches;

    private record Launch(NestLowering.Nest nest, ClContext.Kernel kernel) {}

    public ClLaneClass(Loop.Program program, ClContext cl, String prefix) {
        this.policy = program.policy();
        this.cl = cl;
        this.kernels = program.kernels();
        this.names = new String[kernels.size()];
        StringBuilder module = new StringBuilder();
        List<NestLowering.Nest> all = new ArrayList<>();
        List<Map<Loop.For, NestLowering.Nest>> byKernel = new ArrayList<>();
        for (int k = 0; k < kernels.size(); k++) {
            Loop.Kernel kernel = kernels.get(k);
            names[k] = kernel.name();
            Map<Integer, List<Loop.Dim>> d = new HashMap<>();
            Map<Integer, Ty.Elem> e = new HashMap<>();
            Map<Integer, List<Axis>> a = new HashMap<>();
            shapes(kernel.body(), d, e, a);
            dims.add(d);
            elems.add(e);
            axes.add(a);
            Map<Loop.For, NestLowering.Nest> found = new java.util.IdentityHashMap<>();
            collect(kernel.body(), d, e, found, prefix + "k" + k + "_", all);
            byKernel.add(found);
        }
        for (NestLowering.Nest n : all) module.append(n.text()).append('\n');
        this.source = all.isEmpty() ? "" : emit(policy, module.toString());
        ClContext.Program p = all.isEmpty() ? null : cl.build(source, "-cl-std=CL1.2", "policy " + policy);
        for (Map<Loop.For, NestLowering.Nest> found : byKernel) {
            Map<Loop.For, Launch> m = new java.util.IdentityHashMap<>();
            for (var en : found.entrySet()) m.put(en.getKey(), new Launch(en.getValue(), p.kernel(en.getValue().name())));
            nests.add(m);
        }
    }

    private static String emit(String policy, String module) {
        try {
            return CEmitter.emit(KirText.parse(module), Dialect.OPENCL);
        } catch (dev.kvpc.gpu.kir.KirException e) {
            // a lowering defect, not the user's: say where in the generated text
            throw new IllegalStateException("the kernel IR lowered from policy " + policy + " is invalid: " + e.getMessage() + "\n" + module, e);
        }
    }

    /** The OpenCL C of the class's nests. */
    public String source() {
        return source;
    }

    /** Kernel launches so far (nests and rankings). */
    public synchronized long launches() {
        return launches + (rank == null ? 0 : rank.launches());
    }

    private DeviceRank rank;

    private DeviceRank rank() {
        if (rank == null) rank = new DeviceRank(cl);
        return rank;
    }

    private static void collect(List<Loop.Stmt> body, Map<Integer, List<Loop.Dim>> d, Map<Integer, Ty.Elem> e, Map<Loop.For, NestLowering.Nest> found,
                                String prefix, List<NestLowering.Nest> all) {
        for (Loop.Stmt s : body) {
            switch (s) {
                case Loop.For f -> {
                    NestLowering.Nest n = NestLowering.lower(prefix + "n" + all.size(), f, d, e);
                    found.put(f, n);
                    all.add(n);
                }
                case Loop.If i -> {
                    collect(i.then(), d, e, found, prefix, all);
                    collect(i.otherwise(), d, e, found, prefix, all);
                }
                default -> {
                }
            }
        }
    }

    private static void shapes(List<Loop.Stmt> body, Map<Integer, List<Loop.Dim>> dims, Map<Integer, Ty.Elem> elems, Map<Integer, List<Axis>> axes) {
        for (Loop.Stmt s : body) {
            switch (s) {
                case Loop.Alloc a -> {
                    dims.put(a.id(), a.dims());
                    elems.put(a.id(), a.elem());
                    List<Axis> ax = new ArrayList<>();
                    for (Loop.Dim d : a.dims()) {
                        Axis x = axisOf(d);
                        if (x == null) throw new IllegalArgumentException("buffer %" + a.id() + " has a constant extent " + d.show());
                        ax.add(x);
                    }
                    axes.put(a.id(), ax);
                }
                case Loop.Bind b -> typed(b.id(), b.type(), dims, elems, axes);
                case Loop.SetPrim p -> typed(p.id(), p.type(), dims, elems, axes);
                case Loop.For f -> shapes(f.body(), dims, elems, axes);
                case Loop.If i -> {
                    shapes(i.then(), dims, elems, axes);
                    shapes(i.otherwise(), dims, elems, axes);
                }
                default -> {
                }
            }
        }
    }

    private static void typed(int id, Ty t, Map<Integer, List<Loop.Dim>> dims, Map<Integer, Ty.Elem> elems, Map<Integer, List<Axis>> axes) {
        if (t instanceof Ty.Tensor tt) {
            axes.put(id, tt.axes());
            elems.put(id, tt.elem());
            List<Loop.Dim> ds = new ArrayList<>();
            for (Axis a : tt.axes()) ds.add(LoopLowering.dim(a));
            dims.put(id, ds);
        }
    }

    static Axis axisOf(Loop.Dim d) {
        if (d.symbol() == null) return null;
        for (Axis a : Axis.values()) if (LoopLowering.dim(a).symbol().equals(d.symbol())) return a;
        return null;
    }

    @Override
    public String policy() {
        return policy;
    }

    @Override
    public String[] kernels() {
        return names.clone();
    }

    @Override
    public synchronized double[] run(int kernel, LaneContext ctx) {
        Frame f = new Frame(kernel, ctx);
        try {
            f.block(kernels.get(kernel).body());
            int r = kernels.get(kernel).result();
            return r < 0 ? null : f.host(r);
        } finally {
            f.free();
        }
    }

    /** A buffer of one run: its host array and device copy, and which is current. */
    private static final class Buf {
        double[] host;
        ClContext.Buffer device;
        boolean hostCurrent = true, deviceCurrent;
        int epoch;
    }

    /** One run of a kernel. */
    private final class Frame {
        final int k;
        final LaneContext ctx;
        final Map<Integer, Buf> bufs = new LinkedHashMap<>();
        final Map<Integer, Object> sets = new HashMap<>();

        Frame(int k, LaneContext ctx) {
            this.k = k;
            this.ctx = ctx;
        }

        void free() {
            for (Buf b : bufs.values()) if (b.device != null) b.device.free();
        }

        int extent(Loop.Dim d) {
            if (d.symbol() == null) return (int) d.value();
            Axis a = axisOf(d);
            if (a == null) throw new IllegalStateException("extent " + d.symbol() + " is no axis's length");
            return ctx.extent(a);
        }

        int mask(int id) {
            return Axis.mask(axes.get(k).get(id));
        }

        boolean overTokens(int id) {
            List<Axis> ax = axes.get(k).get(id);
            return ax != null && ax.contains(Axis.TOKEN);
        }

        /** Defines buffer {@code id} as {@code values} on the host. */
        void define(int id, double[] values) {
            Buf b = bufs.get(id);
            if (b == null) bufs.put(id, b = new Buf());
            if (b.device != null && b.device.bytes() < 8L * Math.max(1, values.length)) {
                b.device.free();
                b.device = null;
            }
            b.host = values;
            b.hostCurrent = true;
            b.deviceCurrent = false;
            b.epoch = ctx.epoch();
        }

        double[] host(int id) {
            Buf b = bufs.get(id);
            if (b == null) throw new IllegalStateException("%" + id + " is read before it is defined");
            if (!b.hostCurrent) {
                b.device.read(b.host);
                b.hostCurrent = true;
            }
            return b.host;
        }

        /** The device copy of {@code id}, current. */
        ClContext.Buffer device(int id) {
            Buf b = bufs.get(id);
            if (b == null) throw new IllegalStateException("%" + id + " is read before it is defined");
            if (b.device == null) b.device = cl.buffer(8L * Math.max(1, b.host.length), "policy buffer %" + id);
            if (!b.deviceCurrent) {
                if (b.host.length > 0) b.device.write(b.host);
                b.deviceCurrent = true;
            }
            return b.device;
        }

        double scalar(int id) {
            return host(id)[0];
        }

        long scalarLong(int id) {
            return (long) scalar(id);
        }

        Object set(int id) {
            Object s = sets.get(id);
            if (s == null) throw new IllegalStateException("%" + id + " is not a set");
            return s;
        }

        void block(List<Loop.Stmt> body) {
            for (Loop.Stmt s : body) stmt(s);
        }

        void stmt(Loop.Stmt s) {
            switch (s) {
                case Loop.Alloc a -> {
                    int n = 1;
                    for (Loop.Dim d : a.dims()) n *= extent(d);
                    define(a.id(), new double[n]);
                }
                case Loop.Bind b -> define(b.id(), bind(b));
                case Loop.For f -> launch(nests.get(k).get(f));
                case Loop.Assign a -> {
                    double v = eval(a.value());
                    if (elems.get(k).get(a.buf()) == Ty.Elem.INT && a.value() instanceof Loop.Bin b && b.fn() != Op.Fn2.DIV) v = (double) (long) v;
                    host(a.buf())[index(a.buf(), a.index())] = v;
                    written(a.buf());
                }
                case Loop.Accumulate a -> {
                    double[] h = host(a.buf());
                    int i = index(a.buf(), a.index());
                    double v = eval(a.value());
                    h[i] = switch (a.op()) {
                        case SUM -> h[i] + v;
                        case MAX -> Math.max(h[i], v);
                        case MIN -> Math.min(h[i], v);
                        default -> throw new IllegalStateException("accumulation by " + a.op());
                    };
                    written(a.buf());
                }
                case Loop.SetPrim p -> setPrim(p);
                case Loop.Effect e -> effect(e.effect());
                case Loop.If i -> {
                    // as the JVM's dcmpl and ifeq: NaN takes the then branch
                    double c = eval(i.cond());
                    if (c != 0 || Double.isNaN(c)) block(i.then());
                    else block(i.otherwise());
                }
            }
        }

        void written(int id) {
            bufs.get(id).deviceCurrent = false;
        }

        void launch(Launch l) {
            NestLowering.Nest n = l.nest();
            ClContext.Kernel kernel = l.kernel();
            int arg = 0;
            for (int b : n.buffers()) kernel.arg(arg++, device(b));
            for (String x : n.extents()) kernel.arg(arg++, extent(Loop.Dim.sym(x)));
            long items = 1;
            if (n.split()) {
                int lo = (int) eval(n.parallel().from()), hi = (int) eval(n.parallel().to());
                items = Math.max(0, (long) hi - lo);
                kernel.arg(arg++, lo);
                kernel.arg(arg, (int) items);
            }
            if (items > 0) {
                kernel.launch(new long[] {items}, null);
                launches++;
            }
            for (int b : n.written()) {
                Buf buf = bufs.get(b);
                buf.hostCurrent = false;
                buf.deviceCurrent = true;
            }
        }

        int index(int id, List<Loop.Expr> index) {
            List<Loop.Dim> ds = dims.get(k).get(id);
            if (index.isEmpty()) return 0;
            int i = (int) eval(index.getFirst());
            for (int j = 1; j < index.size(); j++) i = i * extent(ds.get(j)) + (int) eval(index.get(j));
            return i;
        }

        /** A host-side expression (outside every loop: no loop variables): the IR's functions' own {@code apply}. */
        double eval(Loop.Expr e) {
            return switch (e) {
                case Loop.Const c -> switch (c.value()) {
                    case Long l -> (double) l;
                    case Double d -> d;
                    case Integer i -> (double) i;
                    case Boolean b -> b ? 1.0 : 0.0;
                    default -> throw new IllegalArgumentException("constant " + c.value());
                };
                case Loop.Var v -> throw new IllegalStateException("loop variable " + v.name() + " outside its loop");
                case Loop.Extent x -> extent(x.dim());
                case Loop.Load l -> host(l.buf())[index(l.buf(), l.index())];
                case Loop.Un u -> u.fn().apply(eval(u.x()));
                case Loop.Bin b -> b.fn().apply(eval(b.a()), eval(b.b()));
                case Loop.Choose c -> {
                    double t = eval(c.cond());
                    yield t != 0 || Double.isNaN(t) ? eval(c.a()) : eval(c.b());
                }
            };
        }

        double[] bind(Loop.Bind b) {
            int ax = mask(b.id());
            return switch (b.source()) {
                case Op.Signal s -> ctx.signal(s.signal(), ax);
                case Op.StateRead s -> ctx.state(s.name(), ax);
                case Op.KernelStat ks -> ctx.kernelStat(ks.input(), ks.fn(), Axis.mask(ks.over()), ax);
                case Op.ModelStat m -> ctx.modelStat(m.stat(), m.state(), ax);
                case Op.Vector v -> {
                    double[] out = new double[v.size()];
                    for (int i = 0; i < out.length; i++) out[i] = v.at(i);
                    yield out;
                }
                default -> throw new IllegalStateException(b.kind() + " " + b.what() + " was not specialised away before compilation");
            };
        }

        void setPrim(Loop.SetPrim p) {
            int id = p.id();
            boolean isSet = p.type() instanceof Ty.SetTy;
            Object set = null;
            double[] values = null;
            switch (p.op()) {
                case Op.Rank r -> {
                    Axis domain = ((Ty.SetTy) p.type()).domain();
                    set = onDevice(r, domain) ? deviceRank(r, domain)
                            : ctx.rank(host(r.score()), mask(r.score()), r.order() == Op.Order.TOP, scalarLong(r.count()),
                            r.floor() >= 0 ? scalarLong(r.floor()) : -1, domain, r.algorithm());
                }
                case Op.Range r -> set = ctx.range(r.end() == Op.End.LAST, scalarLong(r.count()));
                case Op.All a -> set = ctx.all();
                case Op.Compensation c -> set = ctx.compensation();
                case Op.Where w -> set = ctx.where(host(w.pred()), mask(w.pred()));
                case Op.Pages pg -> set = ctx.pages(set(pg.pages()));
                case Op.SetOp s -> set = ctx.setOp(s.fn(), set(s.a()), set(s.b()));
                case Op.Within w -> {
                    if (sets.containsKey(w.x())) set = ctx.withinSet(set(w.x()), set(w.set()));
                    else values = ctx.within(host(w.x()), mask(w.x()), set(w.set()));
                }
                case Op.Quantile q when !q.over().isEmpty() -> values = ctx.quantileAlong(host(q.x()), mask(q.x()), Axis.mask(q.over()), scalar(q.p()));
                case Op.Quantile q -> values = new double[] {ctx.quantile(host(q.x()), mask(q.x()), scalar(q.p()))};
                case Op.Prim pr -> {
                    int vals = pr.operand(Op.Operand.VALUES, 0), first = pr.operand(Op.Operand.SET, 0), rows = pr.operand(Op.Operand.SET, 1);
                    int scalar = pr.operand(Op.Operand.SCALAR, 0);
                    double[] v = vals >= 0 ? host(vals) : null;
                    int va = vals >= 0 ? mask(vals) : 0;
                    double arg = scalar >= 0 ? scalar(scalar) : 0;
                    if (pr.fn().setResult()) set = ctx.primSet(pr.fn(), v, va, arg);
                    else values = ctx.prim(pr.fn(), v, va, first >= 0 ? set(first) : null, rows >= 0 ? set(rows) : null, arg, mask(id));
                }
                case Op.Choose c -> {
                    double t = scalar(c.cond());
                    int pick = t != 0 || Double.isNaN(t) ? c.a() : c.b();
                    if (isSet) set = set(pick);
                    // a copy: this id's device copy and the chosen one's are kept apart (the loop IR writes neither)
                    else values = host(pick).clone();
                }
                default -> throw new UnsupportedOperationException("operation " + p.op() + " is not compiled for policies");
            }
            if (isSet) sets.put(id, set);
            else define(id, values);
        }

        /**
         * Whether {@link DeviceRank} ranks this: entries (pages rank on the host: {@code where} makes token sets), no
         * per-head floor, a score over entries (and heads) alone.
         */
        boolean onDevice(Op.Rank r, Axis domain) {
            List<Axis> ax = axes.get(k).get(r.score());
            return domain == Axis.TOKEN && r.floor() < 0 && ax != null && ax.contains(domain) && ax.stream().allMatch(a -> a == domain || a == Axis.HEAD);
        }

        /**
         * A ranking on the device: the score with the compensation entry made NaN (by the context's own
         * {@code within}: it never ranks), sorted and marked there, the marks read back as the set {@code where} makes.
         */
        Object deviceRank(Op.Rank r, Axis domain) {
            int score = r.score(), m = mask(score);
            List<Axis> ax = axes.get(k).get(score);
            int heads = ax.contains(Axis.HEAD) ? ctx.extent(Axis.HEAD) : 1, len = ctx.extent(domain);
            double[] candidates = ctx.within(host(score), m, ctx.setOp(Op.SetFn.DIFF, ctx.all(), ctx.compensation()));
            ClContext.Buffer values = cl.buffer(8L * Math.max(1, candidates.length), "ranking candidates");
            if (candidates.length > 0) values.write(candidates);
            double[] chosen = new double[heads * len];
            ClContext.Buffer marks = cl.buffer(8L * Math.max(1, chosen.length), "ranking marks");
            try {
                if (chosen.length > 0) {
                    marks.write(chosen);
                    int offered = 0;
                    for (double v : candidates) if (!Double.isNaN(v)) offered++;
                    rank().rank(cl, values, heads, len, r.order() == Op.Order.TOP, scalarLong(r.count()), marks, offered);
                    marks.read(chosen);
                }
            } finally {
                marks.free();
                values.free();
            }
            return ctx.where(chosen, m);
        }

        void effect(Instr i) {
            switch (i) {
                case Instr.Keep x -> ctx.keep(set(x.set()));
                case Instr.Evict x -> ctx.evict(set(x.set()));
                case Instr.Attend x -> ctx.attend(set(x.set()));
                case Instr.Merge m -> ctx.merge(set(m.source()), set(m.dest()), m.by(), m.weight() >= 0 ? host(m.weight()) : null, m.weight() >= 0 ? mask(m.weight()) : 0);
                case Instr.Store s -> ctx.store(s.parts().contains(Instr.Part.KEYS), s.parts().contains(Instr.Part.VALUES), s.format(),
                        s.bits() >= 0 ? scalarLong(s.bits()) : -1, s.axis(), s.group() >= 0 ? scalarLong(s.group()) : -1, s.scope(),
                        s.set() >= 0 ? set(s.set()) : null);
                case Instr.StateWrite w -> ctx.writeState(w.state(), w.op(), host(w.value()), mask(w.value()));
                default -> throw new UnsupportedOperationException("effect " + i);
            }
            if (i instanceof Instr.Keep || i instanceof Instr.Evict || i instanceof Instr.Merge) rebase();
        }

        /** Every buffer over tokens re-indexed to the entries now (entries that left dropped, arrivals NaN). */
        void rebase() {
            int now = ctx.epoch();
            for (var e : bufs.entrySet()) {
                Buf b = e.getValue();
                if (!overTokens(e.getKey()) || b.epoch == now) continue;
                double[] v = ctx.rebase(host(e.getKey()), mask(e.getKey()), b.epoch);
                define(e.getKey(), v);
            }
        }
    }
}
