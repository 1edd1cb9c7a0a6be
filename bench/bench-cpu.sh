#!/usr/bin/env bash
# CPU benchmarks of issue 6, all in one run so that the ratios compare like with like:
#   1. BLIS sgemm at 2048^3 (the GEMM library's own peak) with the same thread count
#   2. training the stories15M-class model, batch 8 x sequence 256: tokens/s and model
#      FLOP/s (6N + attention per token, ModelInfo's convention), as a ratio to (1)
#   3. inference of the same model, batch 1: a BOS prompt and 255 generated tokens (the
#      context is 256): tokens/s
#   3b. the same with int8 weights
#   4. the memory plans: each function's arena against the sum of its buffers
#
#   bench/bench-cpu.sh <build dir> [work dir]
# Environment: BENCH_STEPS (default 20) training steps, BENCH_THREADS (default: all).
set -euo pipefail
build="$(cd "${1:?usage: bench-cpu.sh <build dir> [work dir]}" && pwd)"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${2:-$build/bench}"
steps="${BENCH_STEPS:-20}"
threads="${BENCH_THREADS:-$(nproc)}"
export OMP_NUM_THREADS="$threads"
mkdir -p "$work"
bin="$build/bin"

echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $threads threads"
echo "== 1. GEMM library peak"
"$bin/llamac-bench-gemm" 2048 10 | tee "$work/gemm.txt"
peak=$(sed -n 's/.*best \([0-9.]*\) GFLOP.*/\1/p' "$work/gemm.txt")

. "$root/bench/corpus.sh"
kjv_corpus "$work" "$bin"

echo "== 2. training stories15m, batch 8 x 256"
"$bin/llamac" compile "$root/models/stories15m.mlir" --mode train --batch 8 --seq 256 \
  -o "$work/train_stories15m" | tee "$work/compile-train.txt"
"$work/train_stories15m" --data "$work/kjv.txt" --tokenizer "$work/kjv8k.model" \
  --steps "$steps" --lr 1e-3 --valid-every 0 --threads "$threads" --progress never \
  --log-every 5 --profile 2>&1 | tee "$work/train.txt"
model=$(sed -n 's/.*tokens\/s, \([0-9.]*\)G FLOP\/s of model FLOPs.*/\1/p' "$work/train.txt")
echo "model FLOP/s / sgemm peak = $model / $peak = $(awk -v a="$model" -v b="$peak" 'BEGIN { printf "%.2f", a / b }')"

echo "== 3. inference stories15m, batch 1, BOS + 255 generated tokens"
"$bin/llamac" compile "$root/models/stories15m.mlir" --mode infer -o "$work/infer_stories15m" \
  | tee "$work/compile-infer.txt"
"$work/infer_stories15m" --prompt-ids 1 --max-tokens 255 --greedy --ignore-eos \
  --threads "$threads" --no-stream --print-ids --profile 2>&1 >/dev/null | tee "$work/infer.txt"

echo "== 3b. the same with int8 weights (llamac compile --weights int8)"
"$bin/llamac" compile "$root/models/stories15m.mlir" --mode infer --weights int8 \
  -o "$work/infer_stories15m_q8" | tee "$work/compile-infer-q8.txt"
"$work/infer_stories15m_q8" --prompt-ids 1 --max-tokens 255 --greedy --ignore-eos \
  --threads "$threads" --no-stream --print-ids --profile 2>&1 >/dev/null | tee "$work/infer-q8.txt"

echo "== 4. memory plans (arena vs. the sum of all buffers without reuse)"
grep -h '@' "$work/compile-train.txt" "$work/compile-infer.txt"
