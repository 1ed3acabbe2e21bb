/**
 * The KVP front end: parsing (the only place ANTLR types appear, in {@code parse}), the immutable AST with source
 * spans ({@code ast}), name resolution and the type and shape checker over named axes plus the value-dependent
 * checks ({@code check}), diagnostics ({@code diag}), model shapes ({@code model}), the canonical formatter ({@code
 * fmt}) and the one-call entry point ({@code api.Frontend}).
 */
package dev.kvpc.compiler;
