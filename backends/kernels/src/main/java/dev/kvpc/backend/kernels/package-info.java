/**
 * Data-parallel kernel IR and its emitters (OpenCL C, TornadoVM, plain Java). Not built yet.
 */
package dev.kvpc.backend.kernels;
