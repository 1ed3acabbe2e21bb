/**
 * What a host links: the SPI, the KV store (lanes, pages, packed precisions), the attention engine and the policy loader. Not built yet.
 */
package dev.kvpc.runtime;
