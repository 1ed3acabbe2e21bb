/**
 * The reference semantics: a Truffle interpreter of the IR, the oracle every other backend is tested against. Not built yet.
 */
package dev.kvpc.backend.interp;
