/**
 * The tensor-level IR of kvpc: policies as blocks of SSA definitions over named-axis tensors and token sets, with
 * the effects (keep, evict, attend, merge, store, state writes) as instructions. Nodes are records under sealed
 * interfaces with their invariants checked in constructors; no backend code lives here. {@link dev.kvpc.ir.IrPrinter}
 * and {@link dev.kvpc.ir.IrParser} give the text form, {@link dev.kvpc.ir.Verifier} the well-formedness rules,
 * and {@code dev.kvpc.ir.pass} the optimisation pipeline.
 */
package dev.kvpc.ir;
