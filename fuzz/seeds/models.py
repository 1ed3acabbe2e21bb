#!/usr/bin/env python3
"""Writes the model seeds of the fuzz targets (ModelFileFuzzTest): a tiny llama2.c checkpoint and tiny GGUF files,
F32 and F16, with a SentencePiece vocabulary. Deterministic; run from the repository root."""
import random
import struct

DIM, HIDDEN, LAYERS, HEADS, KV_HEADS, VOCAB, SEQ = 8, 16, 1, 2, 1, 8, 16
HEAD = DIM // HEADS
KV_DIM = KV_HEADS * HEAD
OUT = "fuzz/src/test/resources/dev/kvpc/fuzz/ModelFileFuzzTestInputs/"
rnd = random.Random(7)


def weights(n):
    return [round(rnd.uniform(-0.5, 0.5), 3) for _ in range(n)]


def llama2c():
    h = struct.pack("<7i", DIM, HIDDEN, LAYERS, HEADS, KV_HEADS, VOCAB, SEQ)
    n = (VOCAB * DIM + LAYERS * (2 * DIM + DIM * DIM * 2 + 2 * DIM * KV_DIM + 3 * DIM * HIDDEN) + DIM + SEQ * HEAD)
    with open(OUT + "llama2c/tiny", "wb") as f:
        f.write(h + struct.pack("<%df" % n, *weights(n)))


def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf(name, ftype):
    meta = [("general.architecture", 8, "llama"), ("llama.embedding_length", 4, DIM), ("llama.feed_forward_length", 4, HIDDEN),
            ("llama.block_count", 4, LAYERS), ("llama.attention.head_count", 4, HEADS), ("llama.attention.head_count_kv", 4, KV_HEADS),
            ("llama.context_length", 4, SEQ), ("llama.rope.freq_base", 6, 10000.0), ("llama.attention.layer_norm_rms_epsilon", 6, 1e-5),
            ("tokenizer.ggml.model", 8, "llama"), ("tokenizer.ggml.tokens", "strings", ["<unk>", "<s>", "</s>", "a", "b", "\u2581a", "ab", "\u2581"]),
            ("tokenizer.ggml.scores", "floats", [0.0, 0.0, 0.0, -1.0, -2.0, -3.0, -4.0, -5.0])]
    tensors = [("token_embd.weight", (DIM, VOCAB))]
    for l in range(LAYERS):
        b = "blk.%d." % l
        tensors += [(b + "attn_norm.weight", (DIM,)), (b + "ffn_norm.weight", (DIM,)), (b + "attn_q.weight", (DIM, DIM)),
                    (b + "attn_output.weight", (DIM, DIM)), (b + "attn_k.weight", (DIM, KV_DIM)), (b + "attn_v.weight", (DIM, KV_DIM)),
                    (b + "ffn_gate.weight", (DIM, HIDDEN)), (b + "ffn_up.weight", (DIM, HIDDEN)), (b + "ffn_down.weight", (HIDDEN, DIM))]
    tensors.append(("output_norm.weight", (DIM,)))
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta)))
    for k, t, v in meta:
        out += gstr(k)
        if t == "strings":
            out += struct.pack("<IIQ", 9, 8, len(v)) + b"".join(gstr(s) for s in v)
        elif t == "floats":
            out += struct.pack("<IIQ", 9, 6, len(v)) + struct.pack("<%df" % len(v), *v)
        elif t == 4:
            out += struct.pack("<II", 4, v)
        elif t == 6:
            out += struct.pack("<If", 6, v)
        else:
            out += struct.pack("<I", 8) + gstr(v)
    data = bytearray()
    for n, dims in tensors:
        count = 1
        for d in dims:
            count *= d
        # 1-d norms stay F32, as converters write them
        t = 0 if len(dims) == 1 or ftype == "f32" else 1
        out += gstr(n) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", t, len(data))
        w = weights(count)
        data += struct.pack("<%d%s" % (count, "f" if t == 0 else "e"), *w)
        data += b"\0" * (-len(data) % 32)
    out += b"\0" * (-len(out) % 32)
    with open(OUT + "gguf/" + name, "wb") as f:
        f.write(out + data)


llama2c()
gguf("tiny-f32", "f32")
gguf("tiny-f16", "f16")
