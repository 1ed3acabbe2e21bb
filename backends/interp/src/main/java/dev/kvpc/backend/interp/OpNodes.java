package dev.kvpc.backend.interp;

import com.oracle.truffle.api.dsl.Fallback;
import com.oracle.truffle.api.dsl.Introspectable;
import com.oracle.truffle.api.dsl.NodeChild;
import com.oracle.truffle.api.dsl.Specialization;
import com.oracle.truffle.api.frame.VirtualFrame;
import com.oracle.truffle.api.nodes.Node;
import dev.kvpc.ir.Axis;
import dev.kvpc.ir.Instr;
import dev.kvpc.ir.Op;
import dev.kvpc.ir.Signal;
import dev.kvpc.ir.Ty;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One Truffle node per IR operation. Operands are child nodes ({@link Read}: a value by id, re-indexed to the lane's
 * entries now); each node specialises on the kinds and shapes it meets (a scalar, values over the same axes, a set
 * or a tensor) through the Truffle DSL, and every specialisation computes by the same rule ({@link Semantics} and the
 * IR's own functions), so the fast paths and the general one agree bit for bit. {@link #of} builds the node of a
 * definition.
 */
final class OpNodes {
    private OpNodes() {}

    /** A value-producing node; the guards its specialisations share. */
    abstract static class ValueNode extends Node {
        abstract Object execute(VirtualFrame f);

        static boolean scalar(Tensor t) {
            return t.axes.isEmpty();
        }

        static boolean allScalar(Tensor a, Tensor b, Tensor c) {
            return scalar(a) && scalar(b) && scalar(c);
        }

        static boolean sameShape(Tensor a, Tensor b) {
            return a.axes.equals(b.axes) && Arrays.equals(a.dims, b.dims);
        }
    }

    /** Operand {@code %slot}: its value in the frame, re-indexed to the entries the lane holds now. */
    static final class Read extends ValueNode {
        private final int slot;

        Read(int slot) {
            this.slot = slot;
        }

        @Override
        Object execute(VirtualFrame f) {
            return Nodes.ctx(f).rebase(f.getObject(slot));
        }
    }

    /** The node that computes definition {@code d}. */
    static ValueNode of(Instr.Def d) {
        Ty type = d.type();
        return switch (d.op()) {
            case Op.Const k -> new Constant(Tensor.scalar(((Ty.Tensor) type).elem(), Interpreter.toDouble(k.value())));
            case Op.Param p -> new Fail("parameter " + p.name() + " was not specialised");
            case Op.Table t -> new Fail("table " + t.file() + " was not specialised");
            case Op.Vector v -> new Constant(new Tensor(Ty.Elem.FLOAT, ((Ty.Tensor) type).axes(), v.dims(), v.values()));
            case Op.Slope s -> new Fail("slope outside an attention variant");
            case Op.Signal s -> new SignalNode(s.signal());
            case Op.StateRead s -> new StateRead(s.name());
            case Op.ModelStat m -> new ModelStat(m.stat(), m.state());
            case Op.Map1 m -> OpNodesFactory.Map1NodeGen.create(m.fn(), elem(type), read(m.x()));
            case Op.Map2 m -> OpNodesFactory.Map2NodeGen.create(m.fn(), elem(type), read(m.a()), read(m.b()));
            case Op.Choose c -> OpNodesFactory.ChooseNodeGen.create(elem(type), read(c.cond()), read(c.a()), read(c.b()));
            case Op.Reduce r -> OpNodesFactory.ReduceNodeGen.create(r.fn(), r.over(), elem(type), read(r.x()));
            case Op.KernelStat k -> OpNodesFactory.ReduceNodeGen.create(k.fn(), k.over(), elem(type), new SignalNode(k.input()));
            case Op.Pool p -> OpNodesFactory.PoolNodeGen.create(p.fn(), p.along(), read(p.x()), read(p.kernel()));
            case Op.Quantile q -> {
                if (!q.over().isEmpty()) yield OpNodesFactory.QuantileAlongNodeGen.create(q.over(), read(q.x()), read(q.p()));
                yield OpNodesFactory.QuantileNodeGen.create(read(q.x()), read(q.p()));
            }
            case Op.Dot x -> OpNodesFactory.DotNodeGen.create(read(x.a()), read(x.b()));
            case Op.Rank r -> OpNodesFactory.RankNodeGen.create(r.order() == Op.Order.TOP, ((Ty.SetTy) type).domain(), read(r.score()), read(r.count()),
                    r.floor() >= 0 ? read(r.floor()) : new Constant(Tensor.scalar(Ty.Elem.INT, -1)));
            case Op.Range r -> OpNodesFactory.RangeNodeGen.create(r.end(), read(r.count()));
            case Op.All x -> new All();
            case Op.Compensation x -> new Compensation();
            case Op.Where w -> OpNodesFactory.WhereNodeGen.create(read(w.pred()));
            case Op.Pages p -> OpNodesFactory.PagesNodeGen.create(read(p.pages()));
            case Op.SetOp s -> OpNodesFactory.SetOpNodeGen.create(s.fn(), read(s.a()), read(s.b()));
            case Op.Within w -> OpNodesFactory.WithinNodeGen.create(read(w.x()), read(w.set()));
            case Op.Prim p -> new PrimNode(p.fn(), type, reads(p.args()));
        };
    }

    private static Read read(int id) {
        return new Read(id);
    }

    /** The element kind of a numeric value (null for a set: a choice between sets has none). */
    private static Ty.Elem elem(Ty t) {
        return t instanceof Ty.Tensor x ? x.elem() : null;
    }

    // ------------------------------------------------------------------------------------------ leaves

    /** A value given when the tree is built: a constant, or (in tests) any operand. */
    static final class Constant extends ValueNode {
        private final Object value;

        Constant(Object value) {
            this.value = value;
        }

        @Override
        Object execute(VirtualFrame f) {
            return value;
        }
    }

    /** An op specialisation removed before interpretation: reaching it is an error. */
    static final class Fail extends ValueNode {
        private final String message;

        Fail(String message) {
            this.message = message;
        }

        @Override
        Object execute(VirtualFrame f) {
            throw new InterpreterException(message);
        }
    }

    static final class SignalNode extends ValueNode {
        private final Signal name;

        SignalNode(Signal name) {
            this.name = name;
        }

        @Override
        Object execute(VirtualFrame f) {
            return Nodes.ctx(f).signal(name);
        }
    }

    static final class StateRead extends ValueNode {
        private final String name;

        StateRead(String name) {
            this.name = name;
        }

        @Override
        Object execute(VirtualFrame f) {
            return Nodes.ctx(f).readState(name);
        }
    }

    static final class ModelStat extends ValueNode {
        private final Op.CellStat stat;
        private final String name;

        ModelStat(Op.CellStat stat, String name) {
            this.stat = stat;
            this.name = name;
        }

        @Override
        Object execute(VirtualFrame f) {
            return Nodes.ctx(f).modelStat(stat, name);
        }
    }

    static final class All extends ValueNode {
        @Override
        Object execute(VirtualFrame f) {
            return Nodes.ctx(f).all();
        }
    }

    static final class Compensation extends ValueNode {
        @Override
        Object execute(VirtualFrame f) {
            return Nodes.ctx(f).compensation();
        }
    }

    // ------------------------------------------------------------------------------------------ numbers

    @Introspectable
    @NodeChild(value = "x", type = ValueNode.class)
    abstract static class Map1Node extends ValueNode {
        final Op.Fn1 fn;
        final Ty.Elem elem;

        Map1Node(Op.Fn1 fn, Ty.Elem elem) {
            this.fn = fn;
            this.elem = elem;
        }

        @Specialization(guards = "scalar(x)")
        Tensor one(Tensor x) {
            return Tensor.scalar(elem, fn.apply(x.data[0]));
        }

        @Specialization(guards = "!scalar(x)")
        Tensor each(Tensor x) {
            return Tensor.map1(x, elem, fn::apply);
        }
    }

    @Introspectable
    @NodeChild(value = "a", type = ValueNode.class)
    @NodeChild(value = "b", type = ValueNode.class)
    abstract static class Map2Node extends ValueNode {
        final Op.Fn2 fn;
        final Ty.Elem elem;

        Map2Node(Op.Fn2 fn, Ty.Elem elem) {
            this.fn = fn;
            this.elem = elem;
        }

        @Specialization(guards = {"scalar(a)", "scalar(b)"})
        Tensor scalars(Tensor a, Tensor b) {
            return Tensor.scalar(elem, Semantics.map2(fn, elem, a.data[0], b.data[0]));
        }

        /** Two values over the same axes: element by element, no index arithmetic. */
        @Specialization(guards = {"!scalar(a)", "sameShape(a, b)"})
        Tensor aligned(Tensor a, Tensor b) {
            double[] out = new double[a.data.length];
            for (int i = 0; i < out.length; i++) out[i] = Semantics.map2(fn, elem, a.data[i], b.data[i]);
            return new Tensor(elem, a.axes, a.dims.clone(), out);
        }

        /** A value and a scalar ({@code x * 2}). */
        @Specialization(guards = {"!scalar(a)", "scalar(b)"})
        Tensor byScalar(Tensor a, Tensor b) {
            double y = b.data[0];
            double[] out = new double[a.data.length];
            for (int i = 0; i < out.length; i++) out[i] = Semantics.map2(fn, elem, a.data[i], y);
            return new Tensor(elem, a.axes, a.dims.clone(), out);
        }

        /** Any other pair: broadcast by axis name. */
        @Fallback
        Object broadcast(Object a, Object b) {
            return Tensor.map2((Tensor) a, (Tensor) b, elem, (x, y) -> Semantics.map2(fn, elem, x, y));
        }
    }

    @Introspectable
    @NodeChild(value = "cond", type = ValueNode.class)
    @NodeChild(value = "a", type = ValueNode.class)
    @NodeChild(value = "b", type = ValueNode.class)
    abstract static class ChooseNode extends ValueNode {
        final Ty.Elem elem;

        ChooseNode(Ty.Elem elem) {
            this.elem = elem;
        }

        @Specialization
        TokenSet sets(Tensor cond, TokenSet a, TokenSet b) {
            return cond.scalar() != 0 ? a : b;
        }

        @Specialization(guards = "allScalar(cond, a, b)")
        Tensor scalars(Tensor cond, Tensor a, Tensor b) {
            return Tensor.scalar(elem, cond.data[0] != 0 ? a.data[0] : b.data[0]);
        }

        @Specialization(guards = "!allScalar(cond, a, b)")
        Tensor values(Tensor cond, Tensor a, Tensor b) {
            return Tensor.mapN(elem, new Tensor[] {cond, a, b}, v -> v[0] != 0 ? v[1] : v[2]);
        }
    }

    /** A reduction, or a kernel statistic (the reduction of its signal). */
    @Introspectable
    @NodeChild(value = "x", type = ValueNode.class)
    abstract static class ReduceNode extends ValueNode {
        final Op.Red fn;
        final List<Axis> over;
        final Ty.Elem elem;

        ReduceNode(Op.Red fn, List<Axis> over, Ty.Elem elem) {
            this.fn = fn;
            this.over = over;
            this.elem = elem;
        }

        boolean whole(Tensor x) {
            return x.axes.size() == over.size() && over.containsAll(x.axes);
        }

        /** Over every axis the value has: one fold in the order of the values, as the general reduction folds them. */
        @Specialization(guards = "whole(x)")
        Tensor all(Tensor x) {
            return Tensor.scalar(elem, fn.all(x.data));
        }

        @Specialization(guards = "!whole(x)")
        Tensor some(Tensor x) {
            return Semantics.reduce(fn, x, over, elem);
        }
    }

    @NodeChild(value = "x", type = ValueNode.class)
    @NodeChild(value = "kernel", type = ValueNode.class)
    abstract static class PoolNode extends ValueNode {
        final Op.Red fn;
        final Axis along;

        PoolNode(Op.Red fn, Axis along) {
            this.fn = fn;
            this.along = along;
        }

        @Specialization
        Tensor pool(Tensor x, Tensor kernel) {
            return Semantics.pool(fn, x, (int) kernel.scalar(), along);
        }
    }

    @NodeChild(value = "x", type = ValueNode.class)
    @NodeChild(value = "p", type = ValueNode.class)
    abstract static class QuantileNode extends ValueNode {
        @Specialization
        Tensor quantile(Tensor x, Tensor p) {
            return Semantics.quantile(x, p.scalar());
        }
    }

    @NodeChild(value = "x", type = ValueNode.class)
    @NodeChild(value = "p", type = ValueNode.class)
    abstract static class QuantileAlongNode extends ValueNode {
        private final List<Axis> over;

        QuantileAlongNode(List<Axis> over) {
            this.over = over;
        }

        @Specialization
        Tensor quantile(Tensor x, Tensor p) {
            return Semantics.quantile(x, over, p.scalar());
        }
    }

    @NodeChild(value = "a", type = ValueNode.class)
    @NodeChild(value = "b", type = ValueNode.class)
    abstract static class DotNode extends ValueNode {
        @Specialization
        Tensor dot(Tensor a, Tensor b) {
            return Semantics.dot(a, b);
        }
    }

    // ------------------------------------------------------------------------------------------ sets

    @NodeChild(value = "score", type = ValueNode.class)
    @NodeChild(value = "count", type = ValueNode.class)
    @NodeChild(value = "floor", type = ValueNode.class)
    abstract static class RankNode extends ValueNode {
        final boolean top;
        final Axis domain;

        RankNode(boolean top, Axis domain) {
            this.top = top;
            this.domain = domain;
        }

        @Specialization
        TokenSet scores(VirtualFrame f, Tensor score, Tensor count, Tensor floor) {
            return Semantics.rank(top, score, (long) count.scalar(), (long) floor.scalar(), domain, Nodes.ctx(f));
        }

        @Specialization
        TokenSet set(TokenSet score, Tensor count, Tensor floor) {
            throw new InterpreterException("rank of a set");
        }
    }

    @NodeChild(value = "count", type = ValueNode.class)
    abstract static class RangeNode extends ValueNode {
        final Op.End end;

        RangeNode(Op.End end) {
            this.end = end;
        }

        @Specialization
        TokenSet range(VirtualFrame f, Tensor count) {
            return Nodes.ctx(f).range(end, (long) count.scalar());
        }
    }

    @NodeChild(value = "pred", type = ValueNode.class)
    abstract static class WhereNode extends ValueNode {
        @Specialization
        TokenSet where(Tensor pred) {
            return Semantics.where(pred);
        }
    }

    @NodeChild(value = "pages", type = ValueNode.class)
    abstract static class PagesNode extends ValueNode {
        @Specialization
        TokenSet pages(VirtualFrame f, TokenSet pages) {
            return Nodes.ctx(f).pages(pages);
        }
    }

    @NodeChild(value = "a", type = ValueNode.class)
    @NodeChild(value = "b", type = ValueNode.class)
    abstract static class SetOpNode extends ValueNode {
        final Op.SetFn fn;

        SetOpNode(Op.SetFn fn) {
            this.fn = fn;
        }

        @Specialization
        TokenSet sets(TokenSet a, TokenSet b) {
            return Semantics.setOp(fn, a, b);
        }
    }

    @Introspectable
    @NodeChild(value = "x", type = ValueNode.class)
    @NodeChild(value = "set", type = ValueNode.class)
    abstract static class WithinNode extends ValueNode {
        @Specialization
        TokenSet sets(TokenSet x, TokenSet set) {
            return Semantics.within(x, set);
        }

        @Specialization
        Tensor values(Tensor x, TokenSet set) {
            return Semantics.within(x, set);
        }
    }

    /** A primitive ({@link Op.PrimFn}): its operands, then the rule ({@link Semantics#prim}). */
    static final class PrimNode extends ValueNode {
        private final Op.PrimFn fn;
        private final Ty type;
        @Children private final ValueNode[] args;

        PrimNode(Op.PrimFn fn, Ty type, ValueNode[] args) {
            this.fn = fn;
            this.type = type;
            this.args = args;
        }

        @Override
        @com.oracle.truffle.api.nodes.ExplodeLoop
        Object execute(VirtualFrame f) {
            Object[] v = new Object[args.length];
            for (int i = 0; i < args.length; i++) v[i] = args[i].execute(f);
            return Semantics.prim(fn, v, type, Nodes.ctx(f));
        }
    }

    /** The operand ids a statement node reads, as {@link Read} nodes. */
    static ValueNode[] reads(List<Integer> ids) {
        List<ValueNode> out = new ArrayList<>();
        for (int id : ids) out.add(read(id));
        return out.toArray(ValueNode[]::new);
    }
}
