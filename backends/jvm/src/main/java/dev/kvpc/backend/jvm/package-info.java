/**
 * The JVM backend: loop IR to classes through ASM, implementing the runtime's policy and attention interfaces. Not built yet.
 */
package dev.kvpc.backend.jvm;
