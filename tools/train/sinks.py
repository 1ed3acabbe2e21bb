#!/usr/bin/python3
"""How much attention the latest checkpoint gives its first tokens (attention sinks, as StreamingLLM describes them),
and what evicting them costs. For three windows of held-out text (--context tokens, default the trained context):
the mean attention probability on token 0, per layer and query head, and on tokens 0-3 summed, over the queries of
the window's later three quarters; then the perplexity of the window's second half with the full causal mask, with a
sliding window of --window tokens (default a quarter of the context), and with that window plus the first 4 tokens
(StreamingLLM's sinks), as ratios to the full mask's. With --eval-windows N, kvpc eval's N text windows instead,
and for each the key the sink head turns to once the sliding mask hides the BOS (eval_windows). A checkpoint trained with a BOS (train.py train --bos) gets it
in place of each window's first token, as it was trained. Run with the system Python that has torch
(tools/train/run.sh sinks [--context N] [--window W]). Writes nothing."""
import argparse
import os
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train  # noqa: E402


def main(argv=()):
    import torch
    c = train.CONFIG
    ap = argparse.ArgumentParser(prog="sinks.py", description=__doc__)
    ap.add_argument("--context", type=int, default=c["max_context"], metavar="N", help="window length (default: the trained context)")
    ap.add_argument("--window", type=int, default=None, metavar="W", help="sliding window of the masked runs (default: context / 4)")
    ap.add_argument("--eval-windows", type=int, default=None, metavar="N",
                    help="use kvpc eval's N text windows of models/kvpc-tiny/heldout.txt (their first context + 1 tokens, the BOS first) "
                         "instead of three held-out windows, and say where the sink head's attention goes once the masks hide the BOS")
    args = ap.parse_args(argv)
    ctx = args.context
    win = args.window or ctx // 4
    torch.set_num_threads(int(os.environ.get("KVPC_TRAIN_THREADS", "2")))
    model, state = load_latest(torch)
    bos = state.get("bos")
    print(f"checkpoint: step {state['step']}, {state['tokens']} tokens, BOS {bos}; windows of {ctx} tokens")
    held = train.encoded("heldout", write_cache=False).long()

    def run(ids, allowed, report, keep=None):
        return masked_loss(model, ids, allowed, report, keep, torch)

    if args.eval_windows:
        eval_windows(args.eval_windows, ctx, win, bos, run, torch)
        return
    with torch.no_grad():
        for start in (0, len(held) // 3, 2 * len(held) // 3):
            ids = held[start:start + ctx].clone()
            if bos is not None:
                ids[0] = bos
            t = ids.shape[0]
            causal, window = masks(t, win, torch)
            sinks = window | (causal & (torch.arange(t)[None, :] < 4))
            print(f"held-out tokens {start}-{start + t - 1}: attention of queries {t // 4}.. on token 0 per head; on tokens 0-3, mean over heads")
            full = run(ids, causal, True)
            w, s = run(ids, window, False), run(ids, sinks, False)
            print(f"  perplexity of tokens {t // 2}-{t - 1}: full {math.exp(full):.2f}; window of {win} {math.exp(w):.2f} "
                  f"({math.exp(w - full):.3f}x); window and the first 4 {math.exp(s):.2f} ({math.exp(s - full):.3f}x)")


def eval_text():
    """The held-out text kvpc eval reads: models/kvpc-tiny/heldout.txt, as shipped with the model."""
    return (Path(__file__).resolve().parents[2] / "models" / "kvpc-tiny" / "heldout.txt").read_text()


def load_latest(torch, path=None):
    """The model of checkpoint `path` (default: the latest), in eval mode, and its training state."""
    saved = torch.load(path or train.latest_checkpoint(), map_location="cpu")
    model = train.build_model()
    model.load_state_dict(saved["model"])
    model.eval()
    return model, saved["state"]


def masked_loss(model, ids, allowed, report, keep, torch):
    """The mean loss of the second half of ids with attention limited to `allowed` (query x key, or KV head x query x
    key); prints the attention on the first tokens per layer if `report`; puts each layer's attention (head x query x
    key) in `keep` if given."""
    c = train.CONFIG
    h, kv = c["heads"], c["kv_heads"]
    hd = c["dim"] // h
    freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))

    def rope(z, pos):
        ang = pos[:, None].float() * freq[None, :]
        z0, z1 = z[..., 0::2], z[..., 1::2]
        return torch.stack((z0 * ang.cos() - z1 * ang.sin(), z0 * ang.sin() + z1 * ang.cos()), dim=-1).flatten(-2)

    if allowed.dim() == 3:
        allowed = allowed.repeat_interleave(h // kv, dim=0)
    t = ids.shape[0]
    pos = torch.arange(t)
    x = model.embed(ids[None])
    for l, blk in enumerate(model.blocks):
        y = blk.attn_norm(x)
        q = rope(blk.wq(y).view(1, t, h, hd).transpose(1, 2), pos)
        k = rope(blk.wk(y).view(1, t, kv, hd).transpose(1, 2), pos).repeat_interleave(h // kv, dim=1)
        v = blk.wv(y).view(1, t, kv, hd).transpose(1, 2).repeat_interleave(h // kv, dim=1)
        att = ((q @ k.transpose(-1, -2)) / math.sqrt(hd)).masked_fill(~allowed, float("-inf")).softmax(-1)
        if keep is not None:
            keep.append(att[0])
        if report:
            late = att[0, :, t // 4:, :]
            per_head = " ".join(f"{float(late[i, :, 0].mean()):.3f}" for i in range(h))
            print(f"  layer {l}: {per_head}; first 4: {float(late[:, :, :4].sum(-1).mean()):.3f}")
        x = x + blk.wo((att @ v).transpose(1, 2).reshape(1, t, h * hd))
        y = blk.ffn_norm(x)
        x = x + blk.w2(torch.nn.functional.silu(blk.w1(y)) * blk.w3(y))
    logits = model.norm(x)[0] @ model.embed.weight.T
    nll = torch.nn.functional.cross_entropy(logits[:-1], ids[1:], reduction="none")
    return float(nll[t // 2:].mean())


def masks(t, win, torch):
    """The causal mask of t tokens (query x key) and the sliding window of win keys within it."""
    i = torch.arange(t)
    causal = i[None, :] <= i[:, None]
    return causal, causal & (i[:, None] - i[None, :] < win)


def eval_windows(n, ctx, win, bos, run, torch):
    """kvpc eval's text windows (EvalCommand.encode and Eval.perplexity: the text encoded paragraph by paragraph, N
    windows of 2 x context + 1 tokens spread over it, the BOS in place of each one's first token), cut to their first
    context + 1 tokens; per window, the perplexity ratio of the sliding mask on tokens context/2..context, and where the
    sink head (the head giving token 0 the most attention under the full mask) puts its attention from those queries
    once the mask hides the BOS: the key that receives the most of it, and its share."""
    tok = train.Tokenizer()
    text = eval_text()
    longest = 2 * ctx
    need, ids = n * (longest + 1) + 1, []
    for para in text.split("\n\n"):
        if len(ids) >= need:
            break
        if para.strip():
            ids += tok.encode(("" if not ids else "\n\n") + para)
    with torch.no_grad():
        for w in range(n):
            at = w * max(0, len(ids) - longest - 1) // n
            seg = torch.tensor(ids[at:at + ctx + 1])
            if bos is not None:
                seg[0] = bos
            t = seg.shape[0]
            causal, window = masks(t, win, torch)
            full_att, win_att = [], []
            full, masked = run(seg, causal, False, full_att), run(seg, window, False, win_att)
            on_first = torch.stack([a[:, t // 2:, 0].mean(-1) for a in full_att])  # layer x head
            layer, head = divmod(int(on_first.argmax()), on_first.shape[1])
            received = win_att[layer][head, t // 2:, :].mean(0)
            key = int(received.argmax())
            print(f"eval window {w + 1} (text tokens from {at}): tokens {t // 2}-{t - 1}, window of {win}: {math.exp(masked - full):.2f}x the full mask; "
                  f"sink head {layer}.{head} ({float(on_first[layer, head]):.2f} on token 0 with it) gives token {key} "
                  f"{tok.decode([int(seg[key])])!r} (after {tok.decode([int(x) for x in seg[max(1, key - 4):key]])!r}) {float(received[key]):.2f} of its attention without it")


if __name__ == "__main__":
    main(sys.argv[1:])
