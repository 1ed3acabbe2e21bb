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
            {{signs}}
            {{order:l:i}}
            {{order:i:l}}
                let bool up = ((i & k) == 0);
                if ((up && l_before_i) || (not(up) && i_before_l)) {
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

            // the last candidate in the order leaves (its tie becomes -1): one work-group scans, then reduces
            kernel rank_drop_worst [group WG] (buffer double key, out buffer int tie, int n) {
              local double lk[WG];
              local int lt[WG];
              local int li[WG];
              let int lid = local_id(0);
              let double kw = infd;
              let int tw = -1;
              let int iw = -1;
              for i = lid to n step WG {
                let double ki = key[i];
                let int ti = tie[i];
                let double kl = kw;
                let int tl = tw;
            {{signs}}
            {{order:l:i}}
                if ((ti >= 0) && ((tw < 0) || l_before_i)) {
                  kw = ki;
                  tw = ti;
                  iw = i;
                }
              }
              store lk[lid] = kw;
              store lt[lid] = tw;
              store li[lid] = iw;
              barrier;
              for r = 0 to LOGWG step 1 {
                let int span = (WG >> (r + 1));
                if (lid < span) {
                  let double kl = lk[lid];
                  let int tl = lt[lid];
                  let double ki = lk[(lid + span)];
                  let int ti = lt[(lid + span)];
            {{signs}}
            {{order:l:i}}
                  if ((ti >= 0) && ((tl < 0) || l_before_i)) {
                    store lk[lid] = ki;
                    store lt[lid] = ti;
                    store li[lid] = li[(lid + span)];
                  }
                }
                barrier;
              }
              if ((lid == 0) && (li[0] >= 0)) {
                store tie[li[0]] = -1;
              }
            }

            // every candidate left is chosen
            kernel rank_mark_all (buffer int tie, out buffer double chosen, int heads, int len, int n) {
              let int i = global_id(0);
              if (i < n) {
                let int t = tie[i];
                if (t >= 0) {
                  store chosen[((((heads - 1) - (t % heads)) * len) + (t / heads))] = 1.0d;
                }
              }
            }
            """;

    /**
     * The ranking order once, for every kernel here: a statement defining {@code bool A_before_B}, whether candidate
     * A (key {@code kA}, its sign {@code sA}, tie {@code tA}) ranks before B; a candidate with a negative tie is none
     * and ranks last.
     */
    private static String order(String a, String b) {
        String ka = "k" + a, kb = "k" + b, ta = "t" + a, tb = "t" + b, sa = "s" + a, sb = "s" + b;
        return "let bool " + a + "_before_" + b + " = ((" + ta + " >= 0) && ((" + tb + " < 0) || ((" + ka + " < " + kb + ") || ((" + ka + " == " + kb
                + ") && (((" + sa + " < 0.0d) && (" + sb + " > 0.0d)) || ((" + sa + " == " + sb + ") && (" + ta + " > " + tb + ")))))));";
    }

    private static dev.kvpc.gpu.kir.KirModule kernels(int wg) {
        // the keys' signs (copysign tells -0.0 from 0.0), which the order reads
        String signs = "let double sl = copysign(1.0d, kl);\nlet double si = copysign(1.0d, ki);";
        String text = KERNELS.replace("{{signs}}", signs).replace("{{order:l:i}}", order("l", "i")).replace("{{order:i:l}}", order("i", "l"));
        return KirText.parse(text, java.util.Map.of("WG", wg, "LOGWG", Integer.numberOfTrailingZeros(wg)));
    }

    /** At most this many candidates left out are dropped one launch each, as the JVM's selection drops its few worst. */
    static final int FEW = 8;

    private final ClContext.Kernel load, step, mark, dropWorst, markAll;
    private final int wg;
    private long launches;

    public DeviceRank(ClContext cl) {
        wg = dev.kvpc.gpu.kernels.DecodeAttention.workGroup(cl.device().maxWorkGroupSize());
        ClContext.Program p = cl.build(CEmitter.emit(kernels(wg), Dialect.OPENCL), "-cl-std=CL1.2", "top-k selection");
        load = p.kernel("rank_load");
        step = p.kernel("rank_step");
        mark = p.kernel("rank_mark");
        dropWorst = p.kernel("rank_drop_worst");
        markAll = p.kernel("rank_mark_all");
    }

    long launches() {
        return launches;
    }

    /**
     * Marks (1.0 in {@code chosen}, which the caller zeroed, {@code heads * len} doubles) the {@code count} best
     * candidates of {@code score} ({@code heads} rows of {@code len}), of which {@code candidates} are not NaN (-1:
     * not known). Where at most {@value #FEW} are left out, each is dropped by one scan (as the JVM's selection does);
     * else a bitonic network sorts them all.
     */
    public void rank(ClContext cl, ClContext.Buffer score, int heads, int len, boolean top, long count, ClContext.Buffer chosen, int candidates) {
        int total = heads * len;
        int n = 1;
        while (n < total) n <<= 1;
        ClContext.Buffer key = cl.buffer(8L * n, "ranking keys"), tie = cl.buffer(4L * n, "ranking ties");
        try {
            load.arg(0, score).arg(1, key).arg(2, tie).arg(3, heads).arg(4, len).arg(5, total).arg(6, top ? 1 : 0);
            load.launch(new long[] {n}, null);
            launches++;
            if (candidates >= 0 && candidates - Math.max(0, count) <= FEW) {
                for (long d = candidates - Math.max(0, count); d > 0; d--) {
                    dropWorst.arg(0, key).arg(1, tie).arg(2, total);
                    dropWorst.launch(new long[] {wg}, new long[] {wg});
                    launches++;
                }
                markAll.arg(0, tie).arg(1, chosen).arg(2, heads).arg(3, len).arg(4, total);
                markAll.launch(new long[] {total}, null);
                launches++;
                return;
            }
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
