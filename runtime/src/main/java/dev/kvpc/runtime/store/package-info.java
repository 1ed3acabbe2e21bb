/**
 * Packed storage codecs of the KV store: how one lane's keys or values are held off-heap
 * ({@link java.lang.foreign.MemorySegment}) at a {@link dev.kvpc.runtime.store.Precision}, and read back
 * (dequantised) by the attention kernel.
 *
 * <ul>
 *   <li>{@link dev.kvpc.runtime.store.Packing}: rows of floats at f32 / f16 / bf16.</li>
 *   <li>{@link dev.kvpc.runtime.store.TokenGroupCodec}: integer rows quantised per token in groups of channels.</li>
 *   <li>{@link dev.kvpc.runtime.store.ChannelBlockCodec}: integer blocks of {@code group} tokens quantised per
 *       channel (KIVI keys).</li>
 *   <li>{@link dev.kvpc.runtime.store.StoreLayout}: byte accounting, the rules of docs/ir.md "Memory
 *       accounting".</li>
 * </ul>
 *
 * Dequantised values equal, bit for bit, what the reference interpreter's {@code Quant} gives. {@code dot} sums
 * {@code q[i] * x'[i]} in float into four lanes by {@code i mod 4}, each in increasing {@code i}, and returns
 * {@code (l0 + l1) + (l2 + l3)}; every codec uses this order, so a dot from packed data equals the same dot of
 * the dequantised row. {@code axpy} does {@code acc[i] = acc[i] + w * x'[i]}. All are allocation-free, and the
 * codecs are immutable and thread-safe.
 */
package dev.kvpc.runtime.store;
