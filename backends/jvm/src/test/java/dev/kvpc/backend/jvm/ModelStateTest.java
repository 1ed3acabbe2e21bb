package dev.kvpc.backend.jvm;

import dev.kvpc.backend.interp.PolicyText;
import dev.kvpc.backend.interp.Result;
import dev.kvpc.runtime.trace.Trace;
import org.junit.jupiter.api.Test;


import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * {@code per model} state in whole policies at the small shape (2 layers x 2 KV heads), with values and kept sets
 * computed by hand in the reference interpreter; then compiled code gives the same on the interpreter's events and
 * on the runtime's lanes. Lanes run in layer order, then KV head order, and see what earlier lanes wrote this step;
 * overflow handlers settle after the last layer.
 */
class ModelStateTest {
    private static Result run(String root, String text, Trace t) {
        return CompiledOnLanes.everyEngine(root, text, t);
    }

    private static double[] state(Result r, int step, int layer, int head, String name) {
        return r.steps().get(step).lanes()[layer][head].states().get(name);
    }

    private static int[] kept(Result r, int step, int layer, int head) {
        return CompiledOnLanes.kept(r, step, layer, head);
    }

    @Test
    void lanesSeeWhatEarlierLanesWroteThisStep() {
        // one cell for the model: each lane adds one and records the count it saw, in layer then head order
        Result r = run("counter", """
                policy counter() {
                    state seen: i32 per model
                    state order: i32 per lane = 0
                    on prefill, decode {
                        seen += 1
                        order = seen
                    }
                    on overflow(1000) { keep top(float(pos + order + seen), 1000) }
                }
                """, PolicyText.trace(1, 6, 1));
        assertArrayEquals(new double[] {1}, state(r, 0, 0, 0, "order"));
        assertArrayEquals(new double[] {2}, state(r, 0, 0, 1, "order"));
        assertArrayEquals(new double[] {3}, state(r, 0, 1, 0, "order"));
        assertArrayEquals(new double[] {4}, state(r, 0, 1, 1, "order"));
        assertArrayEquals(new double[] {8}, state(r, 1, 1, 1, "order"));
        assertArrayEquals(new double[] {8}, state(r, 1, 0, 0, "seen"));
    }

    @Test
    void aLayerCellIsTheLanesOwnAndAReductionReadsEveryCell() {
        // each lane adds layer + 1 to its layer's cell: cells 2 and 4 once the step is done; a lane reads its own
        // cell as it stands and the sum of the cells so far (cells of layers not yet run are 0)
        Result r = run("cells", """
                policy cells() {
                    state w: f32[layer] per model
                    state own: f32 per lane = 0
                    state tot: f32 per lane = 0
                    state top: f32 per lane = 0
                    on prefill {
                        w += float(layer + 1)
                        own = w
                        tot = sum(w, over: layer)
                        top = max(w, over: layer)
                    }
                    on overflow(1000) { keep top(float(pos) + own + tot + top, 1000) }
                }
                """, PolicyText.trace(2, 6, 0));
        double[][] want = {{1, 1, 1}, {2, 2, 2}, {2, 4, 2}, {4, 6, 4}};
        for (int lane = 0; lane < 4; lane++) {
            int layer = lane / 2, head = lane % 2;
            double[] got = {state(r, 0, layer, head, "own")[0], state(r, 0, layer, head, "tot")[0], state(r, 0, layer, head, "top")[0]};
            assertArrayEquals(want[lane], got, "lane " + layer + "/" + head);
        }
        assertArrayEquals(new double[] {2}, state(r, 0, 0, 1, "w"));
        assertArrayEquals(new double[] {4}, state(r, 0, 1, 0, "w"));
    }

    @Test
    void anInitialValueFillsACellAtTheFirstEventOfItsLanes() {
        Result r = run("started", """
                policy started() {
                    state c: f32[layer] per model = 5.0
                    state tot: f32 per lane = 0
                    on prefill { tot = sum(c, over: layer) }
                    on overflow(1000) { keep top(float(pos) + tot + c, 1000) }
                }
                """, PolicyText.trace(3, 6, 0));
        // layer 0's lanes see their own cell set and layer 1's still at 0; layer 1's see both
        assertArrayEquals(new double[] {5}, state(r, 0, 0, 1, "tot"));
        assertArrayEquals(new double[] {10}, state(r, 0, 1, 0, "tot"));
        assertArrayEquals(new double[] {5}, state(r, 0, 1, 1, "c"));
    }

    @Test
    void sharesSettleAfterTheLastLayer() {
        // weights 1 and 3: shares of 8 are 2 and 6, plus one. Settled at once, layer 0 would see weights 1 and 0 and
        // keep 9.
        Result r = run("shared", """
                policy shared() {
                    state w: f32[layer] per model
                    on prefill { w = float(layer) * 2.0 + 1.0 }
                    on overflow(share(8, w) + 1) { keep last(share(8, w) + 1) }
                }
                """, PolicyText.trace(4, 12, 2));
        assertArrayEquals(new int[] {9, 10, 11}, kept(r, 0, 0, 0));
        assertArrayEquals(new int[] {9, 10, 11}, kept(r, 0, 0, 1));
        assertArrayEquals(new int[] {5, 6, 7, 8, 9, 10, 11}, kept(r, 0, 1, 1));
        assertArrayEquals(new int[] {11, 12, 13}, kept(r, 2, 0, 0));
        assertArrayEquals(new int[] {7, 8, 9, 10, 11, 12, 13}, kept(r, 2, 1, 0));
    }

    @Test
    void laneCellsShareATotalAmongEveryLane() {
        // weights 1, 2, 3, 4 for lanes (0,0), (0,1), (1,0), (1,1): shares of 20 are 2, 4, 6, 8, plus one
        Result r = run("lanes", """
                policy lanes() {
                    state w: f32[layer, head] per model
                    on prefill { w = float(layer * 2 + head + 1) }
                    on overflow(share(20, w) + 1) { keep last(share(20, w) + 1) }
                }
                """, PolicyText.trace(5, 12, 0));
        assertArrayEquals(new int[] {9, 10, 11}, kept(r, 0, 0, 0));
        assertArrayEquals(new int[] {7, 8, 9, 10, 11}, kept(r, 0, 0, 1));
        assertArrayEquals(new int[] {5, 6, 7, 8, 9, 10, 11}, kept(r, 0, 1, 0));
        assertArrayEquals(new int[] {3, 4, 5, 6, 7, 8, 9, 10, 11}, kept(r, 0, 1, 1));
    }

    @Test
    void underPerLayerSelectionAHeadCellIsOneValuePerLane() {
        // the layer's event writes both heads' cells; the sum over every cell after layer 0 is 2, after layer 1 is 4
        Result r = run("heads", """
                policy heads() {
                    selection per layer
                    state hv: f32[layer, head] per model
                    state tot: f32 per lane = 0
                    on prefill {
                        hv += 1.0
                        tot = sum(hv, over: layer, head)
                    }
                    on overflow(1000) { keep top(float(pos) + tot + hv, 1000) }
                }
                """, PolicyText.trace(6, 6, 0));
        assertArrayEquals(new double[] {2}, state(r, 0, 0, 1, "tot"));
        assertArrayEquals(new double[] {4}, state(r, 0, 1, 0, "tot"));
    }

    @Test
    void aStateOverTokensCarriesOneLayersChoiceToTheOthers() {
        // at the prompt, layer 0 marks positions 1, 5 and 9 with 1 and the others with 0; every layer keeps four older
        // entries by the marks (ties to the later) and the newest: layer 1 reads layer 0's marks by its entries'
        // positions. Decoded positions are never marked and read the initial value, -1, below a written 0.
        Result r = run("reuse", """
                policy reuse() {
                    state picked: f32[token] per model = -1.0
                    on prefill {
                        if layer == 0 {
                            picked = pos % 4 == 1 ? 1.0 : 0.0
                        }
                    }
                    on overflow(5) { keep top(picked within all - last(1), 4) + last(1) }
                }
                """, PolicyText.trace(7, 12, 2));
        assertArrayEquals(new int[] {1, 5, 9, 10, 11}, kept(r, 0, 1, 0));
        assertArrayEquals(new int[] {1, 5, 9, 10, 11}, kept(r, 0, 0, 1));
        assertArrayEquals(new int[] {1, 5, 9, 11, 12}, kept(r, 1, 1, 1));
        // 12 reads -1 and 11 its written 0: 11 stays
        assertArrayEquals(new int[] {1, 5, 9, 11, 13}, kept(r, 2, 1, 0));
        assertArrayEquals(new double[] {1, 1, 1, 0, -1}, state(r, 2, 1, 0, "picked"));
    }

    @Test
    void aLaterLayerAttendsWhatAnEarlierOneChoseThisStep() {
        // layer 0 records pos % 3 at each step after its attention; layer 1, before its own attention, attends the two
        // best older entries of that record (2 at positions 2 and 5) and the newest
        Result r = run("tidal", """
                policy tidal() {
                    state picked: f32[head, token] per model
                    on decode {
                        if layer == 1 {
                            attend top(picked within all - last(1), 2) + last(1)
                        }
                    }
                    on prefill, decode {
                        if layer == 0 {
                            picked = float(pos % 3)
                        }
                    }
                }
                """, PolicyText.trace(8, 8, 1));
        assertArrayEquals(new int[] {2, 5, 8}, r.steps().get(1).lanes()[1][0].attended());
        assertArrayEquals(new int[] {2, 5, 8}, r.steps().get(1).lanes()[1][1].attended());
    }

    @Test
    void aLayersEventsAllOpenBeforeAnyFinishes() {
        // at a decode step every lane of a layer chooses its attend set before any lane's other handlers run: head 1
        // does not see the cell head 0 sets after its attention in the same step, only from the next step on
        Result r = run("opened", """
                policy opened() {
                    state w: f32[layer] per model
                    on decode {
                        attend last(w > 0.5 ? 2 : 4)
                    }
                    on decode {
                        w = 1.0
                    }
                }
                """, PolicyText.trace(9, 8, 2));
        assertArrayEquals(new int[] {5, 6, 7, 8}, r.steps().get(1).lanes()[0][1].attended());
        assertArrayEquals(new int[] {8, 9}, r.steps().get(2).lanes()[0][1].attended());
    }
}
