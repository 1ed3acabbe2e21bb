/**
 * The {@code kvpc} command line (picocli). It calls the compiler's API and never names a backend.
 */
package dev.kvpc.cli;
