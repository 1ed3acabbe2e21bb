package dev.kvpc.cli;

import dev.kvpc.gpu.cl.OpenCl;
import dev.kvpc.gpu.kernels.OpenClDecodeKernels;
import dev.kvpc.runtime.engine.DecodeKernelProvider;
import picocli.CommandLine;

import java.io.PrintWriter;

/** {@code --device}: where decode attention runs, for the commands that run a model. */
final class Devices {
    private Devices() {
    }

    /** The decode kernels and matrix products of a {@code --device} value, and what to report of them when the run ends. */
    interface Attention extends AutoCloseable {
        DecodeKernelProvider provider();

        /** The matrix products: {@code cpu} on the CPU, the device's own on a device. */
        dev.kvpc.examples.llama.Matmul matmul(dev.kvpc.examples.llama.Matmul cpu);

        /** A policy's runner: the JVM backend's compiled classes on the CPU, the policy's kernels on a device. */
        dev.kvpc.runtime.PolicyRunner policy(dev.kvpc.ir.Specialized program);

        /** Reports, at the end of a run, on the sequence it ran. */
        void report(PrintWriter err, dev.kvpc.runtime.Sequence seq);

        @Override
        void close();
    }

    /**
     * {@code cpu}: the installed kernels (the JVM backend's); {@code opencl[:D]}: the device's. No OpenCL library or no
     * such device is a {@link dev.kvpc.gpu.cl.ClException} (exit 69); a value of another form a usage error.
     */
    static Attention attention(CommandLine.Model.CommandSpec spec, String device, PrintWriter err) {
        if (device.equals("cpu")) {
            return new Attention() {
                public DecodeKernelProvider provider() {
                    return DecodeKernelProvider.installed();
                }

                public dev.kvpc.examples.llama.Matmul matmul(dev.kvpc.examples.llama.Matmul cpu) {
                    return cpu;
                }

                public dev.kvpc.runtime.PolicyRunner policy(dev.kvpc.ir.Specialized program) {
                    return dev.kvpc.embed.Kvpc.runner(program);
                }

                public void report(PrintWriter e, dev.kvpc.runtime.Sequence seq) {
                }

                public void close() {
                }
            };
        }
        if (!device.equals("opencl") && !device.startsWith("opencl:")) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--device is cpu, opencl or opencl:DEVICE, not '" + device + "'");
        }
        String which = device.equals("opencl") ? null : device.substring("opencl:".length());
        // one context: the engine's arrays, the lanes and the policies' buffers are each other's on the device
        dev.kvpc.gpu.cl.ClContext mmContext = new dev.kvpc.gpu.cl.ClContext(OpenCl.get().select(which));
        OpenClDecodeKernels k = new OpenClDecodeKernels(mmContext);
        // the engine's arithmetic stays on the device between products where it has doubles (ClMatmul.forEngine), and
        // policy kernels, which compute in double, run there on the same condition
        dev.kvpc.gpu.kernels.ClMatmul mm = dev.kvpc.gpu.kernels.ClMatmul.forEngine(mmContext);
        boolean doubles = mm.isResident();
        java.util.List<dev.kvpc.gpu.policy.ClPolicies.DeviceRunner> policies = new java.util.ArrayList<>();
        err.println(doubles ? "kvpc: decode attention, the engine's arithmetic and the policy's kernels on OpenCL device " + k.device().summary()
                : "kvpc: decode attention and the matrix products on OpenCL device " + k.device().summary() + "; it has no double precision (cl_khr_fp64), so "
                + "the norms, gates and policies run on the CPU");
        err.flush();
        return new Attention() {
            public DecodeKernelProvider provider() {
                return k;
            }

            public dev.kvpc.examples.llama.Matmul matmul(dev.kvpc.examples.llama.Matmul cpu) {
                return mm;
            }

            public dev.kvpc.runtime.PolicyRunner policy(dev.kvpc.ir.Specialized program) {
                if (!doubles) return dev.kvpc.embed.Kvpc.runner(program);
                dev.kvpc.gpu.policy.ClPolicies.DeviceRunner r = dev.kvpc.gpu.policy.ClPolicies.runner(program, mmContext);
                policies.add(r);
                return r.runner();
            }

            public void report(PrintWriter e, dev.kvpc.runtime.Sequence seq) {
                e.printf(java.util.Locale.ROOT, "%d attention calls ran on %s (one per lane and step), and %d matrix products with the norms, gates and "
                        + "residual adds between them (weights on the device: %s; %d activation transfers); "
                        + "KV pages on the device: %s (%d bytes; the runtime's: %d bytes; device buffers of %s)%n", k.calls(), k.device().name(), mm.calls(),
                        RunCommand.bytes(mm.weightBytes()), mm.transfers(), RunCommand.bytes(k.deviceKvBytes()), k.deviceKvBytes(), seq.kvBytes(),
                        RunCommand.bytes(k.deviceKvBytesReserved()));
                e.printf(java.util.Locale.ROOT, "keys and values appended on the device: %d rows (%d launches); there, %d rows moved within their chains, %d "
                        + "stored at other formats, %d blocks packed per channel and %d merged; %d pages brought to the host for the policy's reads%n",
                        k.rowWriter().rowsWritten(), k.rowWriter().launches(), k.rowWriter().rowsMoved(), k.rowWriter().rowsConverted(),
                        k.rowWriter().blocksPacked(), k.rowWriter().rowsMerged(), k.rowWriter().pagesFilled());
                for (dev.kvpc.gpu.policy.ClPolicies.DeviceRunner p : policies) {
                    e.printf(java.util.Locale.ROOT, "the policy's loop nests and rankings: %d kernel launches on the device%n", p.launches());
                }
            }

            public void close() {
                k.close();
                mmContext.close();
            }
        };
    }
}
