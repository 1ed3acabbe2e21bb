package dev.kvpc.gpu.policy;

import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.gpu.emit.CEmitter;
import dev.kvpc.gpu.emit.Dialect;
import dev.kvpc.gpu.kir.KirText;

/**
 * Top-k on the device: the candidates of a score over (head, entry) sorted by a bitonic network in global memory, the
 * first {@code count} marked. The order is the ranking rule's ({@code dev.kvpc.runtime.exec.Select}): the key
 * ({@code -score} for top, {@code score} for bottom) ascending as {@link Double#compare} orders it (-0.0 before 0.0),
 * then the later entry, then the lower head; NaN (and what the caller made NaN: the compensation entry) never ranks.
 * {@code DeviceRankTest} holds it to {@code Select.rank} on ties, signed zeros, infinities and NaN.
 */
public final class DeviceRank {
    // an entry: key (double), tie = entry * heads + (heads - 1 - head) (larger ranks first), -1 for no candidate
    private static final String KERNELS = """
            kernel rank_load (buffer double score, out buffer double key, out buffer int tie, int heads, int len, int total, int top) {
              let int i = global_id(0);
              if (i < total) {
                let double v = score[i];
                let bool cand = (v == v);
                store key[i] = select(cand, select((top != 0), neg(v), v), infd);
                store tie[i] = select(cand, (((i % len) * heads) + ((heads - 1) - (i / len))), -1);
              } else {
                store key[i] = infd;
                store tie[i] = -1;
              }
            }

            kernel rank_step (out buffer double key, out buffer int tie, int k, int j) {
              let int i = global_id(0);
              let int l = (i ^ j);
              if (l > i) {
                let double ki = key[i];
                let double kl = key[l];
                let int ti = tie[i];
                let int tl = tie[l];
                let double si = copysign(1.0d, ki);
                let double sl = copysign(1.0d, kl);
                let bool ni = (si < 0.0d);
                let bool nl = (sl < 0.0d);
                let bool lBefore = ((tl >= 0) && ((ti < 0) || ((kl < ki) || ((kl == ki) && ((nl && not(ni)) || ((sl == si) && (tl > ti)))))));
                let bool iBefore = ((ti >= 0) && ((tl < 0) || ((ki < kl) || ((ki == kl) && ((ni && not(nl)) || ((si == sl) && (ti > tl)))))));
                let bool up = ((i & k) == 0);
                if ((up && lBefore) || (not(up) && iBefore)) {
                  store key[i] = kl;
                  store key[l] = ki;
                  store tie[i] = tl;
                  store tie[l] = ti;
                }
              }
            }

            kernel rank_mark (buffer int tie, out buffer double chosen, int heads, int len, int count) {
              let int i = global_id(0);
              let int t = tie[i];
              if ((i < count) && (t >= 0)) {
                store chosen[((((heads - 1) - (t % heads)) * len) + (t / heads))] = 1.0d;
              }
            }
            """;

    private final ClContext.Kernel load, step, mark;
    private long launches;

    public DeviceRank(ClContext cl) {
        ClContext.Program p = cl.build(CEmitter.emit(KirText.parse(KERNELS), Dialect.OPENCL), "-cl-std=CL1.2", "top-k selection");
        load = p.kernel("rank_load");
        step = p.kernel("rank_step");
        mark = p.kernel("rank_mark");
    }

    long launches() {
        return launches;
    }

    /**
     * Marks (1.0 in {@code chosen}, which the caller zeroed, {@code heads * len} doubles) the {@code count} best
     * candidates of {@code score} ({@code heads} rows of {@code len}).
     */
    public void rank(ClContext cl, ClContext.Buffer score, int heads, int len, boolean top, long count, ClContext.Buffer chosen) {
        int total = heads * len;
        int n = 1;
        while (n < total) n <<= 1;
        ClContext.Buffer key = cl.buffer(8L * n, "ranking keys"), tie = cl.buffer(4L * n, "ranking ties");
        try {
            load.arg(0, score).arg(1, key).arg(2, tie).arg(3, heads).arg(4, len).arg(5, total).arg(6, top ? 1 : 0);
            load.launch(new long[] {n}, null);
            launches++;
            for (int k = 2; k <= n; k <<= 1) {
                for (int j = k >> 1; j > 0; j >>= 1) {
                    step.arg(0, key).arg(1, tie).arg(2, k).arg(3, j);
                    step.launch(new long[] {n}, null);
                    launches++;
                }
            }
            int c = (int) Math.max(0, Math.min(count, n));
            if (c > 0) {
                mark.arg(0, tie).arg(1, chosen).arg(2, heads).arg(3, len).arg(4, c);
                mark.launch(new long[] {c}, null);
                launches++;
            }
        } finally {
            key.free();
            tie.free();
        }
    }
}
