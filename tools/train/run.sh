#!/usr/bin/env bash
# Sets up and runs the training of the embedded model in the background-friendly way: installs Debian's torch and
# OpenBLAS if missing (root), then fetch -> tokenizer -> train (resuming). Output: $KVPC_TRAIN_DIR (default
# ~/.cache/kvpc/train). Usage: tools/train/run.sh [fetch|tokenizer|train|eval|all], or
# tools/train/run.sh export [--checkpoint FILE] [--out DIR] (GGUF + reference logits, default models/kvpc-tiny/)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
if ! "$py" -c 'import torch' 2>/dev/null; then
  echo "installing Debian's python3-torch and OpenBLAS (torch calls the system BLAS)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch libopenblas0-pthread >/dev/null
fi
work=${KVPC_TRAIN_DIR:-$HOME/.cache/kvpc/train}
step=${1:-all}
if [ "$step" = all ]; then
  [ -f "$work/train.txt" ] || "$py" "$here/train.py" fetch
  [ -f "$work/tokenizer.json" ] || "$py" "$here/train.py" tokenizer
  exec nice -n 15 "$py" "$here/train.py" train
fi
[ "$step" = export ] && exec "$py" "$here/export.py" "${@:2}"
exec "$py" "$here/train.py" "$step"
