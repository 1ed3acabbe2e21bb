#!/usr/bin/env python3
"""End-to-end decode on an NVIDIA GPU: a llama forward pass made of kvpc's kernels, emitted as CUDA C, run through CuPy.

A GPU machine may have CUDA, CuPy and PyTorch but no JDK: the kernels come from benchmarks/gpu/kernels (written by
kvpc's CUDA emitter from the kernel IR the OpenCL backend runs; ExportCudaTest keeps them current): the matrix
products over F32 or F16 weights (matmul.kir), RMSNorm, the SwiGLU gate and the residual adds (engine.kir), and decode
attention (decode_attention.kir). The model has random weights of a Llama shape (default: 7B's layer, 4 layers), so
no checkpoint is needed; RoPE is the script's own (llama2.c's pairs), applied with CuPy array operations.

For each decode step the script runs the forward pass for one token over a dense f32 KV cache. It first checks the
logits of the first steps against the same forward in float64 with PyTorch, then fills the cache to --context
positions and times --steps decode steps with CUDA events, against PyTorch on the same weights (F.linear, and
scaled_dot_product_attention over the same cache). It prints the card's name with every figure.

    python3 benchmarks/gpu/decode_e2e.py [--layers 4] [--dim 4096] [--hidden 11008] [--heads 32] [--kv-heads 8]
        [--vocab 32000] [--weights f16|f32] [--context 1024] [--steps 64] [--dry-run]

--dry-run needs neither CuPy nor a GPU: it checks that the arguments the script passes match each kernel's signature
in the .cu files (names and order).
"""
import argparse
import json
import math
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
KERNELS = HERE / "kernels"
sys.path.insert(0, str(HERE))
from decode_attention import ARGS as DECODE_ARGS, signatures, timed  # noqa: E402

# What the script passes to each engine kernel, in order: as ClMatmul passes them on OpenCL.
ARGS = {
    "matmul": ["out", "w", "x", "rows", "cols"],
    "rmsnorm": ["o", "x", "w", "n", "row0", "eps"],
    "swiglu": ["h", "g", "count"],
    "add": ["x", "y", "count"],
}
EPS = 1e-5


def check_signatures(index):
    files = {"engine": [index["engine"]["file"]], "matmul": [index["matmul"]["f32"], index["matmul"]["f16"]]}
    for f in files["engine"] + files["matmul"]:
        sig = signatures((KERNELS / f).read_text())
        for name, args in ARGS.items():
            if name in sig and sig[name] != args:
                sys.exit(f"{f}: {name} takes {sig[name]}, the script passes {args}")
    for f in files["matmul"]:
        if "matmul" not in signatures((KERNELS / f).read_text()):
            sys.exit(f"{f} has no matmul kernel")
    sig = signatures((KERNELS / files["engine"][0]).read_text())
    for name in ("rmsnorm", "swiglu", "add"):
        if name not in sig:
            sys.exit(f"{files['engine'][0]} has no {name} kernel")
    for k in index["kernels"]:
        sig = signatures((KERNELS / k["file"]).read_text())
        for name in ("decode_partial", "decode_merge"):
            if sig.get(name) != DECODE_ARGS[name]:
                sys.exit(f"{k['file']}: {name} takes {sig.get(name)}, the script passes {DECODE_ARGS[name]}")
    print(f"dry run: the engine's kernels, {len(files['matmul'])} matrix products and {len(index['kernels'])} attention files match what the script passes")


class Model:
    """Random weights of a Llama shape, on the GPU, in the storage type the products read."""

    def __init__(self, cp, np, a):
        self.L, self.dim, self.hidden, self.heads, self.kvh, self.vocab = a.layers, a.dim, a.hidden, a.heads, a.kv_heads, a.vocab
        self.hd = a.dim // a.heads
        self.kvdim = self.hd * a.kv_heads
        rng = np.random.default_rng(7)
        wt = np.float16 if a.weights == "f16" else np.float32

        def mat(rows, cols):
            return cp.asarray((rng.standard_normal((rows, cols), dtype=np.float32) / math.sqrt(cols)).astype(wt))

        def norm():
            return cp.asarray((1.0 + 0.1 * rng.standard_normal(self.dim)).astype(np.float32))

        self.emb = cp.asarray(rng.standard_normal((a.vocab, a.dim), dtype=np.float32))
        self.wq = [mat(a.dim, a.dim) for _ in range(a.layers)]
        self.wk = [mat(self.kvdim, a.dim) for _ in range(a.layers)]
        self.wv = [mat(self.kvdim, a.dim) for _ in range(a.layers)]
        self.wo = [mat(a.dim, a.dim) for _ in range(a.layers)]
        self.w1 = [mat(a.hidden, a.dim) for _ in range(a.layers)]
        self.w3 = [mat(a.hidden, a.dim) for _ in range(a.layers)]
        self.w2 = [mat(a.dim, a.hidden) for _ in range(a.layers)]
        self.rms_att = [norm() for _ in range(a.layers)]
        self.rms_ffn = [norm() for _ in range(a.layers)]
        self.rms_final = norm()
        self.cls = mat(a.vocab, a.dim)


def rope_tables(np, hd, context):
    """llama2.c's RoPE: pair (2i, 2i + 1) of a head turns by pos / 10000^(2i / head_dim)."""
    i = np.arange(0, hd, 2, dtype=np.float64)
    freq = 1.0 / np.power(10000.0, i / hd)
    ang = np.outer(np.arange(context, dtype=np.float64), freq)
    return np.cos(ang), np.sin(ang)


def rope(v, cos, sin, heads, hd):
    """v (heads * hd) rotated in place by the tables' row (float32 or float64, whatever v is)."""
    r = v.reshape(heads, hd // 2, 2)
    a, b = r[:, :, 0] * 1, r[:, :, 1] * 1
    r[:, :, 0] = a * cos - b * sin
    r[:, :, 1] = a * sin + b * cos


class Kvpc:
    """The forward pass from kvpc's kernels."""

    def __init__(self, cp, np, m, index, context, weights):
        self.cp, self.np, self.m = cp, np, m
        self.g = m.heads // m.kvh
        shape = [k for k in index["kernels"] if k["head_dim"] == m.hd and k["group"] == self.g]
        if not shape:
            sys.exit(f"no attention kernel for head dim {m.hd} and group {self.g}: exported shapes are "
                     + ", ".join(f"d{k['head_dim']} g{k['group']}" for k in index["kernels"]))
        k = shape[0]
        self.wg, self.chunk = k["work_group"], k["chunk"]
        att = cp.RawModule(code=(KERNELS / k["file"]).read_text())
        self.partial, self.merge = att.get_function("decode_partial"), att.get_function("decode_merge")
        eng = cp.RawModule(code=(KERNELS / index["engine"]["file"]).read_text())
        self.rmsnorm_k, self.swiglu_k, self.add_k = (eng.get_function(n) for n in ("rmsnorm", "swiglu", "add"))
        self.mm_wg = index["matmul"]["work_group"]
        self.matmul_k = cp.RawModule(code=(KERNELS / index["matmul"][weights]).read_text()).get_function("matmul")
        f32 = cp.float32
        self.x, self.xb, self.xb2, self.att = (cp.empty(m.dim, f32) for _ in range(4))
        self.q, self.k, self.v = cp.empty(m.dim, f32), cp.empty(m.kvdim, f32), cp.empty(m.kvdim, f32)
        self.hb, self.hb2 = cp.empty(m.hidden, f32), cp.empty(m.hidden, f32)
        self.logits = cp.empty(m.vocab, f32)
        self.kc = [cp.zeros((m.kvh, context, m.hd), f32) for _ in range(m.L)]
        self.vc = [cp.zeros((m.kvh, context, m.hd), f32) for _ in range(m.L)]
        splits = (context + self.chunk - 1) // self.chunk
        self.pos = cp.arange(context, dtype=cp.int32)
        self.attend = cp.ones(context, dtype=cp.int32)
        self.weights = cp.empty(self.g * context, f32)
        self.pm, self.ps = cp.empty(self.g * splits, f32), cp.empty(self.g * splits, f32)
        self.po = cp.empty(self.g * splits * m.hd, f32)
        self.mstar, self.sinv = cp.empty(self.g, f32), cp.empty(self.g, f32)
        cos, sin = rope_tables(np, m.hd, context)
        self.cos, self.sin = cp.asarray(cos.astype(np.float32)), cp.asarray(sin.astype(np.float32))

    def mm(self, out, w, x):
        rows, cols = w.shape
        self.matmul_k((rows, 1, 1), (self.mm_wg, 1, 1), (out, w, x, self.np.int32(rows), self.np.int32(cols)))

    def norm(self, o, x, w):
        self.rmsnorm_k((1, 1, 1), (self.mm_wg, 1, 1), (o, x, w, self.np.int32(x.size), self.np.int32(0), self.np.float32(EPS)))

    def ew(self, kernel, a, b):
        n = a.size
        kernel(((n + 255) // 256, 1, 1), (256, 1, 1), (a, b, self.np.int32(n)))

    def step(self, token, p):
        cp, np, m = self.cp, self.np, self.m
        self.x[:] = m.emb[token]
        n = p + 1
        splits = (n + self.chunk - 1) // self.chunk
        qposs = cp.asarray([p], dtype=cp.int32)
        scale = np.float32(1.0 / math.sqrt(m.hd))
        for layer in range(m.L):
            self.norm(self.xb, self.x, m.rms_att[layer])
            self.mm(self.q, m.wq[layer], self.xb)
            self.mm(self.k, m.wk[layer], self.xb)
            self.mm(self.v, m.wv[layer], self.xb)
            rope(self.q, self.cos[p], self.sin[p], m.heads, m.hd)
            rope(self.k, self.cos[p], self.sin[p], m.kvh, m.hd)
            self.kc[layer][:, p, :] = self.k.reshape(m.kvh, m.hd)
            self.vc[layer][:, p, :] = self.v.reshape(m.kvh, m.hd)
            for h in range(m.kvh):
                q = self.q[h * self.g * m.hd:(h + 1) * self.g * m.hd]
                out = self.att[h * self.g * m.hd:(h + 1) * self.g * m.hd]
                keys, values = self.kc[layer][h], self.vc[layer][h]
                self.partial((splits, 1, 1), (self.wg, 1, 1), (q, keys, values, self.pos, self.attend, self.weights, self.pm, self.ps, self.po,
                                                             qposs, np.int32(n), scale, np.int32(0)))
                self.merge((self.g, 1, 1), (self.wg, 1, 1), (self.pm, self.ps, self.po, out, self.mstar, self.sinv, np.int32(splits)))
            self.mm(self.xb2, m.wo[layer], self.att)
            self.ew(self.add_k, self.x, self.xb2)
            self.norm(self.xb, self.x, m.rms_ffn[layer])
            self.mm(self.hb, m.w1[layer], self.xb)
            self.mm(self.hb2, m.w3[layer], self.xb)
            self.ew(self.swiglu_k, self.hb, self.hb2)
            self.mm(self.xb, m.w2[layer], self.hb)
            self.ew(self.add_k, self.x, self.xb)
        self.norm(self.xb, self.x, m.rms_final)
        self.mm(self.logits, m.cls, self.xb)
        return self.logits


class Torch:
    """The same forward with PyTorch: float64 as the reference, or the weights' own type as the baseline timed."""

    def __init__(self, torch, np, m, context, dtype):
        self.t, self.m, self.dtype = torch, m, dtype
        conv = lambda a: torch.as_tensor(a, device="cuda").to(dtype)  # noqa: E731
        self.w = {n: [conv(w) for w in getattr(m, n)] for n in ("wq", "wk", "wv", "wo", "w1", "w3", "w2", "rms_att", "rms_ffn")}
        self.emb, self.rms_final, self.cls = conv(m.emb), conv(m.rms_final), conv(m.cls)
        acc = torch.float64 if dtype == torch.float64 else torch.float32
        self.acc = acc
        self.kc = [torch.zeros((1, m.kvh, context, m.hd), dtype=acc, device="cuda") for _ in range(m.L)]
        self.vc = [torch.zeros((1, m.kvh, context, m.hd), dtype=acc, device="cuda") for _ in range(m.L)]
        cos, sin = rope_tables(np, m.hd, context)
        self.cos, self.sin = torch.as_tensor(cos, device="cuda").to(acc), torch.as_tensor(sin, device="cuda").to(acc)

    def lin(self, w, x):
        return self.t.nn.functional.linear(x.to(w.dtype), w).to(self.acc)

    def norm(self, x, w):
        return w.to(self.acc) * (x * self.t.rsqrt((x * x).mean() + EPS))

    def step(self, token, p):
        t, m = self.t, self.m
        x = self.emb[token].to(self.acc)
        g = m.heads // m.kvh
        for layer in range(m.L):
            xb = self.norm(x, self.w["rms_att"][layer])
            q, k, v = self.lin(self.w["wq"][layer], xb), self.lin(self.w["wk"][layer], xb), self.lin(self.w["wv"][layer], xb)
            rope(q, self.cos[p], self.sin[p], m.heads, m.hd)
            rope(k, self.cos[p], self.sin[p], m.kvh, m.hd)
            self.kc[layer][0, :, p, :] = k.view(m.kvh, m.hd)
            self.vc[layer][0, :, p, :] = v.view(m.kvh, m.hd)
            keys = self.kc[layer][:, :, :p + 1].repeat_interleave(g, dim=1)
            values = self.vc[layer][:, :, :p + 1].repeat_interleave(g, dim=1)
            o = t.nn.functional.scaled_dot_product_attention(q.view(1, m.heads, 1, m.hd), keys, values)
            x = x + self.lin(self.w["wo"][layer], o.reshape(-1))
            xb = self.norm(x, self.w["rms_ffn"][layer])
            h1, h3 = self.lin(self.w["w1"][layer], xb), self.lin(self.w["w3"][layer], xb)
            x = x + self.lin(self.w["w2"][layer], t.nn.functional.silu(h1) * h3)
        return self.lin(self.cls, self.norm(x, self.rms_final))


def run(index, a):
    import cupy as cp
    import numpy as np
    import torch

    props = cp.cuda.runtime.getDeviceProperties(0)
    card = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    print(f"device: {card}, CUDA runtime {cp.cuda.runtime.runtimeGetVersion()}, CuPy {cp.__version__}, PyTorch {torch.__version__}")
    print(f"model: {a.layers} layers, dim {a.dim}, hidden {a.hidden}, {a.heads} heads, {a.kv_heads} KV heads, vocab {a.vocab}, {a.weights} weights (random)")
    m = Model(cp, np, a)
    kvpc = Kvpc(cp, np, m, index, a.context, a.weights)
    ref = Torch(torch, np, m, a.context, torch.float64)
    rng = np.random.default_rng(11)
    tokens = rng.integers(0, a.vocab, size=a.context).tolist()
    worst = 0.0
    for p in range(min(8, a.context)):
        got = cp.asnumpy(kvpc.step(tokens[p], p)).astype(np.float64)
        want = ref.step(tokens[p], p).cpu().numpy()
        err = float(np.max(np.abs(got - want)) / max(1e-30, float(np.max(np.abs(want)))))
        worst = max(worst, err)
        if err > 2e-3:
            sys.exit(f"step {p}: kvpc's logits differ from the float64 reference by {err:.2e} of the largest")
    print(f"logits of the first {min(8, a.context)} steps within {worst:.1e} of the largest of the float64 reference")
    del ref
    torch.cuda.empty_cache()
    base = Torch(torch, np, m, a.context, torch.float16 if a.weights == "f16" else torch.float32)
    fill = a.context - a.steps
    if fill < 8:
        sys.exit("--context must exceed --steps by at least 8")
    for p in range(8, fill):
        kvpc.step(tokens[p], p)
    for p in range(fill):
        base.step(tokens[p], p)
    cp.cuda.Device().synchronize()

    def kvpc_steps():
        for s in range(a.steps):
            kvpc.step(tokens[fill + s], fill + s)

    def torch_steps():
        with torch.no_grad():
            for s in range(a.steps):
                base.step(tokens[fill + s], fill + s)

    kvpc_us = timed(cp, kvpc_steps, 3) / a.steps
    torch_us = timed(cp, torch_steps, 3) / a.steps
    print(f"{'context':>8} {'kvpc ms/token':>14} {'kvpc tokens/s':>14} {'torch ms/token':>15} {'torch tokens/s':>15}  card")
    print(f"{a.context:>8} {kvpc_us / 1000:>14.2f} {1e6 / kvpc_us:>14.1f} {torch_us / 1000:>15.2f} {1e6 / torch_us:>15.1f}  {card}")
    print("both include Python's launch overhead (kvpc: about 12 + 2 x KV heads launches a layer; PyTorch: its ops)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--dim", type=int, default=4096)
    ap.add_argument("--hidden", type=int, default=11008)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--weights", choices=("f16", "f32"), default="f16")
    ap.add_argument("--context", type=int, default=1024, help="positions in the cache when the timed steps end")
    ap.add_argument("--steps", type=int, default=64, help="decode steps timed")
    ap.add_argument("--dry-run", action="store_true", help="only check the kernels' signatures against the arguments passed")
    a = ap.parse_args()
    index = json.loads((KERNELS / "kernels.json").read_text())
    check_signatures(index)
    if a.dry_run:
        return
    if min(a.layers, a.dim, a.hidden, a.heads, a.kv_heads, a.vocab, a.context, a.steps) < 1 or a.dim % a.heads or a.heads % a.kv_heads:
        sys.exit("sizes must be positive, dim a multiple of heads, heads a multiple of KV heads")
    run(index, a)


if __name__ == "__main__":
    main()
