package dev.kvpc.backend.interp;

import dev.kvpc.ir.Axis;
import dev.kvpc.ir.Ty;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.function.DoubleBinaryOperator;
import java.util.function.DoubleUnaryOperator;

/**
 * A dense tensor over named axes (canonical axis order, row-major), the interpreter's one numeric value. Ints and
 * bools are held as doubles (bools as 0/1); {@code elem} says which. Broadcasting is by axis name.
 */
final class Tensor {
    final Ty.Elem elem;
    final List<Axis> axes;
    final int[] dims;
    final double[] data;
    /** For a tensor over tokens: the lane entries (per lane of the group) its token axis indexes, stamped when defined. */
    LaneState.Entry[][] basis;

    Tensor(Ty.Elem elem, List<Axis> axes, int[] dims, double[] data) {
        if (axes.size() != dims.length) throw new IllegalArgumentException("axes and dims differ");
        int n = 1;
        for (int d : dims) n *= d;
        if (n != data.length) throw new IllegalArgumentException("data has " + data.length + " values for dims " + Arrays.toString(dims));
        this.elem = elem;
        this.axes = List.copyOf(axes);
        this.dims = dims;
        this.data = data;
    }

    static Tensor scalar(Ty.Elem elem, double v) {
        return new Tensor(elem, List.of(), new int[0], new double[] {v});
    }

    double scalar() {
        if (data.length != 1) throw new InterpreterException("expected one value, got a tensor over " + axes);
        return data[0];
    }

    int dim(Axis a) {
        int i = axes.indexOf(a);
        return i < 0 ? 1 : dims[i];
    }

    private int[] strides() {
        int[] s = new int[dims.length];
        int acc = 1;
        for (int i = dims.length - 1; i >= 0; i--) {
            s[i] = acc;
            acc *= dims[i];
        }
        return s;
    }

    /** Stride of each axis of {@code out} in this tensor (0 where this tensor lacks the axis: broadcast). */
    private int[] stridesIn(List<Axis> out) {
        int[] own = strides();
        int[] r = new int[out.size()];
        for (int i = 0; i < out.size(); i++) {
            int j = axes.indexOf(out.get(i));
            r[i] = j < 0 ? 0 : own[j];
        }
        return r;
    }

    /** The union of two tensors' axes with their sizes; a shared axis must agree. */
    static Map<Axis, Integer> union(Tensor... ts) {
        Map<Axis, Integer> m = new EnumMap<>(Axis.class);
        for (Tensor t : ts) {
            for (int i = 0; i < t.axes.size(); i++) {
                Integer prev = m.put(t.axes.get(i), t.dims[i]);
                if (prev != null && prev != t.dims[i]) {
                    throw new InterpreterException("axis " + t.axes.get(i).word() + " has size " + prev + " and " + t.dims[i]);
                }
            }
        }
        return m;
    }

    static Tensor map1(Tensor x, Ty.Elem out, DoubleUnaryOperator f) {
        double[] d = new double[x.data.length];
        for (int i = 0; i < d.length; i++) d[i] = f.applyAsDouble(x.data[i]);
        return new Tensor(out, x.axes, x.dims.clone(), d);
    }

    static Tensor map2(Tensor a, Tensor b, Ty.Elem out, DoubleBinaryOperator f) {
        return mapN(out, new Tensor[] {a, b}, v -> f.applyAsDouble(v[0], v[1]));
    }

    interface NaryOp {
        double apply(double[] v);
    }

    /** Elementwise over the union of the operands' axes. */
    static Tensor mapN(Ty.Elem out, Tensor[] ts, NaryOp f) {
        Map<Axis, Integer> u = union(ts);
        List<Axis> axes = new ArrayList<>(u.keySet());
        int[] dims = new int[axes.size()];
        int n = 1;
        for (int i = 0; i < dims.length; i++) {
            dims[i] = u.get(axes.get(i));
            n *= dims[i];
        }
        int[][] st = new int[ts.length][];
        for (int k = 0; k < ts.length; k++) st[k] = ts[k].stridesIn(axes);
        double[] data = new double[n];
        int[] idx = new int[dims.length];
        double[] vals = new double[ts.length];
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < ts.length; k++) {
                int off = 0;
                for (int j = 0; j < idx.length; j++) off += idx[j] * st[k][j];
                vals[k] = ts[k].data[off];
            }
            data[i] = f.apply(vals);
            for (int j = idx.length - 1; j >= 0; j--) {
                if (++idx[j] < dims[j]) break;
                idx[j] = 0;
            }
        }
        return new Tensor(out, axes, dims, data);
    }

    /** Reduction over some axes with an initial value and a combining function; {@code finish} maps (acc, count). */
    static Tensor reduce(Tensor x, List<Axis> over, Ty.Elem out, double init, DoubleBinaryOperator combine, DoubleBinaryOperator finish) {
        List<Axis> keep = new ArrayList<>();
        for (Axis a : x.axes) if (!over.contains(a)) keep.add(a);
        for (Axis a : over) if (!x.axes.contains(a)) throw new InterpreterException("reduce over " + a.word() + ", which the value lacks");
        int[] dims = new int[keep.size()];
        int n = 1;
        for (int i = 0; i < dims.length; i++) {
            dims[i] = x.dim(keep.get(i));
            n *= dims[i];
        }
        double[] acc = new double[n];
        Arrays.fill(acc, init);
        int count = 1;
        for (Axis a : over) count *= x.dim(a);
        // strides of the output axes, expressed over x's index
        int[] outStride = new int[x.axes.size()];
        int s = 1;
        for (int i = keep.size() - 1; i >= 0; i--) {
            outStride[x.axes.indexOf(keep.get(i))] = s;
            s *= dims[i];
        }
        int[] idx = new int[x.dims.length];
        for (int i = 0; i < x.data.length; i++) {
            int o = 0;
            for (int j = 0; j < idx.length; j++) o += idx[j] * outStride[j];
            acc[o] = combine.applyAsDouble(acc[o], x.data[i]);
            for (int j = idx.length - 1; j >= 0; j--) {
                if (++idx[j] < x.dims[j]) break;
                idx[j] = 0;
            }
        }
        for (int i = 0; i < n; i++) acc[i] = finish.applyAsDouble(acc[i], count);
        return new Tensor(out, keep, dims, acc);
    }

    /** The values along {@code axis} at every other index fixed, as [outer][axis] slices (copies). */
    double[][] slices(Axis axis) {
        int ai = axes.indexOf(axis);
        if (ai < 0) throw new InterpreterException("value has no " + axis.word() + " axis");
        int len = dims[ai];
        int inner = 1;
        for (int j = ai + 1; j < dims.length; j++) inner *= dims[j];
        int outer = 1;
        for (int j = 0; j < ai; j++) outer *= dims[j];
        double[][] r = new double[outer * inner][len];
        for (int o = 0; o < outer; o++) {
            for (int in = 0; in < inner; in++) {
                for (int t = 0; t < len; t++) r[o * inner + in][t] = data[(o * len + t) * inner + in];
            }
        }
        return r;
    }

    /** Inverse of {@link #slices}: a tensor of this shape from slices along {@code axis}. */
    Tensor fromSlices(Axis axis, double[][] s, Ty.Elem out) {
        int ai = axes.indexOf(axis);
        int len = dims[ai];
        int inner = 1;
        for (int j = ai + 1; j < dims.length; j++) inner *= dims[j];
        int outer = 1;
        for (int j = 0; j < ai; j++) outer *= dims[j];
        double[] d = new double[data.length];
        for (int o = 0; o < outer; o++) {
            for (int in = 0; in < inner; in++) {
                for (int t = 0; t < len; t++) d[(o * len + t) * inner + in] = s[o * inner + in][t];
            }
        }
        return new Tensor(out, axes, dims.clone(), d);
    }

    @Override
    public String toString() {
        return elem.word() + axes + Arrays.toString(dims) + (data.length <= 8 ? Arrays.toString(data) : "");
    }
}
