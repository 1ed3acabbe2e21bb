package dev.kvpc.compiler.check;

import dev.kvpc.ir.Signal;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

/**
 * The checker's signal tables and the IR's {@link Signal} name the same signals, and the facts the checker asks of
 * them (which gain a head axis, which have a row per query) are those the language defines.
 */
class SignalTableTest {
    @Test
    void everySignalTheCheckerKnowsIsAnIrSignalAndEveryIrSignalIsReadable() {
        Set<String> named = new TreeSet<>();
        for (Map<String, Type.Tensor> table : java.util.List.of(Signals.LOCATION, Signals.POLICY, Signals.ATTENTION, Signals.FN)) {
            for (String name : table.keySet()) {
                assertNotNull(Signal.of(name), name);
                named.add(name);
            }
        }
        Set<String> all = new TreeSet<>();
        for (Signal s : Signal.values()) all.add(s.word());
        // the whole prompt's attention has no word: it is what sum(attn, over: prompt, group) reads
        all.remove(Signal.PROMPT_ATTN.word());
        assertEquals(all, named);
    }

    @Test
    void factsAreTheLanguagesOwn() {
        Set<String> perLane = new TreeSet<>(), queryRows = new TreeSet<>(), location = new TreeSet<>();
        for (Signal s : Signal.values()) {
            if (Signals.perLane(s.word())) perLane.add(s.word());
            if (Signals.queryRows(s.word())) queryRows.add(s.word());
            if (s.location()) location.add(s.word());
        }
        assertEquals(new TreeSet<>(Set.of("k", "v", "q", "attn", "logits", "pos", "age", "index", "qpos", "prompt_attn")), perLane);
        assertEquals(new TreeSet<>(Set.of("q", "attn", "logits", "qpos", "prompt_attn")), queryRows);
        // the channel numbers are the same in every lane too, but only policies read them (a vector, not a number)
        Set<String> fixed = new TreeSet<>(Signals.LOCATION.keySet());
        fixed.add("channel");
        assertEquals(fixed, location);
    }
}
