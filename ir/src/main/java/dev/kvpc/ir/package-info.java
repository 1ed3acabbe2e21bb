/**
 * The IR of kvpc: a tensor-level IR over named axes and a loop-level IR that backends emit from, their text forms, verifier and optimisation passes. Lowering from the checked AST starts here (issue: IR and passes); until then this module holds no code.
 */
package dev.kvpc.ir;
