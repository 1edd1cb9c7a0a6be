#!/usr/bin/env bash
# Issue 9's CPU benchmark: the stories15M-class training step (batch 8 x 256) and int8
# inference (batch 1, BOS + 255 tokens), built with the kernel defaults and with the choices
# `llamac tune` makes on this machine, measured alternately in one run.
#
#   bench/bench-tune.sh <build dir> [work dir]
# Environment: BENCH_STEPS (default 10) training steps per measurement, BENCH_ROUNDS
# (default 3) alternating rounds, BENCH_CACHE (cold or warm) the tuner's --cache; the best round
# of each build is reported.
set -euo pipefail
build="$(cd "${1:?usage: bench-tune.sh <build dir> [work dir]}" && pwd)"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${2:-$build/bench-tune}"
steps="${BENCH_STEPS:-10}"
rounds="${BENCH_ROUNDS:-3}"
bin="$build/bin"
model="$root/models/stories15m.mlir"
mkdir -p "$work"
rm -f "$work/tuning.txtpb"

. "$root/bench/corpus.sh"
kjv_corpus "$work" "$bin"

echo "== tune (full search space)"
"$bin/llamac" tune "$model" --mode train --batch 8 --seq 256 --cache "${BENCH_CACHE:-cold}" -o "$work/tuning.txtpb" 2>/dev/null
"$bin/llamac" tune "$model" --mode infer --weights int8 --cache "${BENCH_CACHE:-cold}" -o "$work/tuning.txtpb" 2>/dev/null

echo "== build"
"$bin/llamac" compile "$model" --mode train --batch 8 --seq 256 -o "$work/train_default" > /dev/null
"$bin/llamac" compile "$model" --mode train --batch 8 --seq 256 --tuning-db "$work/tuning.txtpb" \
  -o "$work/train_tuned" | grep tuning
"$bin/llamac" compile "$model" --mode infer --weights int8 -o "$work/infer_default" > /dev/null
"$bin/llamac" compile "$model" --mode infer --weights int8 --tuning-db "$work/tuning.txtpb" \
  -o "$work/infer_tuned" | grep tuning

train() {
  "$work/train_$1" --data "$work/kjv.txt" --tokenizer "$work/kjv8k.model" --steps "$steps" \
    --lr 1e-3 --valid-every 0 --progress never 2>&1 |
    sed -n 's/.* in [0-9:]*: \([0-9.k]*\) tokens\/s.*/\1/p' | sed 's/k$/e3/'
}
infer() {
  "$work/infer_$1" --prompt-ids 1 --max-tokens 255 --greedy --ignore-eos --no-stream \
    --print-ids 2>&1 >/dev/null | sed -n 's/.*decode .* s (\([0-9.]*\) tok\/s).*/\1/p'
}
best_default_train=0; best_tuned_train=0; best_default_infer=0; best_tuned_infer=0
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 > b + 0) ? a : b }'; }
for r in $(seq "$rounds"); do
  d=$(train default); t=$(train tuned); di=$(infer default); ti=$(infer tuned)
  echo "round $r: training tokens/s default $d tuned $t; int8 inference tokens/s default $di tuned $ti"
  best_default_train=$(max "$best_default_train" "$d"); best_tuned_train=$(max "$best_tuned_train" "$t")
  best_default_infer=$(max "$best_default_infer" "$di"); best_tuned_infer=$(max "$best_tuned_infer" "$ti")
done
awk -v a="$best_tuned_train" -v b="$best_default_train" -v c="$best_tuned_infer" -v d="$best_default_infer" \
  'BEGIN { printf "best of %s rounds: training tuned/default = %.0f/%.0f = %.3f; inference tuned/default = %.0f/%.0f = %.3f\n", '"$rounds"', a, b, a / b, c, d, c / d }'
