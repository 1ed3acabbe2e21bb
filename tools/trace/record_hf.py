#!/usr/bin/env python3
"""Records a Hugging Face causal LM's attention inputs as a kvpc trace (KVPTRACE 1), for `kvpc trace`.

Forward hooks on every layer's q_proj, k_proj and v_proj take what the projections give (biases included, before
RoPE) while the model reads a prompt (one prefill step) and then decodes greedily, one token a step. Query and key
channels are reordered per head from the halves Hugging Face rotates (i, i + d/2) to the interleaved pairs kvpc's
RoPE rotates (2i, 2i + 1): the same rotation of the same channels, so a replay's attention is the model's. The trace
names the model's RoPE (rope.theta, and rope.freq_factors where the model scales its frequencies), so the replay
rotates the keys and queries as the model did.

    python3 tools/trace/record_hf.py MODEL --prompt "..." --steps 64 -o trace.kvptrace
    kvpc trace stdlib-policies/h2o.kvp --trace trace.kvptrace --model layers=L,heads=H,kv-heads=G,head-dim=D --param budget=256

MODEL is a Hugging Face model name or folder (llama, mistral, qwen2 and others whose attention has q_proj, k_proj and
v_proj). Needs torch and transformers; writing the file needs only numpy (`--selftest OUT` writes a random trace).
"""
import argparse
import struct
import sys
import zlib

import numpy as np


def write_kvptrace(path, layers, heads, kv_heads, head_dim, steps, attrs):
    """steps: a list of (kind, per-layer list of (keys, values, queries)), kind 'P' (first step only), 'C' or 'D';
    keys and values float32 [tokens, kv_heads, head_dim], queries [tokens, heads, head_dim]. attrs: str -> str."""
    total = sum(layer_data[0][0].shape[0] for _, layer_data in steps)
    lines = ["KVPTRACE 1", f"shape layers={layers} heads={heads} kv_heads={kv_heads} head_dim={head_dim}",
             f"steps count={len(steps)} tokens={total}"]
    for k in sorted(attrs):
        lines.append(f"attr {k}={attrs[k]}")
    lines.append("end")
    header = ("\n".join(lines) + "\n").encode("ascii")
    with open(path, "wb") as f:
        f.write(header)
        f.write(struct.pack("<I", zlib.crc32(header) & 0xFFFFFFFF))
        for kind, layer_data in steps:
            tokens = layer_data[0][0].shape[0]
            rec = bytearray(struct.pack("<bi", ord(kind), tokens))
            for keys, values, queries in layer_data:
                for a, h in ((keys, kv_heads), (values, kv_heads), (queries, heads)):
                    a = np.ascontiguousarray(a, dtype="<f4")
                    if a.shape != (tokens, h, head_dim):
                        raise ValueError(f"an array of shape {a.shape}, the step needs {(tokens, h, head_dim)}")
                    if not np.isfinite(a).all():
                        raise ValueError("a trace holds finite values only")
                    rec += a.tobytes()
            f.write(rec)
            f.write(struct.pack("<I", zlib.crc32(rec) & 0xFFFFFFFF))


def halves_to_pairs(x, head_dim):
    """[..., head_dim] in Hugging Face's rotary order (i, i + d/2) -> kvpc's interleaved pairs (2i, 2i + 1)."""
    half = head_dim // 2
    out = np.empty_like(x)
    out[..., 0::2] = x[..., :half]
    out[..., 1::2] = x[..., half:]
    return out


def record(model_name, prompt, steps, out):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_name)
    model = AutoModelForCausalLM.from_pretrained(model_name, torch_dtype=torch.float32)
    model.eval()
    cfg = model.config
    heads, kv_heads = cfg.num_attention_heads, getattr(cfg, "num_key_value_heads", cfg.num_attention_heads)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    layers = model.model.layers
    seen = {}

    def hook(i, name):
        def f(_module, _inputs, output):
            seen[(i, name)] = output.detach().float()[0].numpy()
        return f

    handles = []
    for i, layer in enumerate(layers):
        for name in ("q_proj", "k_proj", "v_proj"):
            handles.append(getattr(layer.self_attn, name).register_forward_hook(hook(i, name)))

    def step_data():
        data = []
        for i in range(len(layers)):
            q = seen[(i, "q_proj")].reshape(-1, heads, head_dim)
            k = seen[(i, "k_proj")].reshape(-1, kv_heads, head_dim)
            v = seen[(i, "v_proj")].reshape(-1, kv_heads, head_dim)
            data.append((halves_to_pairs(k, head_dim), v, halves_to_pairs(q, head_dim)))
        seen.clear()
        return data

    trace = []
    ids = tok(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        outputs = model(ids, use_cache=True)
        trace.append(("P", step_data()))
        for _ in range(steps):
            nxt = outputs.logits[:, -1:].argmax(-1)
            outputs = model(nxt, past_key_values=outputs.past_key_values, use_cache=True)
            trace.append(("D", step_data()))
    for h in handles:
        h.remove()
    theta = float(getattr(cfg, "rope_theta", 10000.0))
    attrs = {"source": "tools/trace/record_hf.py", "model": model_name.replace("#", "_")[:1000], "rope.theta": repr(theta)}
    rotary = getattr(model.model, "rotary_emb", None)
    if rotary is not None and hasattr(rotary, "inv_freq"):
        # a model that scales its frequencies (Llama 3.1's rope_scaling): the factors each pair's is divided by
        base = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
        factors = base / rotary.inv_freq.double().numpy()
        if not np.allclose(factors, 1.0):
            attrs["rope.freq_factors"] = ",".join(repr(float(x)) for x in factors)
    write_kvptrace(out, len(layers), heads, kv_heads, head_dim, trace, attrs)
    print(f"recorded {len(trace)} steps of {len(layers)} layers to {out}; replay: kvpc trace P.kvp --trace {out} "
          f"--model layers={len(layers)},heads={heads},kv-heads={kv_heads},head-dim={head_dim}", file=sys.stderr)


def selftest(out):
    """A random trace of 2 layers, 4 heads, 2 KV heads, head_dim 8: a prefill of 5 tokens, then 3 decode steps."""
    rng = np.random.default_rng(1)
    steps = []
    for kind, tokens in (("P", 5), ("D", 1), ("D", 1), ("D", 1)):
        steps.append((kind, [(rng.standard_normal((tokens, 2, 8)).astype(np.float32), rng.standard_normal((tokens, 2, 8)).astype(np.float32),
                              rng.standard_normal((tokens, 4, 8)).astype(np.float32)) for _ in range(2)]))
    write_kvptrace(out, 2, 4, 2, 8, steps, {"source": "selftest", "rope.theta": "10000.0"})


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", nargs="?")
    p.add_argument("--prompt", default="Once upon a time")
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("-o", "--output")
    p.add_argument("--selftest", metavar="OUT", help="write a random trace to OUT (no model; numpy only)")
    a = p.parse_args()
    if a.selftest:
        selftest(a.selftest)
        return
    if not a.model or not a.output:
        p.error("give MODEL and -o OUT (or --selftest OUT)")
    record(a.model, a.prompt, a.steps, a.output)


if __name__ == "__main__":
    main()
