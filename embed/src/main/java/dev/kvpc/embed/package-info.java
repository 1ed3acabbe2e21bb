/**
 * kvpc for hosts that compile policies in-process: {@link dev.kvpc.embed.Kvpc} checks and compiles a {@code .kvp}
 * for the host's model and returns the runtime's {@code PolicyRunner} from whichever backend is on the class path.
 * It is the one module that joins the compiler to the runtime, so neither depends on the other.
 */
package dev.kvpc.embed;
