#!/usr/bin/env bash
# Sets up and runs the training of the embedded model in the background-friendly way: installs Debian's torch and
# OpenBLAS if missing (root), then fetch -> tokenizer -> train (resuming). Output: $KVPC_TRAIN_DIR (default
# ~/.cache/kvpc/train). Usage: tools/train/run.sh [fetch|tokenizer|train|all] [--bos ID], or
# tools/train/run.sh eval [--passkey-prompts N] (held-out perplexity and pass-key accuracy, also to eval.json),
# tools/train/run.sh export [--checkpoint FILE] [--out DIR] (GGUF + reference logits, default models/kvpc-tiny/), sinks (attention on the first tokens), heavy (where H2O's scores go on pass-key documents),
# tools/train/run.sh card [--out DIR] (the model card, docs/model.md and docs/model/loss.svg; no torch needed)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
step=${1:-all}
[ "$step" = card ] && exec "$py" "$here/card.py" "${@:2}"
if ! "$py" -c "import torch, regex" 2>/dev/null; then
  echo "installing Debian's python3-torch, python3-regex and OpenBLAS (torch calls the system BLAS)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch python3-regex libopenblas0-pthread >/dev/null
fi
work=${KVPC_TRAIN_DIR:-$HOME/.cache/kvpc/train}
# glibc serves allocations over its mmap threshold (at most 32 MiB) with fresh mappings: from context 512 on, a
# batch's attention matrices are larger, and every step faulted them in anew (system time, 5x slower steps). Keep
# them in the heap, and keep what is freed there.
export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-2147483647} MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-4294967296}
if [ "$step" = all ]; then
  [ -f "$work/train.txt" ] || "$py" "$here/train.py" fetch
  [ -f "$work/tokenizer.json" ] || "$py" "$here/train.py" tokenizer
  exec nice -n 15 "$py" "$here/train.py" train "${@:2}"
fi
[ "$step" = export ] && exec "$py" "$here/export.py" "${@:2}"
[ "$step" = sinks ] && exec "$py" "$here/sinks.py" "${@:2}"
[ "$step" = heavy ] && exec "$py" "$here/heavy.py" "${@:2}"
exec "$py" "$here/train.py" "$step" "${@:2}"
