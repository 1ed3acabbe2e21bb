package dev.kvpc.backend.interp;

import dev.kvpc.ir.Instr;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** What the reference semantics keeps for one lane: its entries in position order, and per-lane state. */
final class LaneState {
    /** One cache entry. Keys and values hold what the attention kernel reads (dequantised when stored packed). */
    static final class Entry {
        final int pos;
        final int addedAtStep;
        float[] k, v;
        Instr.Format kFormat, vFormat;
        int kBits, vBits;
        /** Grouping of an integer format: per-channel ({@code true}) or per-token, and the group size. */
        boolean kPerChannel, vPerChannel;
        int kGroup, vGroup;
        double count = 1;
        final boolean compensation;
        final Map<String, double[]> state = new HashMap<>();

        Entry(int pos, int addedAtStep, float[] k, float[] v, boolean compensation) {
            this.pos = pos;
            this.addedAtStep = addedAtStep;
            this.k = k;
            this.v = v;
            this.compensation = compensation;
        }
    }

    final int layer, kvHead;
    final List<Entry> entries = new ArrayList<>();
    final Map<String, Tensor> laneState = new HashMap<>();

    LaneState(int layer, int kvHead) {
        this.layer = layer;
        this.kvHead = kvHead;
    }

    int size() {
        return entries.size();
    }

    Entry compensationEntry() {
        for (Entry e : entries) if (e.compensation) return e;
        return null;
    }

    /** Keeps exactly the entries whose indices are set. */
    void retain(BitSet keep) {
        List<Entry> out = new ArrayList<>();
        for (int i = 0; i < entries.size(); i++) if (keep.get(i)) out.add(entries.get(i));
        entries.clear();
        entries.addAll(out);
    }

    /** Adds an entry keeping position order; the compensation entry stays last. */
    void append(Entry e) {
        Entry comp = compensationEntry();
        if (comp != null && !e.compensation) {
            entries.add(entries.size() - 1, e);
        } else {
            entries.add(e);
        }
    }
}
