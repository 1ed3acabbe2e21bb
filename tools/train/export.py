#!/usr/bin/python3
"""Exports a checkpoint of the embedded model (train.py) as a GGUF v3 file the Java engine loads, with a reference
file of token ids and logits to check the engine against, and a short model card.

    export.py [--checkpoint FILE] [--out DIR]

Defaults: the latest checkpoint in the work folder ($KVPC_TRAIN_DIR or ~/.cache/kvpc/train), copied to a temporary
file before it is read (training rewrites it); output to models/kvpc-tiny/ in this repository: kvpc-tiny.gguf,
reference.txt and README.md. Nothing is written to the work folder.

The GGUF file (written here, by this code, following the GGUF v3 layout: header, metadata, tensor directory, tensor
data aligned to 32 bytes):
  - llama architecture keys; F32 tensors named as llama GGUF files name them. A torch nn.Linear weight [out, in]
    is stored row by row as it is in memory, which GGUF lists as dims [in, out] (innermost first). Q and K are not
    permuted: train.py's RoPE already rotates adjacent pairs (2i, 2i+1), the layout of llama GGUF files and of
    llama2.c. The classifier is tied to token_embd.weight, so there is no output.weight.
  - the tokenizer as tokenizer.ggml.model = "gpt2" (byte-level BPE): tokens and merges spelled with the usual
    byte-to-character table (every byte a printable character, so a merge "A B" splits at its one space), merges in
    rank order; tokenizer.ggml.pre = "qwen2" names the pre-tokenizer rule (train.PRETOKEN_NAME), one llama.cpp and
    Hugging Face tokenizers implement, so the file loads there as it is.

The reference file (text, UTF-8, one record per line, fields separated by single spaces):
    kvpc-reference 1
    # comment lines start with '#'
    model FILE                  the GGUF file these logits come from (beside the reference file)
    vocab N
    case NAME                   starts a case; then, in this order:
    text HEX                    the prompt, its UTF-8 bytes in hex
    ids N ID...                 train.py's Tokenizer.encode of the text (no BOS; the model has none)
    logits P V0 ... V(vocab-1)  zero or more, P rising: the torch model's logits at position P (0-based) of ids,
                                the scores of the token after ids[P]; 7 significant digits each. The held-out
                                case has every position, the pass-key case every 8th and the last 8, the
                                tokenizer case none
    end
"""
import argparse
import datetime
import random
import re
import shutil
import struct
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train  # noqa: E402  (the model, tokenizer and work folder are defined there)

REPO = Path(__file__).resolve().parents[2]
NAME = "kvpc-tiny"
ALIGN = 32

# GGUF metadata value types
U32, I32, F32, BOOL, STRING, ARRAY, U64 = 4, 5, 6, 7, 8, 9, 10
GGML_F32 = 0


def byte_chars():
    """Byte -> character: printable Latin-1 bytes stand for themselves, the others (controls, space, 0x7f-0xa0,
    0xad) for U+0100 upwards in byte order, so every token is a printable string and no token holds a space."""
    printable = [b for b in range(256) if 0x21 <= b <= 0x7e or 0xa1 <= b <= 0xac or 0xae <= b <= 0xff]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(0x100 + extra)
            extra += 1
    return table


class GgufWriter:
    def __init__(self):
        self.kv = []  # (key, type, value[, element type])
        self.tensors = []  # (name, dims innermost first, bytes)

    def add(self, key, vtype, value, etype=None):
        self.kv.append((key, vtype, value, etype))

    def tensor(self, name, t):
        a = t.detach().cpu().contiguous().numpy().astype("<f4")
        self.tensors.append((name, list(reversed(a.shape)), a.tobytes()))

    @staticmethod
    def _str(s):
        b = s.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def _value(self, vtype, v, etype=None):
        if vtype == U32:
            return struct.pack("<I", v)
        if vtype == I32:
            return struct.pack("<i", v)
        if vtype == U64:
            return struct.pack("<Q", v)
        if vtype == F32:
            return struct.pack("<f", v)
        if vtype == BOOL:
            return struct.pack("<B", 1 if v else 0)
        if vtype == STRING:
            return self._str(v)
        if vtype == ARRAY:
            return struct.pack("<IQ", etype, len(v)) + b"".join(self._value(etype, x) for x in v)
        raise ValueError(f"GGUF value type {vtype} not written here")

    def write(self, path):
        out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv)))
        for key, vtype, value, etype in self.kv:
            out += self._str(key) + struct.pack("<I", vtype) + self._value(vtype, value, etype)
        offset = 0
        offsets = []
        for name, dims, data in self.tensors:
            offsets.append(offset)
            out += self._str(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
            out += struct.pack("<IQ", GGML_F32, offset)
            offset += (len(data) + ALIGN - 1) // ALIGN * ALIGN
        out += bytes(-len(out) % ALIGN)
        for (name, dims, data), at in zip(self.tensors, offsets):
            out += data + bytes(-len(data) % ALIGN)
        Path(path).write_bytes(bytes(out))


def write_gguf(path, sd, tok, state):
    c = train.CONFIG
    g = GgufWriter()
    g.add("general.architecture", STRING, "llama")
    g.add("general.name", STRING, NAME)
    g.add("general.alignment", U32, ALIGN)
    g.add("llama.context_length", U32, c["max_context"])
    g.add("llama.embedding_length", U32, c["dim"])
    g.add("llama.block_count", U32, c["layers"])
    g.add("llama.feed_forward_length", U32, c["hidden"])
    g.add("llama.attention.head_count", U32, c["heads"])
    g.add("llama.attention.head_count_kv", U32, c["kv_heads"])
    g.add("llama.rope.dimension_count", U32, c["dim"] // c["heads"])
    g.add("llama.rope.freq_base", F32, c["rope_theta"])
    g.add("llama.attention.layer_norm_rms_epsilon", F32, train.NORM_EPS)
    g.add("llama.vocab_size", U32, c["vocab"])
    chars = byte_chars()
    spell = lambda b: "".join(chars[x] for x in b)  # noqa: E731
    ranked = sorted(tok.rank.items(), key=lambda kv: kv[1])
    g.add("tokenizer.ggml.model", STRING, "gpt2")
    g.add("tokenizer.ggml.pre", STRING, train.PRETOKEN_NAME)
    g.add("tokenizer.ggml.tokens", ARRAY, [spell(v) for v in tok.vocab], STRING)
    g.add("tokenizer.ggml.token_type", ARRAY, [1] * len(tok.vocab), I32)
    g.add("tokenizer.ggml.merges", ARRAY, [spell(a) + " " + spell(b) for (a, b), _ in ranked], STRING)
    if state.get("bos") is not None:  # trained with a BOS first in every sequence (train.py train --bos): hosts add it
        g.add("tokenizer.ggml.bos_token_id", U32, state["bos"])
        g.add("tokenizer.ggml.add_bos_token", BOOL, True)
    g.add("kvpc.train.tokens", U64, state["tokens"])
    g.add("kvpc.train.steps", U64, state["step"])
    g.tensor("token_embd.weight", sd["embed.weight"])
    for i in range(c["layers"]):
        p, b = f"blocks.{i}.", f"blk.{i}."
        for src, dst in (("attn_norm", "attn_norm"), ("wq", "attn_q"), ("wk", "attn_k"), ("wv", "attn_v"), ("wo", "attn_output"),
                         ("ffn_norm", "ffn_norm"), ("w1", "ffn_gate"), ("w2", "ffn_down"), ("w3", "ffn_up")):
            g.tensor(b + dst + ".weight", sd[p + src + ".weight"])
    g.tensor("output_norm.weight", sd["norm.weight"])
    g.write(path)


# ------------------------------------------------------------------------------------------------ reference

def heldout_prompt():
    """The first ~120 characters of the held-out text (about 60 tokens), cut after a whole word."""
    text = (train.WORK / "heldout.txt").read_text(encoding="utf-8")
    return text[:text.rfind(" ", 0, 120)]


def passkey_prompt():
    """Held-out sentences around a stated 5-digit key, then the question; the next token should be its first digit."""
    text = (train.WORK / "heldout.txt").read_text(encoding="utf-8")
    sents = [s.strip().replace("\n", " ") for s in re.split(r"(?<=[.!?])\s+", text)]
    sents = [s for s in sents if 30 <= len(s) <= 120 and not any(ch.isdigit() for ch in s)]
    rnd = random.Random(2024)
    key = "".join(str(rnd.randrange(10)) for _ in range(5))
    before, after = rnd.choice(sents), rnd.choice(sents)
    return (f"{before} The pass key is {key}. Remember it. {key} is the pass key. {after}"
            " What is the pass key? The pass key is"), key


# Pre-tokenizer corners: runs of spaces, tabs and newlines, Unicode spaces Python's \s knows (U+00A0, U+2003, U+001C),
# non-ASCII letters and symbols (many bytes, merged only where the vocabulary says), digits, apostrophes.
TOKENIZER_PROMPT = ("  Two  spaces,\tthen a tab;\n\nnew paragraph:  caf\u00e9 na\u00efve \u03a9\u03bc\u03ad\u03b3\u03b1 \U0001F600!"
                    " 3.14159 and $1,000,000 isn't 42%\u00a0nbsp\u2003em\x1csep\r\n end ")


def reference_lines(model, tok, prompts, gguf_name):
    import torch
    lines = ["kvpc-reference 1",
             "# Token ids from tools/train/train.py's tokenizer and logits from its torch model (float32, the whole",
             "# prompt in one causal forward pass); written by tools/train/export.py, format described there.",
             f"model {gguf_name}", f"vocab {train.VOCAB}"]
    for name, text, positions in prompts:
        ids = tok.encode(text)
        lines += [f"case {name}", "text " + text.encode("utf-8").hex(), f"ids {len(ids)} " + " ".join(map(str, ids))]
        if positions:
            with torch.no_grad():
                logits = model(torch.tensor([ids]))[0]
            for p in positions(len(ids)):
                lines.append(f"logits {p} " + " ".join(format(float(v), ".7g") for v in logits[p].tolist()))
        lines.append("end")
    return lines


def last_loss():
    rows = (train.WORK / "log.csv").read_text().strip().splitlines()[1:]
    return rows[-1].split(",") if rows else None


def main():
    import torch
    ap = argparse.ArgumentParser(description="Export a checkpoint as GGUF with reference logits.")
    ap.add_argument("--checkpoint", type=Path, default=train.WORK / "checkpoint.pt")
    ap.add_argument("--out", type=Path, default=REPO / "models" / NAME)
    args = ap.parse_args()
    if not args.checkpoint.exists():
        sys.exit(f"export: {args.checkpoint}: no checkpoint (train first: tools/train/run.sh)")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "checkpoint.pt"
        shutil.copyfile(args.checkpoint, copy)
        saved = torch.load(copy, map_location="cpu")
    if saved.get("config") != train.CONFIG:
        sys.exit(f"export: {args.checkpoint}: trained with config {saved.get('config')}, train.py now says {train.CONFIG}")
    torch.set_num_threads(1)
    model = train.build_model()
    model.load_state_dict(saved["model"])
    model.eval()
    tok = train.Tokenizer()
    state = saved["state"]
    args.out.mkdir(parents=True, exist_ok=True)
    gguf = args.out / (NAME + ".gguf")
    write_gguf(gguf, saved["model"], tok, state)

    passkey, key = passkey_prompt()
    every = lambda n: range(n)  # noqa: E731
    sparse = lambda n: sorted(set(range(0, n, 8)) | set(range(max(0, n - 8), n)))  # noqa: E731  (every 8th and the last 8)
    prompts = [("heldout", heldout_prompt(), every), ("passkey", passkey, sparse), ("tokenizer", TOKENIZER_PROMPT, None)]
    (args.out / "reference.txt").write_text("\n".join(reference_lines(model, tok, prompts, gguf.name)) + "\n", encoding="utf-8")

    with torch.no_grad():
        ids = ([] if state.get("bos") is None else [state["bos"]]) + tok.encode(passkey)
        out = []
        for _ in range(6):
            nxt = int(model(torch.tensor([ids]))[0, -1].argmax())
            out.append(nxt)
            ids = ids + [nxt]
    answer = tok.decode(out)
    last = last_loss()
    when = datetime.date.today().isoformat()
    nparams = sum(p.numel() for p in model.parameters())
    total = sum(n for n, _, _ in train.CURRICULUM)
    status = (f"**Final model.** Exported on {when}: trained to the end of its curriculum (`tools/train/`). The model card,"
              f"\nwith the data, the loss curve, held-out perplexity and pass-key accuracy, is `docs/model.md`."
              if state['tokens'] >= total else
              f"**Intermediate snapshot.** Exported on {when} from a checkpoint of the training in progress\n"
              f"(`tools/train/`); the model trained to the end of its curriculum replaces it.")
    bos_row = ("none: trained on windows that start anywhere in the text" if state.get("bos") is None else
               f"token {state['bos']}, first in every training sequence and before every document (`train.py train --bos`); the GGUF declares it "
               f"(`tokenizer.ggml.add_bos_token`), so hosts put it first")
    card = f"""# {NAME}: kvpc's embedded model

{status}

| | |
|---|---|
| architecture | llama: {train.CONFIG['layers']} layers, width {train.CONFIG['dim']}, {train.CONFIG['heads']} query heads, {train.CONFIG['kv_heads']} KV heads, SwiGLU {train.CONFIG['hidden']}, RoPE theta {train.CONFIG['rope_theta']:g}, tied embeddings; {nparams} parameters |
| tokenizer | byte-level BPE, {train.VOCAB} tokens, single-digit tokens (GGUF `gpt2` model, pre-tokenizer `{train.PRETOKEN_NAME}`) |
| BOS | {bos_row} |
| trained | {state['tokens']:,} tokens in {state['step']:,} steps ({state['seconds'] / 3600:.1f} h on 2 cores), of {sum(n for n, _, _ in train.CURRICULUM):,} in the curriculum |
| last logged training loss | {last[3] if last else '-'} at context {last[2] if last else '-'} (step {last[0] if last else '-'}) |
| data | Moby-Dick and State of the Union addresses (public domain), half the windows synthetic pass-key documents |

Files: `{gguf.name}` (GGUF v3, F32), `reference.txt` (token ids and the torch model's logits for three prompts; format
in `tools/train/export.py`). The pass-key prompt in the reference asks for key {key}; this model, greedy, answers
`{answer.strip()}`.

Re-export: `tools/train/run.sh export` (then `./run-tests -pl examples -am -Dtest=KvpcTinyTest`).

    ./kvpc run --model models/{NAME} --prompt "The whale" -n 40
"""
    (args.out / "README.md").write_text(card, encoding="utf-8")
    print(f"export: {gguf} ({gguf.stat().st_size} bytes), {state['tokens']} tokens trained; "
          f"pass-key prompt answers {answer.strip()!r} for {key}")


if __name__ == "__main__":
    main()
