package dev.kvpc.backend.interp;

import com.oracle.truffle.api.dsl.Introspection;
import com.oracle.truffle.api.frame.VirtualFrame;
import com.oracle.truffle.api.nodes.Node;
import com.oracle.truffle.api.nodes.RootNode;
import dev.kvpc.ir.Axis;
import dev.kvpc.ir.Op;
import dev.kvpc.ir.Ty;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The operation nodes specialise on what they see, and each specialisation gives the bits the general rule gives:
 * each node is run on values that select a fast path, its result is compared with the general computation
 * (broadcasting {@link Tensor#map2}, {@link Semantics#reduce}, {@link Semantics#within} by slices), and
 * {@link Introspection} shows which specialisations the node took.
 */
class OpNodesTest {
    private static final Random RND = new Random(7);

    /** Runs a node whose operands are constants (no event context is needed). */
    private static Object run(OpNodes.ValueNode node) {
        RootNode root = new RootNode(null) {
            @Child private OpNodes.ValueNode n = node;

            @Override
            public Object execute(VirtualFrame f) {
                return n.execute(f);
            }
        };
        return root.getCallTarget().call();
    }

    /** An operand node that gives a value as it is (a tensor or a set). */
    private static OpNodes.ValueNode constant(Object v) {
        return new OpNodes.Constant(v);
    }

    private static Tensor random(Ty.Elem elem, List<Axis> axes, int... dims) {
        int n = 1;
        for (int d : dims) n *= d;
        double[] data = new double[n];
        for (int i = 0; i < n; i++) {
            double v = RND.nextGaussian() * 8;
            data[i] = elem == Ty.Elem.INT ? Math.rint(v) : i % 7 == 3 ? -0.0 : v;
        }
        return new Tensor(elem, axes, dims, data);
    }

    private static List<String> active(Node n) {
        List<String> out = new ArrayList<>();
        for (Introspection.SpecializationInfo s : Introspection.getSpecializations(n)) if (s.isActive()) out.add(s.getMethodName());
        return out;
    }

    @Test
    void map2FastPathsGiveTheBroadcastBits() {
        List<Axis> ht = List.of(Axis.HEAD, Axis.TOKEN);
        for (Ty.Elem elem : new Ty.Elem[] {Ty.Elem.FLOAT, Ty.Elem.INT}) {
            for (Op.Fn2 fn : Op.Fn2.values()) {
                Tensor a = random(elem, ht, 3, 17), b = random(elem, ht, 3, 17), s = random(elem, List.of());
                Tensor t = random(elem, List.of(Axis.TOKEN), 17);
                Object[][] cases = {{a, b, "aligned"}, {a, s, "byScalar"}, {s, s, "scalars"}, {a, t, "broadcast"}};
                for (Object[] c : cases) {
                    Tensor x = (Tensor) c[0], y = (Tensor) c[1];
                    OpNodes.ValueNode node = OpNodesFactory.Map2NodeGen.create(fn, elem, constant(x), constant(y));
                    Tensor got = (Tensor) run(node);
                    Tensor want = Tensor.map2(x, y, elem, (p, q) -> Semantics.map2(fn, elem, p, q));
                    assertEquals(want.axes, got.axes, fn + " " + c[2]);
                    assertArrayEquals(want.data, got.data, 0.0, fn + " " + elem + " " + c[2]);
                    assertEquals(List.of(c[2]), active(node), fn + " " + c[2]);
                }
            }
        }
    }

    @Test
    void intResultsAreTruncatedButDivisionIsNot() {
        Tensor a = new Tensor(Ty.Elem.INT, List.of(Axis.TOKEN), new int[] {2}, new double[] {7, -7});
        Tensor two = Tensor.scalar(Ty.Elem.INT, 2);
        assertArrayEquals(new double[] {3.5, -3.5}, ((Tensor) run(OpNodesFactory.Map2NodeGen.create(Op.Fn2.DIV, Ty.Elem.INT, constant(a), constant(two)))).data);
        assertArrayEquals(new double[] {14, -14}, ((Tensor) run(OpNodesFactory.Map2NodeGen.create(Op.Fn2.MUL, Ty.Elem.INT, constant(a), constant(two)))).data);
    }

    @Test
    void wholeReductionFoldsAsTheGeneralOne() {
        List<Axis> axes = List.of(Axis.QUERY, Axis.GROUP, Axis.TOKEN);
        for (Op.Red fn : Op.Red.values()) {
            Tensor x = random(Ty.Elem.FLOAT, axes, 3, 4, 50);
            Ty.Elem out = fn.floatResult ? Ty.Elem.FLOAT : x.elem;
            OpNodes.ValueNode all = OpNodesFactory.ReduceNodeGen.create(fn, axes, out, constant(x));
            Tensor got = (Tensor) run(all);
            assertArrayEquals(Semantics.reduce(fn, x, axes, out).data, got.data, 0.0, fn.word());
            assertEquals(List.of("all"), active(all), fn.word());
            List<Axis> some = List.of(Axis.QUERY, Axis.GROUP);
            OpNodes.ValueNode part = OpNodesFactory.ReduceNodeGen.create(fn, some, out, constant(x));
            Tensor p = (Tensor) run(part);
            assertEquals(List.of(Axis.TOKEN), p.axes);
            assertArrayEquals(Semantics.reduce(fn, x, some, out).data, p.data, 0.0, fn.word());
            assertEquals(List.of("some"), active(part), fn.word());
        }
    }

    @Test
    void withinMasksValuesAndIntersectsSets() {
        BitSet even = new BitSet();
        for (int t = 0; t < 20; t += 2) even.set(t);
        TokenSet s = TokenSet.of(Axis.TOKEN, even);
        Tensor x = random(Ty.Elem.FLOAT, List.of(Axis.QUERY, Axis.TOKEN), 2, 20);
        OpNodes.ValueNode values = OpNodesFactory.WithinNodeGen.create(constant(x), constant(s));
        Tensor got = (Tensor) run(values);
        for (int q = 0; q < 2; q++) {
            for (int t = 0; t < 20; t++) {
                double want = t % 2 == 0 ? x.data[q * 20 + t] : Double.NaN;
                assertEquals(want, got.data[q * 20 + t], 0.0, q + "," + t);
            }
        }
        assertEquals(List.of("values"), active(values));
    }

    @Test
    void chooseTakesSetsOrValues() {
        TokenSet a = TokenSet.of(Axis.TOKEN, BitSet.valueOf(new long[] {5})), b = TokenSet.of(Axis.TOKEN, BitSet.valueOf(new long[] {2}));
        OpNodes.ValueNode sets = OpNodesFactory.ChooseNodeGen.create(null, constant(Tensor.scalar(Ty.Elem.BOOL, 0)), constant(a), constant(b));
        assertEquals(b, run(sets));
        assertEquals(List.of("sets"), active(sets));
        Tensor c = new Tensor(Ty.Elem.BOOL, List.of(Axis.TOKEN), new int[] {3}, new double[] {1, 0, 1});
        Tensor x = random(Ty.Elem.FLOAT, List.of(Axis.TOKEN), 3), y = Tensor.scalar(Ty.Elem.FLOAT, -1);
        OpNodes.ValueNode values = OpNodesFactory.ChooseNodeGen.create(Ty.Elem.FLOAT, constant(c), constant(x), constant(y));
        assertArrayEquals(new double[] {x.data[0], -1, x.data[2]}, ((Tensor) run(values)).data);
        assertEquals(List.of("values"), active(values));
    }
}
