#!/usr/bin/python3
"""How much attention the latest checkpoint gives its first tokens (attention sinks, as StreamingLLM describes them):
for windows of held-out text at the trained context, the mean attention probability on token 0, per layer and query
head, and on tokens 0-3 summed, over the queries from position 256 on. A checkpoint trained with a BOS
(train.py train --bos) gets it in place of each window's first token, as it was trained. Run with the system Python that has torch
(tools/train/run.sh sinks). Writes nothing."""
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train  # noqa: E402


def main():
    import torch
    torch.set_num_threads(2)
    c = train.CONFIG
    model = train.build_model()
    saved = torch.load(train.latest_checkpoint())
    model.load_state_dict(saved["model"])
    bos = saved["state"].get("bos")
    model.eval()
    held = train.encoded("heldout", write_cache=False).long()
    ctx = c["max_context"]
    h, kv = c["heads"], c["kv_heads"]
    hd = c["dim"] // h
    freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))

    def rope(z, pos):
        ang = pos[:, None].float() * freq[None, :]
        z0, z1 = z[..., 0::2], z[..., 1::2]
        return torch.stack((z0 * ang.cos() - z1 * ang.sin(), z0 * ang.sin() + z1 * ang.cos()), dim=-1).flatten(-2)

    with torch.no_grad():
        for start in (0, len(held) // 3, 2 * len(held) // 3):
            ids = held[start:start + ctx].clone()
            if bos is not None:
                ids[0] = bos
            pos = torch.arange(ids.shape[0])
            x = model.embed(ids[None])
            print(f"held-out tokens {start}-{start + ids.shape[0] - 1}: attention of queries 256.. on token 0 per head; on tokens 0-3, mean over heads")
            for l, blk in enumerate(model.blocks):
                t = ids.shape[0]
                y = blk.attn_norm(x)
                q = rope(blk.wq(y).view(1, t, h, hd).transpose(1, 2), pos)
                k = rope(blk.wk(y).view(1, t, kv, hd).transpose(1, 2), pos).repeat_interleave(h // kv, dim=1)
                v = blk.wv(y).view(1, t, kv, hd).transpose(1, 2).repeat_interleave(h // kv, dim=1)
                att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
                att = att.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
                late = att[0, :, 256:, :]
                per_head = " ".join(f"{float(late[i, :, 0].mean()):.3f}" for i in range(h))
                print(f"  layer {l}: {per_head}; first 4: {float(late[:, :, :4].sum(-1).mean()):.3f}")
                x = x + blk.wo((att @ v).transpose(1, 2).reshape(1, t, h * hd))
                y = blk.ffn_norm(x)
                x = x + blk.w2(torch.nn.functional.silu(blk.w1(y)) * blk.w3(y))


if __name__ == "__main__":
    main()
