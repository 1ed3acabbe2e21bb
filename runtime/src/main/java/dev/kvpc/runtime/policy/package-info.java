/**
 * What compiled policy code calls: {@link dev.kvpc.runtime.policy.LaneContext}, the signals, sets and effects of
 * one event, and {@link dev.kvpc.runtime.policy.CompiledLaneClass}, what the JVM backend's classes implement. The
 * generated code owns the arithmetic (its loops over {@code double[]} buffers); the context owns the lane.
 */
package dev.kvpc.runtime.policy;
