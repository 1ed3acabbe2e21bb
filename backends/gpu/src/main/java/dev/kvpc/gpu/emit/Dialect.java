package dev.kvpc.gpu.emit;

import dev.kvpc.gpu.kir.Expr;
import dev.kvpc.gpu.kir.KType;
import dev.kvpc.gpu.kir.Prim;

/**
 * How a C dialect spells what the kernel IR says: the differences between OpenCL C and CUDA C, as a table. The
 * emitter ({@link CEmitter}) writes the same program for both and asks the dialect for each spelling; a primitive's
 * function names come from its {@link Prim} row.
 */
public enum Dialect {
    OPENCL("", "__kernel void ", "__attribute__((reqd_work_group_size(%d, 1, 1))) ", "__global ", "restrict", "__local ",
            "barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);", "INFINITY"),
    CUDA("#include <cuda_fp16.h>\n", "extern \"C\" __global__ void ", "__launch_bounds__(%d) ", "", "__restrict__", "__shared__ ",
            "__syncthreads();", "__int_as_float(0x7f800000)");

    /** Text at the top of a module. */
    public final String prelude;
    /** What begins a kernel's definition, up to its name; and the work-group size attribute, placed before the name. */
    public final String kernelStart, groupSizeAttribute;
    /** The address space of buffer parameters, the no-alias qualifier, and the local memory qualifier. */
    public final String globalSpace, restrict, localSpace;
    public final String barrier;
    /** Positive infinity. */
    public final String infinity;


    Dialect(String prelude, String kernelStart, String groupSizeAttribute, String globalSpace, String restrict, String localSpace,
            String barrier, String infinity) {
        this.prelude = prelude;
        this.kernelStart = kernelStart;
        this.groupSizeAttribute = groupSizeAttribute;
        this.globalSpace = globalSpace;
        this.restrict = restrict;
        this.localSpace = localSpace;
        this.barrier = barrier;
        this.infinity = infinity;

    }

    /** Text at the top of a module that uses doubles (OpenCL C 1.2 asks for the extension). */
    public String doublePrelude() {
        return this == OPENCL ? "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n" : "";
    }

    /** A primitive's function name (or operator, or cast). */
    public String spell(Prim p) {
        return this == OPENCL ? p.opencl : p.cuda;
    }

    /**
     * A primitive's function name where its first operand is of type {@code operand}: CUDA names float functions
     * with an {@code f} suffix and double ones without (OpenCL's are overloaded).
     */
    public String spell(Prim p, KType operand) {
        boolean real = p.sig == Prim.Sig.FLOAT1 || p.sig == Prim.Sig.FLOAT2 || p.sig == Prim.Sig.FLOAT3;
        return this == CUDA && real && operand == KType.DOUBLE ? p.opencl : spell(p);
    }

    /** The C type of an array element of {@code t}. */
    public String elementType(KType t) {
        return switch (t) {
            case HALF -> this == OPENCL ? "half" : "__half";
            case UCHAR -> "unsigned char";
            default -> t.text;
        };
    }

    /** A work-item coordinate, as an int. */
    public String id(Expr.IdFn fn, int dim) {
        if (this == OPENCL) {
            String f = switch (fn) {
                case GLOBAL_ID -> "get_global_id";
                case LOCAL_ID -> "get_local_id";
                case GROUP_ID -> "get_group_id";
                case LOCAL_SIZE -> "get_local_size";
                case NUM_GROUPS -> "get_num_groups";
            };
            return "((int) " + f + "(" + dim + "))";
        }
        char d = "xyz".charAt(dim);
        return switch (fn) {
            case GLOBAL_ID -> "((int) (blockIdx." + d + " * blockDim." + d + " + threadIdx." + d + "))";
            case LOCAL_ID -> "((int) threadIdx." + d + ")";
            case GROUP_ID -> "((int) blockIdx." + d + ")";
            case LOCAL_SIZE -> "((int) blockDim." + d + ")";
            case NUM_GROUPS -> "((int) gridDim." + d + ")";
        };
    }

    /** Reading element {@code index} of {@code array} whose elements are {@code elem}. */
    public String load(String array, KType elem, String index) {
        if (elem == KType.HALF) return this == OPENCL ? "vload_half(" + index + ", " + array + ")" : "__half2float(" + array + "[" + index + "])";
        if (elem == KType.UCHAR) return "((int) " + array + "[" + index + "])";
        return array + "[" + index + "]";
    }

    /** Writing {@code value} to element {@code index}. */
    public String store(String array, KType elem, String index, String value) {
        if (elem == KType.HALF) return this == OPENCL ? "vstore_half(" + value + ", " + index + ", " + array + ");" : array + "[" + index + "] = __float2half(" + value + ");";
        if (elem == KType.UCHAR) return array + "[" + index + "] = (unsigned char) (" + value + ");";
        return array + "[" + index + "] = " + value + ";";
    }

    /** An atomic add of {@code value} to element {@code index}; {@code local} says which memory the array is in. */
    public String atomicAdd(String array, KType elem, boolean local, String index, String value) {
        if (this == CUDA) return "atomicAdd(&" + array + "[" + index + "], " + value + ");";
        if (elem == KType.INT) return "atomic_add(&" + array + "[" + index + "], " + value + ");";
        return (local ? "kvpc_atomic_add_local" : "kvpc_atomic_add_global") + "(&" + array + "[" + index + "], " + value + ");";
    }

    /** Helper functions a module's atomic float adds need (OpenCL C 1.2 has no float atomic add: a compare-and-swap loop). */
    public String atomicHelpers() {
        if (this == CUDA) return "";
        StringBuilder sb = new StringBuilder();
        for (String space : new String[] {"global", "local"}) {
            sb.append("inline void kvpc_atomic_add_").append(space).append("(volatile __").append(space).append(" float* p, float v) {\n")
                    .append("  union { unsigned int u; float f; } old, upd;\n")
                    .append("  do {\n")
                    .append("    old.f = *p;\n")
                    .append("    upd.f = old.f + v;\n")
                    .append("  } while (atomic_cmpxchg((volatile __").append(space).append(" unsigned int*) p, old.u, upd.u) != old.u);\n")
                    .append("}\n");
        }
        return sb.toString();
    }
}
