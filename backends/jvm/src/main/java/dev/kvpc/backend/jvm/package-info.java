/**
 * The JVM backend: IR to classes through ASM, implementing the runtime's interfaces. Built so far: attention variants
 * ({@link dev.kvpc.backend.jvm.VariantCompiler}), bit-exact with the reference interpreter. Policies (event handlers,
 * selection, merging, re-quantisation) from the loop IR are next.
 */
package dev.kvpc.backend.jvm;
