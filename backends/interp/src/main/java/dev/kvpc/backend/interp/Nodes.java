package dev.kvpc.backend.interp;

import com.oracle.truffle.api.frame.FrameDescriptor;
import com.oracle.truffle.api.frame.FrameSlotKind;
import com.oracle.truffle.api.frame.VirtualFrame;
import com.oracle.truffle.api.nodes.ExplodeLoop;
import com.oracle.truffle.api.nodes.Node;
import com.oracle.truffle.api.nodes.RootNode;
import dev.kvpc.ir.*;

import java.util.ArrayList;
import java.util.List;

/**
 * The Truffle node tree the reference interpreter executes: a statement node per IR instruction, a node per
 * operation for each definition ({@link OpNodes}), values in frame slots indexed by value id, the event's
 * {@link ExecContext} as the frame's argument. Each node does exactly what the IR says, by the rules it shares
 * with compiled code, so the tree is the definition of meaning.
 */
final class Nodes {
    private Nodes() {}

    static ExecContext ctx(VirtualFrame f) {
        return (ExecContext) f.getArguments()[0];
    }

    abstract static class StmtNode extends Node {
        abstract void execute(VirtualFrame f);
    }

    /** {@code %id = op}: the op's node ({@link OpNodes}), its value stamped with the entries it indexes. */
    static final class DefNode extends StmtNode {
        private final int id;
        @Child private OpNodes.ValueNode value;

        DefNode(Instr.Def d) {
            this.id = d.id();
            this.value = OpNodes.of(d);
        }

        @Override
        void execute(VirtualFrame f) {
            f.setObject(id, ctx(f).stamp(value.execute(f)));
        }
    }

    static final class KeepNode extends StmtNode {
        @Child private OpNodes.ValueNode set;
        private final boolean evict;

        KeepNode(int set, boolean evict) {
            this.set = new OpNodes.Read(set);
            this.evict = evict;
        }

        @Override
        void execute(VirtualFrame f) {
            TokenSet s = (TokenSet) set.execute(f);
            if (evict) ctx(f).evict(s);
            else ctx(f).keep(s);
        }
    }

    static final class AttendNode extends StmtNode {
        @Child private OpNodes.ValueNode set;

        AttendNode(int set) {
            this.set = new OpNodes.Read(set);
        }

        @Override
        void execute(VirtualFrame f) {
            ctx(f).attend((TokenSet) set.execute(f));
        }
    }

    static final class MergeNode extends StmtNode {
        private final Instr.MergeBy by;
        @Child private OpNodes.ValueNode source;
        @Child private OpNodes.ValueNode dest;
        @Child private OpNodes.ValueNode weight;

        MergeNode(Instr.Merge m) {
            this.by = m.by();
            this.source = new OpNodes.Read(m.source());
            this.dest = new OpNodes.Read(m.dest());
            this.weight = m.weight() < 0 ? null : new OpNodes.Read(m.weight());
        }

        @Override
        void execute(VirtualFrame f) {
            TokenSet s = (TokenSet) source.execute(f), d = (TokenSet) dest.execute(f);
            ctx(f).merge(s, d, by, weight == null ? null : (Tensor) weight.execute(f));
        }
    }

    static final class StoreNode extends StmtNode {
        private final Instr.Store s;
        @Child private OpNodes.ValueNode set;

        StoreNode(Instr.Store s) {
            this.s = s;
            this.set = s.set() < 0 ? null : new OpNodes.Read(s.set());
        }

        @Override
        void execute(VirtualFrame f) {
            int bits = s.bits() < 0 ? -1 : (int) ((Tensor) f.getObject(s.bits())).scalar();
            int group = s.group() < 0 ? -1 : (int) ((Tensor) f.getObject(s.group())).scalar();
            ctx(f).store(s.parts(), s.format(), bits, s.axis(), group, s.scope(), set == null ? null : (TokenSet) set.execute(f));
        }
    }

    static final class StateWriteNode extends StmtNode {
        private final Instr.StateWrite w;
        @Child private OpNodes.ValueNode value;

        StateWriteNode(Instr.StateWrite w) {
            this.w = w;
            this.value = new OpNodes.Read(w.value());
        }

        @Override
        void execute(VirtualFrame f) {
            ctx(f).writeState(w.state(), w.op(), (Tensor) value.execute(f));
        }
    }

    static final class IfNode extends StmtNode {
        private final int cond;
        @Child private BlockNode then;
        @Child private BlockNode otherwise;

        IfNode(Instr.If i) {
            this.cond = i.cond();
            this.then = new BlockNode(i.then());
            this.otherwise = new BlockNode(i.otherwise());
        }

        @Override
        void execute(VirtualFrame f) {
            Tensor c = (Tensor) f.getObject(cond);
            if (c.scalar() != 0) then.execute(f);
            else otherwise.execute(f);
        }
    }

    static final class BlockNode extends StmtNode {
        @Children private final StmtNode[] body;

        BlockNode(Block b) {
            List<StmtNode> out = new ArrayList<>();
            for (Instr i : b.instrs()) {
                out.add(switch (i) {
                    case Instr.Def d -> new DefNode(d);
                    case Instr.Keep k -> new KeepNode(k.set(), false);
                    case Instr.Evict e -> new KeepNode(e.set(), true);
                    case Instr.Attend a -> new AttendNode(a.set());
                    case Instr.Merge m -> new MergeNode(m);
                    case Instr.Store s -> new StoreNode(s);
                    case Instr.StateWrite w -> new StateWriteNode(w);
                    case Instr.If x -> new IfNode(x);
                });
            }
            this.body = out.toArray(StmtNode[]::new);
        }

        @Override
        @ExplodeLoop
        void execute(VirtualFrame f) {
            for (StmtNode n : body) n.execute(f);
        }
    }

    /** A block run as a Truffle call target; returns the value of {@code result} (or null). */
    static final class BlockRoot extends RootNode {
        @Child private BlockNode body;
        private final int result;

        BlockRoot(Block b, int result, int slots) {
            super(null, frame(slots));
            this.body = new BlockNode(b);
            this.result = result;
        }

        private static FrameDescriptor frame(int slots) {
            FrameDescriptor.Builder b = FrameDescriptor.newBuilder();
            b.addSlots(Math.max(1, slots), FrameSlotKind.Object);
            return b.build();
        }

        @Override
        public Object execute(VirtualFrame f) {
            body.execute(f);
            return result < 0 ? null : f.getObject(result);
        }
    }
}
