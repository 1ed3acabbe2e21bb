package dev.kvpc.examples.host;

import dev.kvpc.runtime.KvRuntime;
import dev.kvpc.runtime.ModelSpec;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.Sequence;
import dev.kvpc.runtime.lane.Lane;
import dev.kvpc.runtime.load.ModelShapeSpec;
import dev.kvpc.runtime.load.PolicyJar;
import dev.kvpc.runtime.load.PolicyJarLoader;
import dev.kvpc.runtime.load.PolicyLoadException;
import dev.kvpc.runtime.load.ShapeConstraints;
import dev.kvpc.runtime.pool.PagePool;
import dev.kvpc.runtime.store.Precision;
import dev.kvpc.runtime.trace.Trace;
import dev.kvpc.runtime.trace.TraceFeed;
import dev.kvpc.runtime.trace.TraceShape;
import dev.kvpc.runtime.trace.TraceSpec;

import java.io.PrintStream;
import java.nio.file.Path;

/**
 * The smallest host of a compiled policy: it links the kvpc runtime and nothing else of kvpc (no compiler,
 * interpreter or code generator), loads a policy jar written by {@code kvpc compile}, and runs it over a trace of
 * keys, values and queries as a model's forward pass would feed it. After each step it prints, per layer and KV
 * head, the positions the lane keeps.
 *
 * <pre>
 * java -cp kvpc-examples.jar:kvpc-runtime.jar:kvpc-ir.jar:asm.jar:asm-tree.jar \
 *     dev.kvpc.examples.host.TraceHost h2o.jar random:seed=1,prefill=64,decode=16
 * </pre>
 *
 * The model's shape is the jar's own (a jar is compiled for one shape); the trace spec is the one {@code kvpc trace}
 * takes.
 */
public final class TraceHost {
    private TraceHost() {}

    public static void main(String[] args) {
        if (args.length != 2) {
            System.err.println("usage: TraceHost POLICY.jar TRACE-SPEC   (e.g. random:seed=1,prefill=64,decode=16)");
            System.exit(64);
        }
        try {
            run(Path.of(args[0]), args[1], System.out);
        } catch (PolicyLoadException e) {
            System.err.println("TraceHost: " + e.getMessage());
            System.exit(65);
        } catch (IllegalArgumentException e) {
            System.err.println("TraceHost: " + e.getMessage());
            System.exit(64);
        }
    }

    /** Loads {@code jar}, runs it over the trace {@code spec} on the runtime's lanes and prints what each lane keeps. */
    public static void run(Path jar, String spec, PrintStream out) throws PolicyLoadException {
        ModelShapeSpec shape = shapeOf(jar);
        // every call into the jar's code guarded: what it throws arrives as a PolicyFault naming the policy
        PolicyRunner runner = PolicyJarLoader.runner(jar, shape);
        Trace trace = TraceSpec.open(spec, new TraceShape(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim()));
        ModelSpec model = new ModelSpec(shape.layers(), shape.heads(), shape.kvHeads(), shape.headDim(), Precision.F32, null);
        out.println("policy " + PolicyJar.read(jar).manifest().policyName() + " on " + shape);
        try (PagePool pool = new PagePool(); Sequence seq = new KvRuntime(model, runner, pool).newSequence()) {
            feed(seq, trace, out);
        }
    }

    /** The exact shape the jar was compiled for. */
    private static ModelShapeSpec shapeOf(Path jar) throws PolicyLoadException {
        ShapeConstraints c = PolicyJar.read(jar).manifest().shape();
        int[] d = new int[4];
        for (int i = 0; i < 4; i++) {
            String name = ShapeConstraints.DIMENSIONS.get(i);
            ShapeConstraints.Dim dim = c.get(name);
            if (dim.value() <= 0) throw new PolicyLoadException(jar + ": compiled for any " + name + "; this host needs an exact shape");
            d[i] = dim.value();
        }
        return new ModelShapeSpec(d[0], d[1], d[2], d[3]);
    }

    /** Feeds the trace as a forward pass would ({@link TraceFeed}); after each layer prints each lane's kept positions. */
    private static void feed(Sequence seq, Trace t, PrintStream out) {
        TraceFeed.feed(seq, t, (si, l, o) -> {
            for (int kv = 0; kv < t.shape().kvHeads(); kv++) {
                Lane lane = seq.lane(l, kv);
                StringBuilder line = new StringBuilder("step " + si + " layer " + l + " kv " + kv + " keeps");
                for (int i = 0; i < lane.size(); i++) line.append(' ').append(lane.position(i));
                out.println(line);
            }
        });
    }
}
