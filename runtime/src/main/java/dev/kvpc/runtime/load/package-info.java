/**
 * Loading compiled policies: a policy jar holds classes and {@code META-INF/kvpc-policy.properties}
 * ({@link dev.kvpc.runtime.load.PolicyManifest}: source hash, compiler version, model-shape constraints, evidence
 * needed, predicted memory per lane, entry class). {@link dev.kvpc.runtime.load.PolicyJarLoader#load} reads the jar,
 * checks the constraints against the host's {@link dev.kvpc.runtime.load.ModelShapeSpec}, verifies every class with
 * {@link dev.kvpc.runtime.load.BytecodeVerifier} (policy code may reach only its own classes, the runtime API and the
 * JDK subset in {@code Whitelist}: no reflection, I/O, threads, class loading, {@code System} or {@code Unsafe}), and
 * defines the classes in a fresh class loader. Every failure is a {@link dev.kvpc.runtime.load.PolicyLoadException}
 * with a message for the user.
 */
package dev.kvpc.runtime.load;
