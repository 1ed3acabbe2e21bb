package dev.kvpc.compiler.lower;

import dev.kvpc.compiler.Corpus;
import dev.kvpc.compiler.api.Frontend;
import dev.kvpc.compiler.model.ModelShape;
import dev.kvpc.ir.IrParser;
import dev.kvpc.ir.IrPrinter;
import dev.kvpc.ir.IrProgram;
import dev.kvpc.ir.Verifier;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/** Every stdlib program lowers to IR that verifies, and whose text form parses back to the same text. */
class LoweringTest {
    @TestFactory
    Stream<DynamicTest> stdlibLowersVerifiesAndRoundTrips() {
        return Corpus.stdlib().stream().map(p -> DynamicTest.dynamicTest(p.getFileName().toString(), () -> {
            Frontend.Result r = Frontend.check(p, ModelShape.REFERENCE);
            assertTrue(r.ok());
            IrProgram ir = Lowering.lower(r.program());
            Verifier.verify(ir);
            String text = IrPrinter.print(ir);
            IrProgram again = IrParser.parse(text);
            assertEquals(text, IrPrinter.print(again));
            assertEquals(ir, again, "parsed IR differs from the printed one");
            Verifier.verify(again);
        }));
    }
}
