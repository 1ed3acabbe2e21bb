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
import java.util.Set;

/**
 * The Truffle node tree the reference interpreter executes: one node per IR instruction, values in frame slots
 * indexed by value id, the event's {@link ExecContext} as the frame's argument. Nodes are deliberately plain:
 * each does exactly what the IR says through {@link Semantics}, so the tree is the definition of meaning.
 */
final class Nodes {
    private Nodes() {}

    static ExecContext ctx(VirtualFrame f) {
        return (ExecContext) f.getArguments()[0];
    }

    abstract static class StmtNode extends Node {
        abstract void execute(VirtualFrame f);
    }

    static final class DefNode extends StmtNode {
        private final int id;
        private final Ty type;
        private final Op op;

        DefNode(Instr.Def d) {
            this.id = d.id();
            this.type = d.type();
            this.op = d.op();
        }

        @Override
        void execute(VirtualFrame f) {
            List<Integer> ids = op.operands();
            Object[] args = new Object[ids.size()];
            ExecContext c = ctx(f);
            for (int i = 0; i < args.length; i++) args[i] = c.rebase(f.getObject(ids.get(i)));
            f.setObject(id, c.stamp(Semantics.eval(op, type, args, c)));
        }
    }

    static final class KeepNode extends StmtNode {
        private final int set;
        private final boolean evict;

        KeepNode(int set, boolean evict) {
            this.set = set;
            this.evict = evict;
        }

        @Override
        void execute(VirtualFrame f) {
            TokenSet s = (TokenSet) ctx(f).rebase(f.getObject(set));
            if (evict) ctx(f).evict(s);
            else ctx(f).keep(s);
        }
    }

    static final class AttendNode extends StmtNode {
        private final int set;

        AttendNode(int set) {
            this.set = set;
        }

        @Override
        void execute(VirtualFrame f) {
            ctx(f).attend((TokenSet) ctx(f).rebase(f.getObject(set)));
        }
    }

    static final class MergeNode extends StmtNode {
        private final Instr.Merge m;

        MergeNode(Instr.Merge m) {
            this.m = m;
        }

        @Override
        void execute(VirtualFrame f) {
            ExecContext c = ctx(f);
            c.merge((TokenSet) c.rebase(f.getObject(m.source())), (TokenSet) c.rebase(f.getObject(m.dest())), m.by(),
                    m.weight() < 0 ? null : (Tensor) c.rebase(f.getObject(m.weight())));
        }
    }

    static final class StoreNode extends StmtNode {
        private final Instr.Store s;

        StoreNode(Instr.Store s) {
            this.s = s;
        }

        @Override
        void execute(VirtualFrame f) {
            ExecContext c = ctx(f);
            int bits = s.bits() < 0 ? -1 : (int) ((Tensor) f.getObject(s.bits())).scalar();
            int group = s.group() < 0 ? -1 : (int) ((Tensor) f.getObject(s.group())).scalar();
            TokenSet all = c.all();
            TokenSet covered = switch (s.scope()) {
                case ALL -> all;
                case FOR -> (TokenSet) c.rebase(f.getObject(s.set()));
                case EXCEPT -> TokenSet.combine(all, (TokenSet) c.rebase(f.getObject(s.set())), (a, b) -> {
                    a.andNot(b);
                    return a;
                }, false);
                case OTHERWISE -> c.lastStoreScope == null ? all : TokenSet.combine(all, (TokenSet) c.rebase(c.lastStoreScope), (a, b) -> {
                    a.andNot(b);
                    return a;
                }, false);
            };
            if (s.scope() != Instr.Scope.OTHERWISE) c.lastStoreScope = (TokenSet) c.stamp(covered);
            c.store(s.parts(), s.format(), bits, s.axis(), group, covered);
        }
    }

    static final class StateWriteNode extends StmtNode {
        private final Instr.StateWrite w;

        StateWriteNode(Instr.StateWrite w) {
            this.w = w;
        }

        @Override
        void execute(VirtualFrame f) {
            ctx(f).writeState(w.state(), w.op(), (Tensor) ctx(f).rebase(f.getObject(w.value())));
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

    static final Set<String> ROW_SIGNALS = Set.of("attn", "logits");
}
