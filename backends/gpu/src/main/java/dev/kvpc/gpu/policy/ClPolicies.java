package dev.kvpc.gpu.policy;

import dev.kvpc.backend.jvm.JvmBackend;
import dev.kvpc.gpu.cl.ClContext;
import dev.kvpc.ir.Specialized;
import dev.kvpc.ir.loop.LoopLowering;
import dev.kvpc.runtime.PolicyRunner;
import dev.kvpc.runtime.exec.NativeRunner;
import dev.kvpc.runtime.policy.CompiledLaneClass;

import java.util.ArrayList;
import java.util.List;

/** A specialised policy's lane classes on an OpenCL device: one {@link ClLaneClass} (one program) per class. */
public final class ClPolicies {
    private ClPolicies() {}

    /**
     * @throws dev.kvpc.gpu.cl.ClException when the device has no double precision ({@code cl_khr_fp64}), which policy
     *     kernels compute in
     */
    public static List<ClLaneClass> compile(Specialized program, ClContext cl) {
        if (!cl.device().fp64()) {
            throw new dev.kvpc.gpu.cl.ClException("OpenCL device " + cl.device().name() + " has no double precision (cl_khr_fp64), which policy kernels compute in, "
                    + "as the interpreter and the JVM backend do; kvpc devices marks such devices 'no fp64'");
        }
        List<ClLaneClass> out = new ArrayList<>();
        for (int c = 0; c < program.classes().size(); c++) out.add(new ClLaneClass(LoopLowering.lower(program.classes().get(c)), cl, "c" + c + "_"));
        return out;
    }

    /** A policy on the runtime's lanes with its lane classes on the device, and those classes (for their counts). */
    public record DeviceRunner(PolicyRunner runner, List<ClLaneClass> classes) {
        /** Kernel launches of the policy so far. */
        public long launches() {
            long n = 0;
            for (ClLaneClass c : classes) n += c.launches();
            return n;
        }
    }

    /**
     * {@code program} on the runtime's lanes ({@link NativeRunner}) with its lane classes on {@code cl}; its attention
     * variant is the JVM backend's where attention runs on the CPU (the device's attention kernels lower it themselves).
     */
    public static DeviceRunner runner(Specialized program, ClContext cl) {
        List<ClLaneClass> classes = compile(program, cl);
        return new DeviceRunner(new NativeRunner(program, List.<CompiledLaneClass>copyOf(classes), JvmBackend.variant(program)), classes);
    }
}
