package dev.kvpc.cli;

import dev.kvpc.gpu.cl.ClDevice;
import dev.kvpc.gpu.cl.ClException;
import dev.kvpc.gpu.cl.OpenCl;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "devices", description = {"List the OpenCL platforms and devices kvpc can run on, numbered as --device opencl:N takes them",
        "(also opencl:P:D, or opencl:NAME for the first device whose name, vendor or platform contains NAME)."})
final class DevicesCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        List<ClDevice> devices;
        OpenCl cl;
        try {
            cl = OpenCl.get();
            devices = cl.devices();
        } catch (ClException e) {
            err.println("kvpc devices: " + e.getMessage());
            return Main.UNAVAILABLE;
        }
        if (devices.isEmpty()) {
            err.println("kvpc devices: the OpenCL library " + cl.library() + " lists no device (no platform is installed: on Debian, pocl-opencl-icd runs OpenCL on the CPU)");
            return Main.UNAVAILABLE;
        }
        ClDevice first = null;
        for (ClDevice d : devices) if (first == null && d.type().equals("GPU")) first = d;
        if (first == null) first = devices.get(0);
        out.println("OpenCL library: " + cl.library());
        for (ClDevice d : devices) out.println((d == first ? "* " : "  ") + d.summary() + (d.fp64() ? "" : ", no fp64"));
        out.println("* the device --device opencl picks by default");
        out.flush();
        return Main.OK;
    }
}
