#!/usr/bin/env bash
# Mixed precision on the CPU: the stories15M-class training step built with f32 products
# and with `--precision bf16` (llamac-mixed-precision: bf16 GEMM operands and results, f32
# master weights, state, norms and losses), trained alternately on the same batches in one
# run. The CPU has no bf16 arithmetic: its bf16 GEMMs widen their operands, sum in f32 with
# the same GEMM and round the result, and every product gains three casts, so this measures
# the price of checking the GPU's numerics here (and the arena the bf16 buffers save), not
# a speed-up. Also prints the two loss curves' largest relative difference.
#
#   bench/bench-mixed.sh <build dir> [work dir]
# Environment: BENCH_STEPS (default 20) steps per measurement, BENCH_ROUNDS (default 3)
# alternating rounds; the best round of each configuration is reported.
set -euo pipefail
build="$(cd "${1:?usage: bench-mixed.sh <build dir> [work dir]}" && pwd)"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${2:-$build/bench-mixed}"
steps="${BENCH_STEPS:-20}"
rounds="${BENCH_ROUNDS:-3}"
bin="$build/bin"
model="$root/models/stories15m.mlir"
mkdir -p "$work"

. "$root/bench/corpus.sh"
kjv_corpus "$work" "$bin"

echo "== build (train_grad's arena: the activations kept for the backward, and scratch)"
for p in f32 bf16; do
  "$bin/llamac" compile "$model" --mode train --batch 4 --seq 256 --precision "$p" \
    -o "$work/train_$p" | sed -n "s/^ *@train_grad: /$p @train_grad: /p"
done

common=(--data "$work/kjv.txt" --tokenizer "$work/kjv8k.model" --steps "$steps" --lr 1e-3
        --valid-every 0 --progress never --threads 2)

declare -A best=([f32]=0 [bf16]=0)
for round in $(seq "$rounds"); do
  line="round $round:"
  for p in f32 bf16; do
    rm -rf "$work/logs_$p"
    "$work/train_$p" "${common[@]}" --log-dir "$work/logs_$p" > "$work/$p.log" 2>&1
    r="$(rate "$work/$p.log")"
    line="$line $p $r"
    best[$p]="$(awk -v a="$r" -v b="${best[$p]}" 'BEGIN { print (a > b ? a : b) }')"
  done
  echo "$line (tokens/s)"
done
awk -v f="${best[f32]}" -v b="${best[bf16]}" 'BEGIN {
  printf "best: f32 %.0f, bf16 %.0f tokens/s; bf16 / f32 = %.2f\n", f, b, b / f }'
python3 "$root/test/codegen/compare_losses.py" "$work/logs_f32/metrics.csv" \
  "$work/logs_bf16/metrics.csv" --rtol 1 || true
