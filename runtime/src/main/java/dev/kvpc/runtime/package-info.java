/**
 * What a host links: the SPI, the KV store (lanes, pages, packed precisions), the attention engine and the policy loader. Not built yet.
 *
 * <p>Built so far: {@code dev.kvpc.runtime.trace}, the traces (shape, prefill and decode steps with their keys,
 * values and queries) that the interpreter, the backends and the runtime are tested on, with a generator of
 * planted attention structure and binary and text file forms.
 */
package dev.kvpc.runtime;
