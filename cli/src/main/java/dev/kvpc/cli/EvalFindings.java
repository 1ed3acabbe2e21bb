package dev.kvpc.cli;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.TreeSet;

/**
 * Findings computed from one model's rows of a {@code kvpc eval} run, as sentences for the report: how window-only
 * and StreamingLLM perplexity compare with the full cache past the window and past the trained context, pass-key
 * accuracy by where the key lies relative to the budget, KIVI's perplexity and bytes, and how measured KV bytes
 * agree with the prediction. A finding whose rows are not in the run is left out, never guessed.
 */
final class EvalFindings {
    private EvalFindings() {}

    static List<String> of(List<Eval.Row> rows, int context) {
        List<String> out = new ArrayList<>();
        Eval.Row full = find(rows, "full", Double.NaN);
        TreeSet<Double> budgets = new TreeSet<>();
        for (Eval.Row r : rows) if (!Double.isNaN(r.policy().budget()) && !r.policy().full()) budgets.add(r.policy().budget());
        out.addAll(papers(rows, context, full, budgets));

        // StreamingLLM: past the window, and past the trained context
        if (full != null && full.perplexity() != null) {
            Eval.Perplexity f = full.perplexity();
            int[] lens = f.lengths();
            int at = EvalReport.trainedIndex(lens, context);
            for (double b : budgets) {
                Eval.Row w = find(rows, "window", b), s = find(rows, "streaming_llm", b);
                if (w == null || s == null || w.perplexity() == null || s.perplexity() == null) continue;
                long window = ((Number) w.policy().params().get("size")).longValue();
                if (at == 0 || lens[at - 1] < window) continue; // the bucket at the trained context is not past the window
                out.add(f("Past the window (%s budget, %d entries), tokens %s: window-only perplexity %.2f, %.2fx the full cache's %.2f%s; "
                                + "streaming_llm %.2f, %.2fx%s.", Eval.pct(b), window, EvalReport.span(lens, at), w.perplexity().ppl(at),
                        w.perplexity().ppl(at) / f.ppl(at), f.ppl(at), spread(w.perplexity(), f, at), s.perplexity().ppl(at),
                        s.perplexity().ppl(at) / f.ppl(at), spread(s.perplexity(), f, at)));
            }
            int last = lens.length - 1;
            if (last > at && lens[last] > context) {
                StringBuilder sb = new StringBuilder(f("Past the trained context (%d tokens), tokens %s against %s: the full cache %.2f against %.2f (%.2fx)",
                        context, EvalReport.span(lens, last), EvalReport.span(lens, at), f.ppl(last), f.ppl(at), f.ppl(last) / f.ppl(at)));
                for (double b : budgets) {
                    Eval.Row s = find(rows, "streaming_llm", b);
                    if (s == null || s.perplexity() == null) continue;
                    Eval.Perplexity p = s.perplexity();
                    sb.append(f("; streaming_llm %s (positions cache) %.2f against %.2f (%.2fx)", Eval.pct(b), p.ppl(last), p.ppl(at), p.ppl(last) / p.ppl(at)));
                }
                out.add(sb.append('.').toString());
                // window-only there: its distances stay within the window, so only the evicted first tokens differ
                for (double b : budgets) {
                    Eval.Row w = find(rows, "window", b), s = find(rows, "streaming_llm", b);
                    if (w == null || s == null || w.perplexity() == null || s.perplexity() == null) continue;
                    Eval.Perplexity p = w.perplexity();
                    out.add(f("Past the trained context, tokens %s: window-only %s %.2f, %.2fx streaming_llm %s's %.2f%s.", EvalReport.span(lens, last), Eval.pct(b),
                            p.ppl(last), p.ppl(last) / s.perplexity().ppl(last), Eval.pct(b), s.perplexity().ppl(last), spread(p, s.perplexity(), last)));
                }
            }
        }

        // pass keys: where the key lies relative to the last B tokens
        for (double b : budgets) {
            List<Eval.Row> at = new ArrayList<>();
            if (full != null && full.grid() != null) at.add(full);
            for (Eval.Row r : rows) if (r.policy().budget() == b && !r.policy().full() && r.grid() != null) at.add(r);
            if (at.size() < 2) continue;
            long budget = Math.round(b * context);
            StringBuilder sb = new StringBuilder(f("Pass keys at %s budget (%d entries); accuracy where the key lies more than %d tokens before the question "
                    + "(outside a recent window of the budget) / within them, then by depth", Eval.pct(b), budget, budget));
            Eval.Grid g0 = at.getFirst().grid();
            sb.append(" (");
            for (int di = 0; di < g0.depths().length; di++) sb.append(di == 0 ? "" : ", ").append(f("%.2f", g0.depths()[di]));
            sb.append("; 0 = start):");
            for (Eval.Row r : at) {
                Eval.Grid g = r.grid();
                int[] outside = new int[2], inside = new int[2];
                int[] depthHits = new int[g.depths().length], depthN = new int[g.depths().length];
                for (int li = 0; li < g.lengths().length; li++) {
                    for (int di = 0; di < g.depths().length; di++) {
                        int[] cell = g.outside(li, di, budget) ? outside : inside;
                        cell[0] += g.hits()[li][di];
                        cell[1] += g.samples();
                        depthHits[di] += g.hits()[li][di];
                        depthN[di] += g.samples();
                    }
                }
                sb.append(f(" %s %s / %s (", name(r), share(outside), share(inside)));
                for (int di = 0; di < depthHits.length; di++) sb.append(di == 0 ? "" : ", ").append(f("%.0f%%", 100.0 * depthHits[di] / Math.max(1, depthN[di])));
                sb.append(");");
            }
            sb.setLength(sb.length() - 1);
            out.add(sb.append('.').toString());
            String digits = digitsInPlace(at, budget);
            if (digits != null) out.add(f("Pass-key digits at %s budget, where the key lies more than %d tokens before the question: the share of the key's "
                    + "digits answered in their place (partial retrieval; a random answer gets 10%%):%s.", Eval.pct(b), budget, digits));
            String kept = keyKeptByLayer(at, budget);
            if (kept != null) out.add(f("Key entries kept at %s budget, where the key lies more than %d tokens before the question: the share of the "
                    + "entries of the key's digit tokens (both statements of it) still in the cache once the prompt is in, layer by layer:%s.", Eval.pct(b), budget, kept));
        }

        // KIVI: perplexity against the full cache, bytes against the packed size
        for (Eval.Row r : rows) {
            if (!"kivi".equals(r.policy().name()) || r.policy().file() != null || r.perplexity() == null || full == null || full.perplexity() == null) continue;
            Eval.Perplexity k = r.perplexity(), f = full.perplexity();
            int worst = -1;
            double worstRatio = 0;
            for (int i = 0; i < k.lengths().length && i < f.lengths().length; i++) {
                if (k.lengths()[i] > context) break;
                double ratio = k.ppl(i) / f.ppl(i);
                if (worst < 0 || Math.abs(ratio - 1) > Math.abs(worstRatio - 1)) {
                    worst = i;
                    worstRatio = ratio;
                }
            }
            if (worst < 0) continue;
            out.add(f("%s: perplexity at most %+.1f%% from the full cache's at every length up to the trained context (tokens %s: "
                            + "%.2f against %.2f); KV bytes measured %d, %.1f%% of the full cache's %d, against the packed size kvpc memory predicts, %d (%+.1f%%).",
                    r.policy().label(), 100 * (worstRatio - 1), EvalReport.span(k.lengths(), worst), k.ppl(worst), f.ppl(worst), k.measuredBytes(),
                    100.0 * k.measuredBytes() / f.measuredBytes(), f.measuredBytes(), k.predictedBytes(),
                    100.0 * (k.measuredBytes() - k.predictedBytes()) / Math.max(1, k.predictedBytes())));
        }

        // measured against predicted bytes
        int n = 0;
        double worst = 0;
        String worstRow = null;
        List<String> over = new ArrayList<>();
        for (Eval.Row r : rows) {
            Eval.Perplexity p = r.perplexity();
            if (p == null || p.predictedBytes() <= 0) continue;
            double d = 100.0 * (p.measuredBytes() - p.predictedBytes()) / p.predictedBytes();
            n++;
            if (worstRow == null || Math.abs(d) > Math.abs(worst)) {
                worst = d;
                worstRow = r.policy().label();
            }
            if (Math.abs(d) > 5) over.add(r.policy().label() + f(" (%+.1f%%)", d));
        }
        if (n > 0) {
            out.add(over.isEmpty()
                    ? f("Measured KV bytes are within 5%% of kvpc memory's prediction on all %d rows (largest difference %+.1f%%, %s).", n, worst, worstRow)
                    : f("Measured KV bytes differ from kvpc memory's prediction by more than 5%% on %d of %d rows: %s.", over.size(), n, String.join(", ", over)));
        }
        return out;
    }

    /** A query-agnostic policy loses the pass key at most this often where it lies outside a recent window of the budget. */
    static final double LOSES = 0.10;
    /** A question- or query-aware policy keeps it at least this share of the full cache's accuracy there. */
    static final double KEEPS = 0.5;
    /** Window-only rises "far above" the full cache past the window: at least this ratio; StreamingLLM "stays close": at most {@link #CLOSE}. */
    static final double FAR = 1.5, CLOSE = 1.1;

    /**
     * The three findings of the papers the eval's policies come from, each checked on the rows with its criterion
     * stated, saying where it holds and where not: (1) query-agnostic eviction (H2O, TOVA, StreamingLLM) loses a pass
     * key that only the later question makes important, while question-aware (SnapKV, PyramidKV) and query-aware
     * (Quest) selection keep it (the Quest paper); (2) window-only perplexity rises far above the full cache's once the
     * first tokens are evicted, while StreamingLLM stays close (the StreamingLLM paper); (3) StreamingLLM with
     * {@code positions cache} stays stable past the trained context. A finding whose rows are not in the run is left out.
     */
    static List<String> papers(List<Eval.Row> rows, int context, Eval.Row full, TreeSet<Double> budgets) {
        List<String> out = new ArrayList<>();
        // (1) pass keys outside a recent window of the budget
        List<String> verdicts = new ArrayList<>();
        for (double b : budgets) {
            if (full == null || full.grid() == null) break;
            long budget = Math.round(b * context);
            double fullAcc = outsideAccuracy(full.grid(), budget);
            if (Double.isNaN(fullAcc) || fullAcc == 0) continue;
            List<String> agnostic = new ArrayList<>(), aware = new ArrayList<>(), failed = new ArrayList<>();
            for (String n : List.of("h2o", "tova", "streaming_llm", "snapkv", "pyramidkv", "quest")) {
                Eval.Row r = find(rows, n, b);
                if (r == null || r.grid() == null) continue;
                double acc = outsideAccuracy(r.grid(), budget);
                boolean isAware = n.equals("snapkv") || n.equals("pyramidkv") || n.equals("quest");
                (isAware ? aware : agnostic).add(f("%s %.0f%%", n, 100 * acc));
                if (isAware ? acc < KEEPS * fullAcc : acc > LOSES) failed.add(n);
            }
            if (agnostic.isEmpty() || aware.isEmpty()) continue;
            verdicts.add(f("at %s %s (%s; %s; full cache %.0f%%%s)", Eval.pct(b), failed.isEmpty() ? "holds" : "does not hold", String.join(", ", agnostic),
                    String.join(", ", aware), 100 * fullAcc, failed.isEmpty() ? "" : "; against it: " + String.join(", ", failed)));
        }
        if (!verdicts.isEmpty()) {
            out.add(f("Paper finding 1 (Quest; SnapKV): query-agnostic eviction (h2o, tova, streaming_llm) loses a pass key that only the later question "
                    + "makes important, while question-aware (snapkv, pyramidkv) and query-aware (quest) selection keep it. Criterion, over keys more than "
                    + "the budget's tokens before the question: the agnostic answer at most %.0f%%, the aware at least %.0f%% of the full cache's accuracy. %s.",
                    100 * LOSES, 100 * KEEPS, capitalise(String.join("; ", verdicts))));
        }
        // (2) past the window, at the trained context
        verdicts.clear();
        if (full != null && full.perplexity() != null) {
            Eval.Perplexity fp = full.perplexity();
            int at = EvalReport.trainedIndex(fp.lengths(), context);
            for (double b : budgets) {
                Eval.Row w = find(rows, "window", b), st = find(rows, "streaming_llm", b);
                if (w == null || st == null || w.perplexity() == null || st.perplexity() == null) continue;
                long window = ((Number) w.policy().params().get("size")).longValue();
                if (at == 0 || fp.lengths()[at - 1] < window) continue;
                double rw = w.perplexity().ppl(at) / fp.ppl(at), rs = st.perplexity().ppl(at) / fp.ppl(at);
                verdicts.add(f("at %s %s (window-only %.2fx, streaming_llm %.2fx)", Eval.pct(b), rw >= FAR && rs <= CLOSE ? "holds" : "does not hold", rw, rs));
            }
            if (!verdicts.isEmpty()) {
                out.add(f("Paper finding 2 (StreamingLLM): window-only perplexity rises far above the full cache's once the first tokens are evicted, "
                        + "while streaming_llm (sinks kept) stays close. Criterion, past the window at the trained context: window-only at least %.1fx the "
                        + "full cache's perplexity, streaming_llm at most %.1fx. %s.", FAR, CLOSE, capitalise(String.join("; ", verdicts))));
            }
            // (3) past the trained context
            verdicts.clear();
            int last = fp.lengths().length - 1;
            if (last > at && fp.lengths()[last] > context) {
                for (double b : budgets) {
                    Eval.Row st = find(rows, "streaming_llm", b);
                    if (st == null || st.perplexity() == null) continue;
                    double r = st.perplexity().ppl(last) / st.perplexity().ppl(at);
                    verdicts.add(f("at %s %s (%.2fx)", Eval.pct(b), r <= CLOSE ? "holds" : "does not hold", r));
                }
                if (!verdicts.isEmpty()) {
                    out.add(f("Paper finding 3 (StreamingLLM): streaming_llm with positions cache stays stable past the trained context, where the full "
                            + "cache's perplexity goes %.2fx. Criterion: its perplexity past the trained context at most %.1fx its own at the trained context. %s.",
                            fp.ppl(last) / fp.ppl(at), CLOSE, capitalise(String.join("; ", verdicts))));
                }
            }
        }
        return out;
    }

    /** Whole-key accuracy over the cells whose key lies more than {@code budget} tokens before the question; NaN where none does. */
    static double outsideAccuracy(Eval.Grid g, long budget) {
        int hits = 0, n = 0;
        for (int li = 0; li < g.lengths().length; li++) {
            for (int di = 0; di < g.depths().length; di++) {
                if (!g.outside(li, di, budget)) continue;
                hits += g.hits()[li][di];
                n += g.samples();
            }
        }
        return n == 0 ? Double.NaN : (double) hits / n;
    }

    private static String capitalise(String s) {
        return s.isEmpty() ? s : Character.toUpperCase(s.charAt(0)) + s.substring(1);
    }

    /**
     * For rows whose grid kept the answers: " full 88% of 120; h2o 25% 19% of 120; ..." over the documents whose key
     * lies more than {@code budget} tokens before the question; null when no row kept them or no key lies there.
     */
    static String digitsInPlace(List<Eval.Row> rows, long budget) {
        StringBuilder sb = new StringBuilder();
        for (Eval.Row r : rows) {
            List<Eval.Document> docs = outsideDocuments(r.grid(), budget);
            if (docs.isEmpty()) continue;
            int right = 0, all = 0;
            for (Eval.Document d : docs) {
                String key = d.key(), answer = d.answer().text();
                for (int i = 0; i < key.length(); i++) if (i < answer.length() && answer.charAt(i) == key.charAt(i)) right++;
                all += key.length();
            }
            sb.append(f(" %s %.0f%% of %d;", name(r), 100.0 * right / all, all));
        }
        if (sb.isEmpty()) return null;
        sb.setLength(sb.length() - 1);
        return sb.toString();
    }

    /**
     * For rows whose grid kept the key's entries: " full 100%, 100%, 100%, 100%; h2o 25% 60%, 35%, 2%, 0%; ..." (layer
     * 0 first, each over the layer's lanes and the documents whose key lies more than {@code budget} tokens before the
     * question); null when no row kept them or no key lies there.
     */
    static String keyKeptByLayer(List<Eval.Row> rows, long budget) {
        StringBuilder sb = new StringBuilder();
        for (Eval.Row r : rows) {
            int kvHeads = r.grid().kvHeads();
            List<Eval.Document> docs = kvHeads < 1 ? List.of() : outsideDocuments(r.grid(), budget);
            if (docs.isEmpty()) continue;
            int layers = docs.getFirst().answer().keyKept().length / kvHeads;
            long[] kept = new long[layers], all = new long[layers];
            for (Eval.Document d : docs) {
                int[] lanes = d.answer().keyKept();
                for (int i = 0; i < lanes.length; i++) {
                    kept[i / kvHeads] += lanes[i];
                    all[i / kvHeads] += d.answer().keyEntries();
                }
            }
            sb.append(' ').append(name(r));
            for (int l = 0; l < kept.length; l++) sb.append(l == 0 ? " " : ", ").append(f("%.0f%%", 100.0 * kept[l] / Math.max(1, all[l])));
            sb.append(';');
        }
        if (sb.isEmpty()) return null;
        sb.setLength(sb.length() - 1);
        return sb.toString();
    }

    /** The documents of a grid that kept them whose key lies more than {@code budget} tokens before the question. */
    private static List<Eval.Document> outsideDocuments(Eval.Grid g, long budget) {
        List<Eval.Document> out = new ArrayList<>();
        if (g.documents() == null) return out;
        for (int li = 0; li < g.lengths().length; li++) {
            for (int di = 0; di < g.depths().length; di++) if (g.outside(li, di, budget)) out.addAll(List.of(g.documents()[li][di]));
        }
        return out;
    }

    /** A row's name in the findings: "full" for the full cache, else its label. */
    private static String name(Eval.Row r) {
        return r.policy().full() ? "full" : r.policy().label();
    }

    /**
     * With more than one text window: the range over windows of row {@code p}'s perplexity in bucket {@code i} against
     * {@code base}'s in the same bucket of the same window, as " (per text window 0.98x-2.41x over 8 windows)".
     */
    static String spread(Eval.Perplexity p, Eval.Perplexity base, int i) {
        int n = Math.min(p.windows(), base.windows());
        if (n < 2) return "";
        double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
        for (int w = 0; w < n; w++) {
            double r = p.ppl(w, i) / base.ppl(w, i);
            lo = Math.min(lo, r);
            hi = Math.max(hi, r);
        }
        return f(" (per text window %.2fx-%.2fx over %d windows)", lo, hi, n);
    }

    private static String share(int[] hitsOfN) {
        return hitsOfN[1] == 0 ? "-" : f("%.0f%% of %d", 100.0 * hitsOfN[0] / hitsOfN[1], hitsOfN[1]);
    }

    /** The row of a core policy at a budget (NaN: the full cache), or null. */
    private static Eval.Row find(List<Eval.Row> rows, String name, double budget) {
        for (Eval.Row r : rows) {
            // the row as the budget rule makes it: not one with arguments of its own (h2o(recent = 0.1))
            if (r.policy().file() != null || r.policy().attention() != null || !r.policy().args().isEmpty() || !name.equals(r.policy().name())) continue;
            if (Double.isNaN(budget) ? r.policy().full() : r.policy().budget() == budget) return r;
        }
        return null;
    }

    private static String f(String format, Object... args) {
        return String.format(Locale.ROOT, format, args);
    }
}
