/**
 * Host runtimes that load compiled policies: the llama-family engine in Java and adapters. Not built yet.
 */
package dev.kvpc.examples;
