#!/usr/bin/env bash
# The main job on its embedded default: train the demo model (models/tiny.mlir) on the King
# James Bible (Debian's bible-kjv) with the CPU back end, then sample from it.
#
#   main-job.sh <bin dir> [work dir]
#
# The work directory (default build/demo) keeps the corpus, the tokenizer, the generated
# executables, metrics (metrics.csv, TensorBoard events) and checkpoints. Environment:
# LLAMAC_DEMO_STEPS (default 6000) sets the training length, LLAMAC_DEMO_THREADS the
# threads. scripts/run.sh calls this after set-up; test/tools/main-job.test runs it with a
# few steps so that the README's first command stays true.
set -euo pipefail
bin="${1:?usage: main-job.sh <bin dir> [work dir]}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${2:-$root/build/demo}"
steps="${LLAMAC_DEMO_STEPS:-6000}"
threads="${LLAMAC_DEMO_THREADS:-0}"
mkdir -p "$work"

echo "== corpus: the King James Bible (bible-kjv), verse references stripped"
if [ ! -s "$work/kjv.txt" ]; then
  bible -f "Gen1:1-Rev22:21" | sed 's/^[^ ]* //' > "$work/kjv.txt.tmp"
  mv "$work/kjv.txt.tmp" "$work/kjv.txt"
fi
wc -c "$work/kjv.txt"

echo "== tokenizer: SentencePiece BPE, 512 pieces (the vocabulary of models/tiny.mlir)"
if [ ! -s "$work/kjv.model" ]; then
  "$bin/llamac" tokenizer train "$work/kjv.txt" --vocab 512 -o "$work/kjv.model"
fi

echo "== compile: training and inference programs for the CPU"
"$bin/llamac" compile "$root/models/tiny.mlir" --target cpu --mode train --batch 16 \
  --warmup 100 -o "$work/train_tiny"
"$bin/llamac" compile "$root/models/tiny.mlir" --target cpu --mode infer -o "$work/infer_tiny"

echo "== train: $steps steps of 16 x 64 tokens"
rm -rf "$work/checkpoints" "$work/logs"
"$work/train_tiny" --data "$work/kjv.txt" --tokenizer "$work/kjv.model" --steps "$steps" \
  --lr 3e-3 --seed 1 --threads "$threads" --valid-every 500 --log-dir "$work/logs" \
  --checkpoint-dir "$work/checkpoints" --checkpoint-every 2000

echo "== sample"
"$work/infer_tiny" --checkpoint "$work/checkpoints" --tokenizer "$work/kjv.model" \
  --prompt "And God said" --echo --max-tokens 60 --temperature 0.8 --top-p 0.9 --seed 1 \
  --threads "$threads"
