#!/usr/bin/env python3
"""Decode attention on an NVIDIA GPU: kvpc's kernels, emitted as CUDA C, run through CuPy, against PyTorch.

A GPU machine may have CUDA, CuPy and PyTorch but no JDK: the kernels come from benchmarks/gpu/kernels (written by
kvpc's CUDA emitter from the same kernel IR as the OpenCL kernels; ExportCudaTest keeps them current). For each
shape and lane length the script runs one decode step's attention (a GQA group of query heads over n entries, f32
keys and values, with the column sums H2O-style policies read), checks the output and column sums against PyTorch
(softmax(q k^T / sqrt(d)) v in float64), and times kvpc's three kernels against PyTorch's scaled_dot_product_attention
on the same data, with CUDA events. It prints the card's name with every figure.

    python3 benchmarks/gpu/decode_attention.py [--entries 1024,4096,16384,65536] [--rounds 100] [--dry-run]

--dry-run needs neither CuPy nor a GPU: it checks that the arguments the script passes match each kernel's signature
in the .cu files (names and order), which is what a change to the kernels could break.
"""
import argparse
import json
import math
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
KERNELS = HERE / "kernels"

# What the script passes to each kernel, in order: as DenseDecodeRunner (backends/gpu tests) passes them on OpenCL, for one query.
ARGS = {
    "decode_partial": ["q", "keys", "values", "pos", "attend", "weights", "pm", "ps", "po", "qposs", "n", "scale", "head0"],
    "decode_merge": ["pm", "ps", "po", "out", "mstar", "sinv", "splits"],
    "decode_colsums": ["weights", "pm", "mstar", "sinv", "colsums", "n", "splits", "heads"],
}


def signatures(source):
    """Each kernel's parameter names, in order, as the .cu text declares them."""
    out = {}
    for m in re.finditer(r'__global__ void (?:__launch_bounds__\(\d+\) )?(\w+)\(([^)]*)\)', source):
        out[m.group(1)] = [p.strip().split()[-1] for p in m.group(2).split(",")]
    return out


def check_signatures(index):
    for k in index["kernels"]:
        sig = signatures((KERNELS / k["file"]).read_text())
        for name, args in ARGS.items():
            if sig.get(name) != args:
                sys.exit(f"{k['file']}: {name} takes {sig.get(name)}, the script passes {args}")
    print(f"dry run: {len(index['kernels'])} kernel files, every kernel's parameters match what the script passes")


def run(index, entries, rounds):
    import cupy as cp
    import numpy as np
    import torch

    props = cp.cuda.runtime.getDeviceProperties(0)
    card = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    print(f"device: {card}, CUDA runtime {cp.cuda.runtime.runtimeGetVersion()}, CuPy {cp.__version__}, PyTorch {torch.__version__}")
    print(f"{'head dim':>8} {'group':>5} {'entries':>8} {'kvpc us':>9} {'torch us':>9} {'kvpc GB/s':>10} {'max err':>9}  card")
    for k in index["kernels"]:
        d, g, wg, ch = k["head_dim"], k["group"], k["work_group"], k["chunk"]
        module = cp.RawModule(code=(KERNELS / k["file"]).read_text())
        partial, merge, colsums = (module.get_function(n) for n in ("decode_partial", "decode_merge", "decode_colsums"))
        for n in entries:
            rng = np.random.default_rng(n * 31 + d + g)
            keys = cp.asarray(rng.standard_normal((n, d), dtype=np.float32) * 1.5 + 0.3)
            values = cp.asarray(rng.standard_normal((n, d), dtype=np.float32))
            q = cp.asarray(rng.standard_normal((g, d), dtype=np.float32))
            pos = cp.arange(n, dtype=cp.int32)
            attend = cp.ones(n, dtype=cp.int32)
            qposs = cp.asarray([n - 1], dtype=cp.int32)
            splits = (n + ch - 1) // ch
            weights = cp.empty(g * n, dtype=cp.float32)
            pm = cp.empty(g * splits, dtype=cp.float32)
            ps = cp.empty(g * splits, dtype=cp.float32)
            po = cp.empty(g * splits * d, dtype=cp.float32)
            out = cp.empty(g * d, dtype=cp.float32)
            mstar = cp.empty(g, dtype=cp.float32)
            sinv = cp.empty(g, dtype=cp.float32)
            col = cp.zeros(n, dtype=cp.float32)
            scale = np.float32(1.0 / math.sqrt(d))

            def step():
                partial((splits, 1, 1), (wg, 1, 1), (q, keys, values, pos, attend, weights, pm, ps, po, qposs, np.int32(n), scale, np.int32(0)))
                merge((g, 1, 1), (wg, 1, 1), (pm, ps, po, out, mstar, sinv, np.int32(splits)))
                colsums(((n + wg - 1) // wg, 1, 1), (wg, 1, 1), (weights, pm, mstar, sinv, col, np.int32(n), np.int32(splits), np.int32(g)))

            step()
            cp.cuda.Device().synchronize()
            # the reference, in float64
            kt, vt, qt = (torch.as_tensor(cp.asnumpy(a), dtype=torch.float64) for a in (keys, values, q))
            p = torch.softmax(qt @ kt.T / math.sqrt(d), dim=1)
            ref, ref_col = (p @ vt).numpy().reshape(-1), p.sum(dim=0).numpy()
            got, got_col = cp.asnumpy(out), cp.asnumpy(col)
            err = float(np.max(np.abs(got - ref)) / max(1e-30, float(np.max(np.abs(ref)))))
            col_err = float(np.max(np.abs(got_col - ref_col) / np.maximum(np.abs(ref_col), 1e-9)))
            if err > 2e-5 or col_err > 2e-5:
                sys.exit(f"d{d} g{g} n{n}: kvpc's output differs from the reference by {err:.2e} (column sums {col_err:.2e})")
            kvpc_us = timed(cp, step, rounds)
            # PyTorch on the same data: one query per head, the group's heads over the same keys and values
            tq = torch.as_tensor(q, device="cuda").view(1, g, 1, d)
            tk = torch.as_tensor(keys, device="cuda").view(1, 1, n, d).expand(1, g, n, d)
            tv = torch.as_tensor(values, device="cuda").view(1, 1, n, d).expand(1, g, n, d)
            torch_us = timed(cp, lambda: torch.nn.functional.scaled_dot_product_attention(tq, tk, tv), rounds)
            gbs = 2 * n * d * 4 / (kvpc_us * 1e-6) / 1e9
            print(f"{d:>8} {g:>5} {n:>8} {kvpc_us:>9.1f} {torch_us:>9.1f} {gbs:>10.1f} {err:>9.1e}  {card}")


def timed(cp, fn, rounds):
    """Median microseconds of fn over rounds, by CUDA events, after a warm-up."""
    for _ in range(10):
        fn()
    times = []
    for _ in range(rounds):
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end) * 1000.0)
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", default="1024,4096,16384,65536", help="lane lengths, comma-separated")
    ap.add_argument("--rounds", type=int, default=100, help="timed rounds per figure (the median is printed)")
    ap.add_argument("--dry-run", action="store_true", help="only check the kernels' signatures against the arguments passed")
    a = ap.parse_args()
    index = json.loads((KERNELS / "kernels.json").read_text())
    check_signatures(index)
    if a.dry_run:
        return
    try:
        entries = [int(x) for x in a.entries.split(",")]
    except ValueError:
        sys.exit(f"--entries: whole numbers separated by commas, not {a.entries!r}")
    if any(n < 1 for n in entries) or a.rounds < 1:
        sys.exit("--entries and --rounds must be at least 1")
    run(index, entries, a.rounds)


if __name__ == "__main__":
    main()
