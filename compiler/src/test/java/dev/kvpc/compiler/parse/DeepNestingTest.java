package dev.kvpc.compiler.parse;

import dev.kvpc.compiler.api.Compilation;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.diag.Code;
import dev.kvpc.compiler.diag.Diagnostic;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.ir.pass.Pipeline;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Deep input gets a diagnostic where the nesting limit is crossed, not a StackOverflowError: brackets (found before
 * parsing), chains without brackets (else if, ?:, long sums), and input just under the limit compiles.
 */
class DeepNestingTest {
    private static String policy(String body) {
        return "policy deep(budget: int = 64) {\n    state acc: f32 per token = 0\n    on decode { " + body + " }\n"
                + "    on overflow(budget) { keep top(acc, budget) }\n}\n";
    }

    private static Diagnostic only(String text) {
        Frontend.Result r = Frontend.checkText("deep.kvp", text, null, ModelShape.REFERENCE);
        List<Diagnostic> all = r.diagnostics().all();
        assertEquals(1, all.size(), all.toString());
        assertEquals(Code.E001, all.getFirst().code(), all.toString());
        return all.getFirst();
    }

    @Test
    void fiveThousandParenthesesAreAnErrorAtTheOneTooMany() {
        int n = 5000;
        String text = policy("acc += " + "(".repeat(n) + "sum(attn, over: query, group)" + ")".repeat(n));
        Diagnostic d = only(text);
        // the policy's and handler's braces are two levels: the 255th parenthesis is the 257th bracket
        int col = "    on decode { acc += ".length() + 255;
        assertEquals(3, d.span().line());
        assertEquals(col, d.span().col(), d.toString());
        assertTrue(d.message().contains("256"), d.message());
    }

    @Test
    void chainsWithoutBracketsAreAnErrorToo() {
        String ternaries = "acc += " + "len > 3 ? ".repeat(5000) + "1.0" + " : 0.0".repeat(5000);
        assertEquals(3, only(policy(ternaries)).span().line());
        StringBuilder elif = new StringBuilder("if len > 0 { acc += 1.0 }");
        for (int i = 0; i < 3000; i++) elif.append(" else if len > ").append(i).append(" { acc += 1.0 }");
        assertEquals(3, only(policy(elif.toString())).span().line());
        assertEquals(3, only(policy("acc += " + "1.0 + ".repeat(2000) + "1.0")).span().line());
    }

    /** A chain of aliases as deep as the specialiser takes compiles; one more is E112, found by the checker. */
    @Test
    void compositionsNestAtMostAsDeepAsTheSpecialiserGoes() {
        int limit = dev.kvpc.ir.pass.Specialize.MAX_DEPTH;
        StringBuilder text = new StringBuilder("policy base(budget: int = 64) {\n    on overflow(budget) { keep last(budget) }\n}\npolicy a1 = base(budget = 32)\n");
        for (int i = 2; i <= limit; i++) text.append("policy a").append(i).append(" = a").append(i - 1).append('\n');
        Frontend.Result ok = Frontend.checkText("chain.kvp", text.toString(), null, ModelShape.REFERENCE);
        assertTrue(ok.ok(), ok.diagnostics().all().toString());
        Compilation.optimise(ok.program(), "a" + limit, Map.of(), Pipeline.Options.DEFAULT, (a, b) -> { });
        text.append("policy a").append(limit + 1).append(" = a").append(limit).append('\n');
        Frontend.Result deep = Frontend.checkText("chain.kvp", text.toString(), null, ModelShape.REFERENCE);
        List<Diagnostic> all = deep.diagnostics().all();
        assertEquals(1, all.size(), all.toString());
        assertEquals(Code.E112, all.getFirst().code());
        assertEquals(limit + 4, all.getFirst().span().line(), "at the alias that crosses the limit");
    }

    @Test
    void justUnderTheLimitCompiles() {
        String ternaries = "acc += " + "len > 3 ? ".repeat(250) + "1.0" + " : 0.0".repeat(250);
        Frontend.Result r = Frontend.checkText("deep.kvp", policy(ternaries), null, ModelShape.REFERENCE);
        assertTrue(r.ok(), r.diagnostics().all().toString());
        Compilation.optimise(r.program(), "deep", Map.of(), Pipeline.Options.DEFAULT, (a, b) -> { });
    }
}
