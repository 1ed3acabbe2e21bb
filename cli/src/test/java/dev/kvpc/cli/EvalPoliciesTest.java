package dev.kvpc.cli;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The rows `--policies` names: the budget rules, arguments, labels and the errors, without running anything. */
class EvalPoliciesTest {
    private static List<Eval.Policy> rows(String... names) {
        return Eval.core(List.of(names), new double[] {0.125, 0.25}, 1024, 16);
    }

    @Test
    void budgetRulesGiveEachCorePolicyItsParameters() {
        List<Eval.Policy> quest = rows("quest");
        assertEquals(List.of("quest 12.5%", "quest 25%"), quest.stream().map(Eval.Policy::label).toList());
        // 25% of 1024 tokens: 16 pages of 16 entries attended at each decode step
        assertEquals(Map.of("page", 16L, "pages", 16L), quest.get(1).params());
        assertEquals(Map.of("total", 256L, "window", 32L), rows("pyramidkv").get(1).params());
        assertEquals(List.of("kivi 2-bit"), rows("kivi").stream().map(Eval.Policy::label).toList());
    }

    @Test
    void argumentsLabelTheRowAndJoinTheRuleInOrder() {
        Eval.Policy h2o = rows("h2o(recent = 0.1)").get(1);
        assertEquals("h2o(recent = 0.1) 25%", h2o.label());
        assertEquals(List.of("budget", "recent"), List.copyOf(h2o.params().keySet()));
        assertEquals(0.1, h2o.params().get("recent"));
        assertEquals(Map.of("recent", 0.1), h2o.args());
        Eval.Policy kivi = rows("kivi(bits = 4, residual = 32)").getFirst();
        assertEquals("kivi(residual = 32) 4-bit", kivi.label());
        assertEquals(List.of("bits", "group", "residual"), List.copyOf(kivi.params().keySet()));
        assertEquals(4L, kivi.params().get("bits"));
        // a row without arguments has none, and keeps the rule's order
        assertTrue(rows("snapkv").getFirst().args().isEmpty());
        assertEquals(List.of("budget", "window"), List.copyOf(rows("snapkv").getFirst().params().keySet()));
    }

    @Test
    void badNamesAndArgumentsAreClearErrors() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> rows("lru")).getMessage()
                .contains("no budget rule for policy 'lru'; core policies: full, window, streaming_llm, h2o, tova, snapkv, pyramidkv, kivi, quest"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> rows("quest(pages = 4)")).getMessage()
                .contains("pages is set from --budgets for quest"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> rows("h2o(recent = 0.1, recent = 0.2)")).getMessage()
                .contains("gives 'recent' twice"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> rows("h2o(")).getMessage()
                .contains("is not a policy name, NAME(ARGS), or a .kvp or .jar file"));
    }
}
