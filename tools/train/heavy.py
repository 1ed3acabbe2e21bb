#!/usr/bin/python3
"""Where H2O's accumulated attention goes on pass-key documents, and why it keeps the key or not. For --documents
pass-key documents of --context tokens built as kvpc eval builds them (filler sentences of models/kvpc-tiny/
heldout.txt, the key stated twice at a depth that puts it outside the recent part of the budget, the question last),
the latest checkpoint reads the prompt with the full causal mask. Then, per layer and KV head, as H2O scores at
prefill (attention summed over the prompt's queries and the query heads of the group): the share of the prompt's
attention on the BOS; the accumulated attention of the key's digit tokens (median) against H2O's cut-off (the score
of the last heavy hitter it keeps: budget x (1 - recent) of the entries before the recent part); the share of the
digits' entries H2O keeps; the share it would keep scoring with the last 32 queries only (SnapKV's window, which holds
the question; no pooling); and the share of the kept heavy hitters that are punctuation. Run with the system Python
that has torch (tools/train/run.sh heavy [--context N] [--budget F] [--recent F] [--documents N]
[--checkpoint FILE]). Writes nothing."""
import argparse
import os
import random
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sinks  # noqa: E402
import train  # noqa: E402

WINDOW = 32  # SnapKV's observation window in the stdlib policy


def main(argv=()):
    import torch
    c = train.CONFIG
    ap = argparse.ArgumentParser(prog="heavy.py", description=__doc__)
    ap.add_argument("--context", type=int, default=c["max_context"], metavar="N", help="document length (default: the trained context)")
    ap.add_argument("--budget", type=float, default=0.25, metavar="F", help="KV budget as a share of the context (default 0.25)")
    ap.add_argument("--recent", type=float, default=0.5, metavar="F", help="H2O's recent share of the budget (default 0.5, the stdlib's)")
    ap.add_argument("--documents", type=int, default=24, metavar="N", help="pass-key documents (default 24)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the documents (default 1)")
    ap.add_argument("--checkpoint", default=None, metavar="FILE", help="a checkpoint file of train.py (default: the work folder's latest)")
    args = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("KVPC_TRAIN_THREADS", "2")))
    model, state = sinks.load_latest(torch, args.checkpoint)
    bos = state.get("bos")
    tok = train.Tokenizer()
    text = sinks.eval_text()
    sentences = (s.strip().replace("\n", " ") for s in re.split(r"(?<=[.!?])\s+", text))
    fillers = [s for s in sentences if 20 <= len(s) <= 200 and not any(ch.isdigit() for ch in s)]
    budget = int(args.budget * args.context)
    recent = int(budget * args.recent)
    heavy = budget - recent
    layers, kv, group = c["layers"], c["kv_heads"], c["heads"] // c["kv_heads"]
    print(f"checkpoint: step {state['step']}, {state['tokens']} tokens; {args.documents} documents of {args.context} tokens; "
          f"budget {budget} entries: the last {recent} and {heavy} heavy hitters")
    rnd = random.Random(args.seed)
    rows = [[dict(bos=[], digits=[], cutoff=[], kept=[], window=[], punct=[]) for _ in range(kv)] for _ in range(layers)]
    with torch.no_grad():
        for d in range(args.documents):
            depth = 0.05 + 0.6 * (d + 0.5) / args.documents
            ids, start, key = train.passkey_doc(tok, rnd, fillers, args.context, depth=depth, bos=bos)
            prompt = torch.tensor(ids[:start])
            p = start
            digits = [i for i in range(p) if tok.decode([ids[i]]).strip().isdigit()]
            if not digits or digits[0] >= p - budget:
                continue
            atts = []
            causal = torch.ones(p, p, dtype=torch.bool).tril()
            sinks.masked_loss(model, prompt, causal, False, atts, torch)
            punct = torch.tensor([not any(ch.isalnum() for ch in tok.decode([i])) for i in ids[:p]])
            for l, att in enumerate(atts):
                a = att.view(kv, group, p, p)
                for g in range(kv):
                    r = rows[l][g]
                    acc = a[g].sum((0, 1))
                    r["bos"].append(float(a[g][:, :, 0].mean()))
                    older = acc[:p - recent]
                    top = older.topk(heavy)
                    r["cutoff"].append(float(top.values[-1]))
                    r["digits"].append(statistics.median(float(acc[i]) for i in digits))
                    kept = set(top.indices.tolist())
                    r["kept"].append(sum(i in kept for i in digits) / len(digits))
                    late = a[g][:, p - WINDOW:, :p - recent].sum((0, 1))
                    by_window = set(late.topk(heavy).indices.tolist())
                    r["window"].append(sum(i in by_window for i in digits) / len(digits))
                    r["punct"].append(float(punct[top.indices].float().mean()))
    n = len(rows[0][0]["bos"])
    print(f"{n} documents with the key more than {budget} tokens before the question (outside a recent window of the budget); medians and means over them\n")
    print("layer.kv | attention on the BOS | key digits' accumulated attention | H2O's cut-off | digits H2O keeps | "
          f"kept by the last {WINDOW} queries | heavy hitters that are punctuation")
    for l in range(layers):
        for g in range(kv):
            r = rows[l][g]
            print(f"{l}.{g} | {statistics.mean(r['bos']):.2f} | {statistics.median(r['digits']):.2f} | {statistics.median(r['cutoff']):.2f} | "
                  f"{statistics.mean(r['kept']):.0%} | {statistics.mean(r['window']):.0%} | {statistics.mean(r['punct']):.0%}")


if __name__ == "__main__":
    main(sys.argv[1:])
