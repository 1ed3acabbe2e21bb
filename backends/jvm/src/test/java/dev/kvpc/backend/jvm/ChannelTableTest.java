package dev.kvpc.backend.jvm;

import dev.kvpc.backend.interp.Result;
import dev.kvpc.runtime.trace.Trace;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * Channel tables ({@code table[channel]}): one row of channel values per (layer, KV head). The table here is one-hot
 * per lane, at channel {@code 5 * layer + 3 * head + 1}, with 1 there except lane (1, 1), which has 4; a score that
 * weighs the keys by it is the key's value at that channel. Kept sets computed by hand from the trace's keys, at
 * the small shape (2 layers x 2 KV heads x 32 channels); compiled code agrees with the interpreter on its events
 * and on the runtime's lanes.
 */
class ChannelTableTest {
    static final int LAYERS = 2, HEADS = 2, D = 32, PROMPT = 12;

    static int channel(int l, int h) {
        return 5 * l + 3 * h + 1;
    }

    static double weight(int l, int h) {
        return l == 1 && h == 1 ? 4 : 1;
    }

    static Path tables(Path dir) throws IOException {
        StringBuilder sb = new StringBuilder("# one-hot rows: layer 0 head 0, layer 0 head 1, layer 1 head 0, layer 1 head 1\n");
        for (int l = 0; l < LAYERS; l++) {
            for (int h = 0; h < HEADS; h++) {
                for (int c = 0; c < D; c++) sb.append(c == 0 ? "" : "\t").append(c == channel(l, h) ? weight(l, h) : 0.0);
                sb.append('\n');
            }
        }
        Files.writeString(dir.resolve("onehot.tsv"), sb.toString());
        Files.writeString(dir.resolve("cells.tsv"), "1.0\t0.25\n2.0\t3.0\n");
        return dir;
    }

    /** Each lane keeps its own channel's best entries: the table's row at the lane's cell; the count is the whole table's max. */
    @Test
    void aLaneReadsItsOwnRow(@TempDir Path dir) throws IOException {
        Trace t = dev.kvpc.backend.interp.PolicyText.trace(21, PROMPT, 1);
        Result r = CompiledOnLanes.everyEngine("onehot", """
                policy onehot(w: table[channel] = "onehot.tsv") {
                    on prefill {
                        keep top(sum(k * w, over: channel) within first(len - 1), int(quantile(w, 1.0))) + last(1)
                    }
                }
                """, tables(dir), t);
        // quantile over the whole table: 4 (lane (1, 1)'s weight), not the row's own maximum
        eachLane(r, 4, (l, h, p) -> t.key(l, p, h)[channel(l, h)]);
    }

    /** Under per-layer selection a channel table is the layer's rows, [head, channel]: lane (1, 1)'s weight 4 wins its layer. */
    @Test
    void perLayerSelectionReadsTheLayersRows(@TempDir Path dir) throws IOException {
        Trace t = dev.kvpc.backend.interp.PolicyText.trace(22, PROMPT, 1);
        Result r = CompiledOnLanes.everyEngine("layerwise", """
                policy layerwise(w: table[channel] = "onehot.tsv") {
                    selection per layer
                    on prefill {
                        keep top(sum(k * w, over: channel) within first(len - 1), 5) + last(1)
                    }
                }
                """, tables(dir), t);
        layerwise(r, t, (l, h, p) -> weight(l, h) * t.key(l, p, h)[channel(l, h)]);
    }

    /** A table of cells under per-layer selection is the layer's heads, [head] (it used to stop specialisation). */
    @Test
    void perLayerSelectionReadsTheLayersCells(@TempDir Path dir) throws IOException {
        Trace t = dev.kvpc.backend.interp.PolicyText.trace(23, PROMPT, 1);
        Result r = CompiledOnLanes.everyEngine("cells", """
                policy cells(g: table = "cells.tsv") {
                    selection per layer
                    on prefill {
                        keep top(sum(abs(k), over: channel) * g within first(len - 1), 5) + last(1)
                    }
                }
                """, tables(dir), t);
        double[][] g = {{1.0, 0.25}, {2.0, 3.0}};
        layerwise(r, t, (l, h, p) -> {
            double s = 0;
            for (float x : t.key(l, p, h)) s += Math.abs(x);
            return g[l][h] * s;
        });
    }

    /**
     * A table of cells read per entry under lane selection: the lane's cell weighs each entry's position (it used to
     * stop specialisation, "uses the table per entry").
     */
    @Test
    void aCellTableWeighsEntriesAtRunTime(@TempDir Path dir) throws IOException {
        Trace t = dev.kvpc.backend.interp.PolicyText.trace(24, PROMPT, 1);
        Result r = CompiledOnLanes.everyEngine("cellweight", """
                policy cellweight(g: table = "cells.tsv") {
                    on prefill {
                        keep top(sum(abs(k), over: channel) + g * float(pos) within first(len - 1), 4) + last(1)
                    }
                }
                """, tables(dir), t);
        double[][] g = {{1.0, 0.25}, {2.0, 3.0}};
        eachLane(r, 4, (l, h, p) -> {
            double s = 0;
            for (float x : t.key(l, p, h)) s += Math.abs(x);
            return s + g[l][h] * p;
        });
    }

    /**
     * A channel table's row reduced to one value is a lane constant: it chooses a lane's policy in {@code heads where}
     * (it used to stop specialisation, "guard ... is not a lane constant"). The rows sum to 1, except lane (1, 1)'s to 4.
     */
    @Test
    void aReducedRowChoosesTheLanesPolicy(@TempDir Path dir) throws IOException {
        Trace t = dev.kvpc.backend.interp.PolicyText.trace(25, PROMPT, 1);
        Result r = CompiledOnLanes.everyEngine("guarded", """
                import "full.kvp"
                import "window.kvp"
                policy guarded(w: table[channel] = "onehot.tsv") {
                    heads where sum(w, over: channel) > 2.0 use full otherwise use window(size = 5)
                }
                """, tables(dir), t);
        for (int l = 0; l < LAYERS; l++) {
            for (int h = 0; h < HEADS; h++) {
                int from = l == 1 && h == 1 ? 0 : PROMPT - 5;
                int[] want = java.util.stream.IntStream.range(from, PROMPT).toArray();
                assertArrayEquals(want, CompiledOnLanes.kept(r, 0, l, h), "lane " + l + "," + h);
            }
        }
    }

    interface Score {
        double at(int layer, int head, int position);
    }

    /** Each lane: its own n best positions among 0 .. PROMPT - 2, plus the last entry. */
    private static void eachLane(Result r, int n, Score score) {
        for (int l = 0; l < LAYERS; l++) {
            for (int h = 0; h < HEADS; h++) {
                int layer = l, head = h;
                TreeSet<Integer> want = new TreeSet<>(best(PROMPT - 1, n, p -> score.at(layer, head, p)));
                want.add(PROMPT - 1);
                assertArrayEquals(want.stream().mapToInt(Integer::intValue).toArray(), CompiledOnLanes.kept(r, 0, l, h), "lane " + l + "," + h);
            }
        }
    }

    /** Per layer: the 5 best (head, position) pairs over positions 0 .. PROMPT - 2 of both heads, plus the last entry. */
    private static void layerwise(Result r, Trace t, Score score) {
        for (int l = 0; l < LAYERS; l++) {
            List<int[]> all = new ArrayList<>();
            for (int h = 0; h < HEADS; h++) for (int p = 0; p < PROMPT - 1; p++) all.add(new int[] {h, p});
            int layer = l;
            all.sort(Comparator.comparingDouble((int[] x) -> -score.at(layer, x[0], x[1])));
            for (int h = 0; h < HEADS; h++) {
                TreeSet<Integer> want = new TreeSet<>();
                for (int[] x : all.subList(0, 5)) if (x[0] == h) want.add(x[1]);
                want.add(PROMPT - 1);
                assertArrayEquals(want.stream().mapToInt(Integer::intValue).toArray(), CompiledOnLanes.kept(r, 0, l, h), "lane " + l + "," + h);
            }
        }
    }

    /** The n positions among 0 .. candidates - 1 with the highest score. */
    private static List<Integer> best(int candidates, int n, java.util.function.IntToDoubleFunction score) {
        Integer[] p = new Integer[candidates];
        for (int i = 0; i < candidates; i++) p[i] = i;
        Arrays.sort(p, Comparator.comparingDouble((Integer i) -> -score.applyAsDouble(i)));
        return Arrays.asList(p).subList(0, n);
    }
}
