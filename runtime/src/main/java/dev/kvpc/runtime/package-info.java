/**
 * What a host links: the SPI ({@link dev.kvpc.runtime.ModelSpec}, {@link dev.kvpc.runtime.KvRuntime},
 * {@link dev.kvpc.runtime.Sequence}, {@link dev.kvpc.runtime.PolicyRunner}), the KV store (pages in
 * {@code pool}, packed rows in {@code store}, lanes in {@code lane}), the attention kernel ({@code engine}), the
 * policy jar loader with bytecode verification ({@code load}), and the traces everything is tested on
 * ({@code trace}). docs/runtime.md says what is built and what is next.
 */
package dev.kvpc.runtime;
