package dev.kvpc.compiler.check;

import dev.kvpc.ir.Signal;

import java.util.LinkedHashMap;
import java.util.Map;

import static dev.kvpc.compiler.check.Axis.*;
import static dev.kvpc.compiler.check.Type.Elem.FLOAT;
import static dev.kvpc.compiler.check.Type.Elem.INT;
import static dev.kvpc.compiler.check.Type.tensor;

/** The signals each kind of code may read, with their types (docs/language.md has the same tables). */
final class Signals {
    private Signals() {}

    /** Where the lane is and the model's shape: readable everywhere except attention variants' own table. */
    static final Map<String, Type.Tensor> LOCATION = asPoliciesRead("layer", "head", "layers", "heads", "group", "head_dim");

    static final Map<String, Type.Tensor> POLICY = asPoliciesRead("k", "v", "q", "attn", "logits", "pos", "age", "index", "qpos", "len", "context", "step", "channel");

    /** The signals of these words with their types as policies read them: each signal's own axes and element. */
    private static Map<String, Type.Tensor> asPoliciesRead(String... words) {
        Map<String, Type.Tensor> m = new LinkedHashMap<>();
        for (String w : words) {
            Signal s = Signal.of(w);
            m.put(w, tensor(s.floating ? FLOAT : INT, s.axes().stream().map(a -> Axis.valueOf(a.name())).toArray(Axis[]::new)));
        }
        return m;
    }

    /** Whether a signal gains a {@code head} axis under {@code selection per layer} ({@link Signal#perLane}). */
    static boolean perLane(String name) {
        Signal s = Signal.of(name);
        return s != null && s.perLane();
    }

    /**
     * Whether a signal has one row per query: at prefill it needs {@code observe} unless reduced over {@code query}
     * ({@link Signal#queryRows}).
     */
    static boolean queryRows(String name) {
        Signal s = Signal.of(name);
        return s != null && s.queryRows();
    }

    /** An attention variant's: one row of q and k (their channels), scalars of the rest. */
    static final Map<String, Type.Tensor> ATTENTION = ordered(
            "q", tensor(FLOAT, CHANNEL), "k", tensor(FLOAT, CHANNEL), "qpos", tensor(INT), "kpos", tensor(INT),
            "head", tensor(INT), "layer", tensor(INT), "heads", tensor(INT), "head_dim", tensor(INT),
            "context", tensor(INT), "scale", tensor(FLOAT));

    /** Function bodies see the lane's location and the context length only. */
    static final Map<String, Type.Tensor> FN = with(LOCATION, "context", tensor(INT));

    private static Map<String, Type.Tensor> ordered(Object... kv) {
        Map<String, Type.Tensor> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], (Type.Tensor) kv[i + 1]);
        return m;
    }

    private static Map<String, Type.Tensor> with(Map<String, Type.Tensor> base, String k, Type.Tensor t) {
        Map<String, Type.Tensor> m = new LinkedHashMap<>(base);
        m.put(k, t);
        return m;
    }
}
