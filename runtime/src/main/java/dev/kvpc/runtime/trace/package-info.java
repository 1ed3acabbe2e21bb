/**
 * Traces: what one sequence feeds to the KV cache (a model shape, a prefill, possibly in chunks, then decode
 * steps, with the new keys, values and queries of every layer), the common input on which the reference
 * interpreter, the compiled backends and the runtime are tested. {@link dev.kvpc.runtime.trace.Trace} holds
 * one, {@link dev.kvpc.runtime.trace.TraceGenerator} makes random ones with planted attention structure
 * (sinks, heavy hitters, repeats, a needle), {@link dev.kvpc.runtime.trace.TraceIO} reads and writes the
 * binary file and {@link dev.kvpc.runtime.trace.TraceText} a text form for tiny hand-written traces.
 */
package dev.kvpc.runtime.trace;
